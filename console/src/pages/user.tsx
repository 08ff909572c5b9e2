// A user's profile (/u/:name): their apps and repos, followers, and a follow button.
import { useState } from "react";
import { api } from "../api";
import { FollowButton, UserLink } from "../components/community";
import { Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link } from "../router";
import type { RepoSummary } from "./hub-list";
import { StudioCardView, type StudioCard } from "./studio";

interface Profile {
  name: string;
  followers: number;
  following: number;
  likes_given: number;
}

export default function UserPage({ params }: { params: Record<string, string> }) {
  const t = useT(communityText);
  const name = params.name;
  const enc = encodeURIComponent(name);
  const profile = useAsync(() => api<Profile>(`/v1/community/users/${enc}`), [name]);
  const followers = useAsync(() => api<{ data: { user: string }[] }>(`/v1/community/users/${enc}/followers`).then((r) => r.data), [name]);
  const apps = useAsync(() => api<{ data: StudioCard[] }>(`/v1/studio/apps?author=${enc}&sort=new&limit=60`).then((r) => r.data), [name]);
  const repos = useAsync(async () => {
    const [models, datasets] = await Promise.all([
      api<RepoSummary[]>(`/api/models?author=${enc}&limit=100`),
      api<RepoSummary[]>(`/api/datasets?author=${enc}&limit=100`),
    ]);
    return [...models.map((r) => ({ ...r, kind: "models" })), ...datasets.map((r) => ({ ...r, kind: "datasets" }))];
  }, [name]);
  const [tab, setTab] = useState<"apps" | "repos" | "followers">("apps");

  return (
    <div className="page">
      <Loaded state={profile}>
        {(p) => (
          <header className="profile-head">
            <div className="avatar" aria-hidden="true">
              {Array.from(p.name)[0]?.toUpperCase()}
            </div>
            <div className="stack">
              <div className="row">
                <h1 data-testid="profile-name">{p.name}</h1>
                <FollowButton kind="user" name={p.name} onChange={() => { profile.reload(); followers.reload(); }} />
              </div>
              <div className="row muted">
                <span data-testid="profile-followers">{p.followers === 1 ? t("oneFollower") : t("nFollowers", { n: p.followers })}</span>
                <span>·</span>
                <span>{t("nFollowing", { n: p.following })}</span>
                <span>·</span>
                <span>{t("nLikesGiven", { n: p.likes_given })}</span>
              </div>
            </div>
          </header>
        )}
      </Loaded>
      <div className="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={tab === "apps"} onClick={() => setTab("apps")}>
          {t("apps")} {apps.value ? <span className="muted">{apps.value.length}</span> : null}
        </button>
        <button type="button" role="tab" aria-selected={tab === "repos"} onClick={() => setTab("repos")}>
          {t("repos")} {repos.value ? <span className="muted">{repos.value.length}</span> : null}
        </button>
        <button type="button" role="tab" aria-selected={tab === "followers"} onClick={() => setTab("followers")} data-testid="tab-followers">
          {t("followers")} {followers.value ? <span className="muted">{followers.value.length}</span> : null}
        </button>
      </div>
      {tab === "apps" ? (
        <Loaded state={apps} isEmpty={(l) => l.length === 0} empty={t("userNoApps", { name })}>
          {(l) => (
            <div className="studio-grid" data-testid="user-apps">
              {l.map((card) => (
                <StudioCardView key={card.id} card={card} />
              ))}
            </div>
          )}
        </Loaded>
      ) : null}
      {tab === "repos" ? (
        <Loaded state={repos} isEmpty={(l) => l.length === 0} empty={t("userNoRepos", { name })}>
          {(l) => (
            <div className="grid-3">
              {l.map((repo) => (
                <Link key={`${repo.kind}/${repo.id}`} to={`/hub/${repo.kind}/${repo.id}`} className="card repo-card">
                  <div className="row">
                    <span className="tag">{repo.kind === "models" ? t("targetKind_model") : t("targetKind_dataset")}</span>
                    <strong className="repo-name">{repo.id}</strong>
                    {repo.private ? <span className="tag">🔒</span> : null}
                  </div>
                  <div className="row small muted">
                    <span>♥ {repo.likes}</span>
                    <span>↓ {repo.downloads}</span>
                  </div>
                </Link>
              ))}
            </div>
          )}
        </Loaded>
      ) : null}
      {tab === "followers" ? (
        <Loaded state={followers} isEmpty={(l) => l.length === 0} empty={t("noFollowers")}>
          {(l) => (
            <ul className="link-list people" data-testid="followers-list">
              {l.map((f) => (
                <li key={f.user}>
                  <UserLink name={f.user} />
                </li>
              ))}
            </ul>
          )}
        </Loaded>
      ) : null}
    </div>
  );
}
