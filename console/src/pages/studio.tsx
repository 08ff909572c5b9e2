// The studio (创空间): the gallery of published apps anyone with access can open and use.
import { useEffect, useState } from "react";
import { api } from "../api";
import { Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link, navigate, useLocation } from "../router";
import { Icon } from "../components/community";

export interface StudioCard {
  id: string;
  slug: string;
  name: string;
  mode: "chat" | "agent" | "workflow";
  description: string;
  cover_url: string;
  tags: string[];
  workspace: string;
  created_by: string;
  published_version: number | null;
  site_access: "public" | "signed_in" | "off";
  page: string | null;
  likes: number;
  runs: number;
  trending: number;
  liked: boolean;
  duplicated_from: string | null;
  listed: boolean;
  created_at: string;
  updated_at: string;
}

const SORTS = ["trending", "likes", "runs", "new"] as const;

/** A cover: the app's image, or a warm gradient with its initial. */
export function Cover({ card, large }: { card: Pick<StudioCard, "name" | "cover_url" | "slug">; large?: boolean }) {
  const [broken, setBroken] = useState(false);
  if (card.cover_url && !broken) {
    return <img className={`cover${large ? " large" : ""}`} src={card.cover_url} alt="" loading="lazy" onError={() => setBroken(true)} />;
  }
  let hash = 0;
  for (const ch of card.slug) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  const hue = hash % 360;
  return (
    <div className={`cover placeholder${large ? " large" : ""}`} style={{ background: `linear-gradient(135deg, hsl(${hue} 55% 58%), hsl(${(hue + 40) % 360} 60% 38%))` }} aria-hidden="true">
      <span>{Array.from(card.name.trim())[0] ?? "·"}</span>
    </div>
  );
}

export function StudioCardView({ card }: { card: StudioCard }) {
  const t = useT(communityText);
  return (
    <Link to={`/studio/${encodeURIComponent(card.slug)}`} className="card studio-card" data-testid="studio-card" data-slug={card.slug}>
      <Cover card={card} />
      <div className="studio-card-body">
        <div className="row">
          <strong className="studio-card-name">{card.name}</strong>
          <span className="tag">{t(`mode_${card.mode}`)}</span>
        </div>
        <p className="muted small studio-card-desc">{card.description || t("noDescription")}</p>
        {card.tags.length ? (
          <div className="row tags">
            {card.tags.slice(0, 4).map((tag) => (
              <span className="tag accent" key={tag}>
                #{tag}
              </span>
            ))}
          </div>
        ) : null}
        <div className="row small muted studio-stats">
          <span title={t("likes")}>♥ {card.likes}</span>
          <span title={t("runs")}>▶ {card.runs}</span>
          <span title={t("trending")}>
            <Icon name="flame" size={12} /> {card.trending.toFixed(1)}
          </span>
          <span className="spacer" />
          <span>{card.created_by || card.workspace}</span>
        </div>
      </div>
    </Link>
  );
}

/** The published apps that use a model or dataset: the link back from a repo's page. */
export function UsedBy({ kind, repoId }: { kind: "model" | "dataset"; repoId: string }) {
  const t = useT(communityText);
  const apps = useAsync(() => api<{ data: StudioCard[] }>(`/v1/studio/used-by?${kind}=${encodeURIComponent(repoId)}`).then((r) => r.data), [kind, repoId]);
  return (
    <section className="used-by" data-testid="used-by">
      <h3>{t("usedBy")}</h3>
      {apps.value === undefined ? null : apps.value.length === 0 ? (
        <p className="muted small">{t("usedByNone")}</p>
      ) : (
        <ul className="link-list">
          {apps.value.map((app) => (
            <li key={app.id} className="row">
              <Link to={`/studio/${encodeURIComponent(app.slug)}`}>{app.name}</Link>
              <span className="spacer" />
              <span className="muted small">
                ♥ {app.likes} · ▶ {app.runs}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

export default function Studio() {
  const t = useT(communityText);
  const { query } = useLocation();
  const search = query.get("search") ?? "";
  const tag = query.get("tag") ?? "";
  const sort = (SORTS as readonly string[]).includes(query.get("sort") ?? "") ? (query.get("sort") as string) : "trending";
  const [typed, setTyped] = useState(search);
  useEffect(() => setTyped(search), [search]);

  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    const text = next.toString();
    navigate(text ? `/studio?${text}` : "/studio", true);
  };

  const apps = useAsync(() => {
    const q = new URLSearchParams({ sort, limit: "60" });
    if (search) q.set("search", search);
    if (tag) q.set("tag", tag);
    return api<{ data: StudioCard[]; total: number }>(`/v1/studio/apps?${q}`);
  }, [search, tag, sort]);
  const tags = useAsync(() => api<{ data: { tag: string; apps: number }[] }>("/v1/studio/tags").then((r) => r.data), []);

  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("studioTitle")}</h1>
        <span className="muted">{t("studioLead")}</span>
        <span className="spacer" />
        <Link to="/apps" className="button">
          {t("publishYours")}
        </Link>
      </div>
      <form
        className="row filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go({ search: typed.trim() });
        }}
      >
        <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={t("studioSearch")} aria-label={t("studioSearch")} data-testid="studio-search" />
        <button type="submit" className="button">
          {t("search")}
        </button>
        <label className="row">
          <span className="muted">{t("sort")}</span>
          <select value={sort} onChange={(e) => go({ sort: e.target.value === "trending" ? "" : e.target.value })} data-testid="studio-sort">
            {SORTS.map((name) => (
              <option key={name} value={name}>
                {t(`sort_${name}`)}
              </option>
            ))}
          </select>
        </label>
      </form>
      {tags.value && tags.value.length ? (
        <div className="row tags tag-filter" role="group" aria-label={t("tags")}>
          <button type="button" className={`chip${tag ? "" : " on"}`} aria-pressed={!tag} onClick={() => go({ tag: "" })}>
            {t("allTags")}
          </button>
          {tags.value.slice(0, 30).map((item) => (
            <button key={item.tag} type="button" className={`chip${tag === item.tag ? " on" : ""}`} aria-pressed={tag === item.tag} onClick={() => go({ tag: tag === item.tag ? "" : item.tag })}>
              #{item.tag} <span className="muted">{item.apps}</span>
            </button>
          ))}
        </div>
      ) : null}
      <Loaded state={apps} isEmpty={(r) => r.data.length === 0} empty={search || tag ? t("noAppsMatch") : t("noAppsYet")}>
        {(r) => (
          <>
            <p className="muted small">{r.total === 1 ? t("oneApp") : t("nApps", { n: r.total })}</p>
            <div className="studio-grid" data-testid="studio-list">
              {r.data.map((card) => (
                <StudioCardView key={card.id} card={card} />
              ))}
            </div>
          </>
        )}
      </Loaded>
    </div>
  );
}
