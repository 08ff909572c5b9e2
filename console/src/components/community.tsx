// Small pieces the community pages share: links to users and to what a notification or a feed
// item is about, a follow button, relative times, and the server's sanitized HTML.
import "./community.css";
import { useEffect, useState, type MouseEvent } from "react";
import { api } from "../api";
import { useLang, useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link, navigate } from "../router";
import { useSession } from "../session";

/** What a discussion, a like or a feed item is about, as the API names it. */
export interface TargetRef {
  kind: string; // model, dataset, space, app, user, workspace
  name: string;
  workspace?: string;
}

/** The console page of a repo or an app; with `num`, straight to that discussion. */
export function targetHref(target: TargetRef | null | undefined, num?: number): string | null {
  if (!target) return null;
  const thread = num ? `?tab=discussions&d=${num}` : "";
  if (target.kind === "app") return `/studio/${encodeURIComponent(target.name)}${thread}`;
  if (target.kind === "model" || target.kind === "dataset") return `/hub/${target.kind}s/${target.name}${thread}`;
  if (target.kind === "user") return `/u/${encodeURIComponent(target.name)}`;
  return null;
}

export function UserLink({ name }: { name: string | null | undefined }) {
  if (!name) return <span className="muted">—</span>;
  if (name === "deleted") return <span className="muted">{name}</span>;
  return (
    <Link to={`/u/${encodeURIComponent(name)}`} className="user-link">
      {name}
    </Link>
  );
}

/** "3 minutes ago", in the console's language; the exact time on hover. */
export function Ago({ iso }: { iso: string | null | undefined }) {
  const { lang } = useLang();
  if (!iso) return <span>—</span>;
  const when = new Date(iso);
  const seconds = Math.round((when.getTime() - Date.now()) / 1000);
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [
    ["second", 60],
    ["minute", 60],
    ["hour", 24],
    ["day", 30],
    ["month", 12],
    ["year", Infinity],
  ];
  let value = seconds;
  let unit: Intl.RelativeTimeFormatUnit = "second";
  for (const [name, size] of steps) {
    unit = name;
    if (Math.abs(value) < size) break;
    value = Math.round(value / size);
  }
  const locale = lang === "zh" ? "zh-CN" : "en";
  const text = Math.abs(seconds) < 45 ? new Intl.RelativeTimeFormat(locale, { numeric: "auto" }).format(0, "second") : new Intl.RelativeTimeFormat(locale, { numeric: "auto" }).format(value, unit);
  return (
    <time dateTime={iso} title={when.toLocaleString(locale)}>
      {text}
    </time>
  );
}

/**
 * HTML the server rendered from Markdown and sanitized (markdown-it without raw HTML, then
 * nh3). Only that HTML is ever set as HTML: what people typed (`raw`) is shown as text.
 * Mentions point at the console's profile pages; links inside the console open in place.
 */
export function ServerHtml({ html, className, testId }: { html: string; className?: string; testId?: string }) {
  const shown = html.replace(/<a href="\/users\/([A-Za-z0-9_.-]+)" class="mention"/g, '<a href="/u/$1" class="mention"');
  const follow = (event: MouseEvent<HTMLDivElement>) => {
    const link = (event.target as HTMLElement).closest("a");
    const href = link?.getAttribute("href");
    if (!link || !href || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    if (href.startsWith("/") && !href.startsWith("//")) {
      event.preventDefault();
      navigate(href);
    }
  };
  return <div className={`markdown ${className ?? ""}`} data-testid={testId} onClick={follow} dangerouslySetInnerHTML={{ __html: shown }} />;
}

/** Follow or unfollow a user or a workspace. */
export function FollowButton({ kind, name, onChange }: { kind: "user" | "workspace"; name: string; onChange?: (following: boolean) => void }) {
  const t = useT(communityText);
  const { me } = useSession();
  const [following, setFollowing] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    let live = true;
    api<{ data: { kind: string; name: string }[] }>("/v1/community/following").then(
      (answer) => {
        if (live) setFollowing(answer.data.some((f) => f.kind === kind && f.name.toLowerCase() === name.toLowerCase()));
      },
      () => live && setFollowing(false),
    );
    return () => {
      live = false;
    };
  }, [kind, name]);
  if (!me || (kind === "user" && me.username.toLowerCase() === name.toLowerCase())) return null;
  const toggle = async () => {
    setBusy(true);
    try {
      if (following) await api(`/v1/community/following/${kind}/${encodeURIComponent(name)}`, { method: "DELETE" });
      else await api("/v1/community/following", { body: { [kind]: name } });
      setFollowing(!following);
      onChange?.(!following);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button
      type="button"
      className={`button${following ? "" : " primary"}`}
      disabled={busy || following === null}
      onClick={() => void toggle()}
      aria-pressed={following ?? false}
      data-testid={`follow-${kind}`}
    >
      {following ? t("unfollow") : kind === "user" ? t("followUser", { name }) : t("followWorkspace", { name })}
    </button>
  );
}

const ICONS = {
  bell: "M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9M13.73 21a2 2 0 0 1-3.46 0",
  flame:
    "M8.5 14.5A2.5 2.5 0 0 0 11 12c0-1.38-.5-2-1-3-1.07-2.14-.22-4.05 2-6 .5 2.5 2 4.9 4 6.5 2 1.6 3 3.5 3 5.5a7 7 0 1 1-14 0c0-1.15.43-2.29 1-3a2.5 2.5 0 0 0 2.5 2.5z",
  copy: "M8 8h12v12H8zM16 8V4H4v12h4",
  comment: "M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z",
  pin: "M12 17v5M9 10.76a2 2 0 0 1-1.11 1.79l-1.78.9A2 2 0 0 0 5 15.24V16a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-.76a2 2 0 0 0-1.11-1.79l-1.78-.9A2 2 0 0 1 15 10.76V7a1 1 0 0 1 1-1 2 2 0 0 0 0-4H8a2 2 0 0 0 0 4 1 1 0 0 1 1 1z",
};

/** A small line icon (emoji fonts are not everywhere). */
export function Icon({ name, size = 14 }: { name: keyof typeof ICONS; size?: number }) {
  return (
    <svg className="icon" viewBox="0 0 24 24" width={size} height={size} fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <path d={ICONS[name]} />
    </svg>
  );
}

/** Whether the signed-in user maintains a workspace's repos and apps (a member, not a viewer). */
export function useMaintains(workspace: string | null | undefined): boolean {
  const { me } = useSession();
  if (!me || !workspace) return false;
  return me.is_admin || me.workspaces.some((w) => w.slug === workspace && w.role !== "viewer");
}
