// Model and dataset lists with search, sort and tag filters (the hub's /api/{models,datasets}).
import { useEffect, useState } from "react";
import { api } from "../api";
import { Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { hubText } from "../i18n/hub";
import { Link, navigate, useLocation } from "../router";

export interface RepoSummary {
  id: string;
  author: string;
  private: boolean;
  downloads: number;
  likes: number;
  tags: string[];
  lastModified: string;
  pipeline_tag?: string | null;
  cardData?: Record<string, unknown>;
}

export default function HubList({ params }: { params: Record<string, string> }) {
  const t = useT(hubText);
  const kind = params.kind === "datasets" ? "datasets" : "models";
  const { query } = useLocation();
  const search = query.get("search") ?? "";
  const sort = query.get("sort") ?? "lastModified";
  const tag = query.get("filter") ?? "";
  const [typed, setTyped] = useState(search);
  useEffect(() => {
    setTyped(search);
  }, [search]);

  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    navigate(`/hub/${kind}?${next}`, true);
  };

  const repos = useAsync(() => {
    const q = new URLSearchParams({ sort, limit: "100" });
    if (search) q.set("search", search);
    if (tag) q.set("filter", tag);
    return api<RepoSummary[]>(`/api/${kind}?${q}`);
  }, [kind, search, sort, tag]);
  const allTags = useAsync(() => api<RepoSummary[]>(`/api/${kind}?limit=100`), [kind]);
  const tags = Array.from(new Set((allTags.value ?? []).flatMap((r) => r.tags))).sort().slice(0, 60);

  return (
    <div className="page">
      <div className="page-head">
        <h1>{kind === "models" ? t("models") : t("datasets")}</h1>
      </div>
      <form
        className="row filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          go({ search: typed.trim() });
        }}
      >
        <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={t("searchPlaceholder")} aria-label={t("searchPlaceholder")} data-testid="hub-search" />
        <label className="row">
          <span className="muted">{t("sort")}</span>
          <select value={sort} onChange={(e) => go({ sort: e.target.value })}>
            <option value="lastModified">{t("sortUpdated")}</option>
            <option value="likes">{t("sortLikes")}</option>
            <option value="downloads">{t("sortDownloads")}</option>
            <option value="createdAt">{t("sortCreated")}</option>
          </select>
        </label>
        <label className="row">
          <span className="muted">{t("filterTag")}</span>
          <select value={tag} onChange={(e) => go({ filter: e.target.value })}>
            <option value="">{t("anyTag")}</option>
            {tags.map((name) => (
              <option key={name} value={name}>
                {name}
              </option>
            ))}
          </select>
        </label>
      </form>
      <Loaded state={repos} isEmpty={(list) => list.length === 0} empty={t("noRepos")}>
        {(list) => (
          <div className="grid-3" data-testid="repo-list">
            {list.map((repo) => (
              <Link key={repo.id} to={`/hub/${kind}/${repo.id}`} className="card repo-card">
                <div className="row">
                  <strong className="repo-name">{repo.id}</strong>
                  {repo.private ? <span className="tag">🔒</span> : null}
                </div>
                <div className="row small muted">
                  {repo.pipeline_tag ? <span className="tag accent">{repo.pipeline_tag}</span> : null}
                  <span>♥ {repo.likes}</span>
                  <span>↓ {repo.downloads}</span>
                  <span>{new Date(repo.lastModified).toLocaleDateString()}</span>
                </div>
                <div className="row tags">
                  {repo.tags.slice(0, 5).map((name) => (
                    <span className="tag" key={name}>
                      {name}
                    </span>
                  ))}
                </div>
              </Link>
            ))}
          </div>
        )}
      </Loaded>
    </div>
  );
}
