// The activity feed: what the people and workspaces you follow did, newest first; beside it,
// whom you follow and what is trending, to find more.
import { useState } from "react";
import { api } from "../api";
import { Ago, UserLink, targetHref, type TargetRef } from "../components/community";
import { ErrorNote, Loaded, useAsync } from "../components/ui";
import { useT, type T } from "../i18n";
import { communityText } from "../i18n/community";
import { Link } from "../router";
import type { StudioCard } from "./studio";

export interface FeedItem {
  id: string;
  type: string;
  actor: string;
  workspace: string | null;
  target: TargetRef | null;
  data: { num?: number; title?: string; version?: number; app_name?: string; note?: string; commit?: string };
  created_at: string;
}

const ICONS: Record<string, string> = {
  "repo.created": "◆",
  "repo.updated": "↑",
  "app.published": "⬡",
  "app.liked": "♥",
  "repo.liked": "♥",
  "app.duplicated": "⧉",
  "discussion.created": "“",
  "discussion.comment": "“",
  "user.followed": "+",
  "workspace.followed": "+",
};

function verb(item: FeedItem, t: T<typeof communityText.en>): string {
  const known: Record<string, keyof typeof communityText.en> = {
    "repo.created": "feedRepoCreated",
    "repo.updated": "feedRepoUpdated",
    "app.published": "feedAppPublished",
    "app.liked": "feedLiked",
    "repo.liked": "feedLiked",
    "app.duplicated": "feedDuplicated",
    "discussion.created": "feedDiscussionCreated",
    "discussion.comment": "feedCommented",
    "user.followed": "feedFollowed",
    "workspace.followed": "feedFollowed",
  };
  return known[item.type] ? t(known[item.type]) : item.type;
}

export function FeedEntry({ item }: { item: FeedItem }) {
  const t = useT(communityText);
  const href = targetHref(item.target, item.data.num);
  const label = item.target ? (item.target.kind === "app" && item.data.app_name ? item.data.app_name : item.target.name) : "";
  const detail = item.data.title ? (item.data.num ? `#${item.data.num} ${item.data.title}` : item.data.title) : item.data.version ? `v${item.data.version}` : "";
  return (
    <li className="feed-item" data-testid="feed-item" data-type={item.type}>
      <span className="kind-icon" aria-hidden="true">
        {ICONS[item.type] ?? "•"}
      </span>
      <div className="feed-main">
        <div>
          <strong>
            <UserLink name={item.actor} />
          </strong>{" "}
          {verb(item, t)}{" "}
          {item.target ? (
            <>
              {item.target.kind !== "user" && item.target.kind !== "workspace" ? <span className="tag">{t(`targetKind_${item.target.kind}` as "targetKind_app")}</span> : null}{" "}
              {href ? <Link to={href}>{label}</Link> : <strong>{label}</strong>}
            </>
          ) : null}
        </div>
        {detail ? <div className="muted small feed-detail">{detail}</div> : null}
      </div>
      <span className="muted small">
        <Ago iso={item.created_at} />
      </span>
    </li>
  );
}

export default function Feed() {
  const t = useT(communityText);
  const [pages, setPages] = useState<FeedItem[][]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const first = useAsync(async () => {
    const answer = await api<{ data: FeedItem[]; next_before: string | null }>("/v1/community/feed?limit=30");
    setPages([]);
    setNext(answer.next_before);
    return answer.data;
  }, []);
  const following = useAsync(() => api<{ data: { kind: string; name: string }[] }>("/v1/community/following").then((r) => r.data), []);
  const trending = useAsync(() => api<{ data: StudioCard[] }>("/v1/studio/apps?sort=trending&limit=6").then((r) => r.data), []);
  const unfollow = async (kind: string, name: string) => {
    setError(null);
    try {
      await api(`/v1/community/following/${kind}/${encodeURIComponent(name)}`, { method: "DELETE" });
      following.reload();
    } catch (e) {
      setError(e);
    }
  };

  const loadMore = async () => {
    if (!next) return;
    setMore(true);
    setError(null);
    try {
      const answer = await api<{ data: FeedItem[]; next_before: string | null }>(`/v1/community/feed?limit=30&before=${encodeURIComponent(next)}`);
      setPages((old) => [...old, answer.data]);
      setNext(answer.next_before);
    } catch (e) {
      setError(e);
    } finally {
      setMore(false);
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("feedTitle")}</h1>
        <span className="muted">{t("feedLead")}</span>
      </div>
      <div className="feed-layout">
        <div>
          <Loaded state={first} isEmpty={(items) => items.length === 0} empty={following.value && following.value.length ? t("feedQuiet") : t("feedEmpty")}>
            {(items) => (
              <>
                <ul className="feed" data-testid="feed">
                  {[items, ...pages].flat().map((item) => (
                    <FeedEntry key={item.id} item={item} />
                  ))}
                </ul>
                {error ? <ErrorNote error={error} /> : null}
                {next ? (
                  <button type="button" className="button" onClick={() => void loadMore()} disabled={more}>
                    {t("loadMore")}
                  </button>
                ) : null}
              </>
            )}
          </Loaded>
        </div>
        <aside className="stack">
          <div className="card stack">
            <h3>{t("youFollow")}</h3>
            <Loaded state={following} isEmpty={(l) => l.length === 0} empty={t("followNobody")}>
              {(l) => (
                <ul className="link-list" data-testid="following-list">
                  {l.map((f) => (
                    <li key={`${f.kind}:${f.name}`} className="row">
                      <span className="tag">{f.kind === "user" ? t("targetKind_user") : t("targetKind_workspace")}</span>
                      {f.kind === "user" ? <UserLink name={f.name} /> : <strong>{f.name}</strong>}
                      <span className="spacer" />
                      <button type="button" className="button small" onClick={() => void unfollow(f.kind, f.name)}>
                        {t("unfollow")}
                      </button>
                    </li>
                  ))}
                </ul>
              )}
            </Loaded>
          </div>
          <div className="card stack">
            <h3>{t("trendingApps")}</h3>
            <Loaded state={trending} isEmpty={(l) => l.length === 0} empty={t("noAppsYet")}>
              {(l) => (
                <ul className="link-list">
                  {l.map((app) => (
                    <li key={app.slug} className="row">
                      <Link to={`/studio/${encodeURIComponent(app.slug)}`}>{app.name}</Link>
                      <span className="spacer" />
                      <span className="muted small">
                        ♥ {app.likes} · ▶ {app.runs}
                      </span>
                    </li>
                  ))}
                </ul>
              )}
            </Loaded>
            <Link to="/studio" className="small">
              {t("browseStudio")} →
            </Link>
          </div>
        </aside>
      </div>
    </div>
  );
}
