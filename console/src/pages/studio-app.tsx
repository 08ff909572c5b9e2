// One app of the studio: use it right here, like it, duplicate it into your workspace, see what
// it uses and who made it, edit its studio profile (its maintainers), and discuss it.
import { useState } from "react";
import { api } from "../api";
import { FollowButton, Icon, UserLink, useMaintains } from "../components/community";
import { Discussions } from "../components/discussions";
import { Dialog, ErrorNote, Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link, navigate, useLocation } from "../router";
import { useSession } from "../session";
import { Cover, type StudioCard } from "./studio";

interface AppLink {
  kind: "model" | "dataset" | "knowledge_base";
  ref: string | null;
  source: "dsl" | "manual";
  repo: string | null;
  knowledge_base: string | null;
}

interface Card extends StudioCard {
  links: AppLink[];
}

export default function StudioApp({ params }: { params: Record<string, string> }) {
  const t = useT(communityText);
  const slug = params.slug;
  const { path, query } = useLocation();
  const card = useAsync(() => api<Card>(`/v1/studio/apps/${encodeURIComponent(slug)}`), [slug]);
  const tab = query.get("tab") ?? (query.get("d") ? "discussions" : "use");
  const setTab = (name: string) => navigate(name === "use" ? path : `${path}?tab=${name}`, true);

  return (
    <div className="page">
      <div className="page-head">
        <Link to="/studio" className="muted">
          {t("studioTitle")}
        </Link>
        <span className="muted">/</span>
      </div>
      <Loaded state={card}>
        {(app) => (
          <>
            <Head app={app} onChange={card.set} />
            <div className="studio-layout">
              <div>
                <div className="tabs" role="tablist">
                  <button type="button" role="tab" aria-selected={tab === "use"} onClick={() => setTab("use")} data-testid="tab-use">
                    {t("tabUse")}
                  </button>
                  <button type="button" role="tab" aria-selected={tab === "discussions"} onClick={() => setTab("discussions")} data-testid="tab-discussions">
                    {t("discussions")}
                  </button>
                </div>
                {tab === "discussions" ? (
                  <Discussions base={`/v1/apps/${encodeURIComponent(app.slug)}/discussions`} workspace={app.workspace} />
                ) : app.page ? (
                  <iframe className="studio-frame" src={`${app.page}?embed=1`} title={t("useTheApp", { name: app.name })} data-testid="studio-frame" />
                ) : (
                  <div className="empty">{t("pageOff")}</div>
                )}
              </div>
              <Aside app={app} onChange={card.set} />
            </div>
          </>
        )}
      </Loaded>
    </div>
  );
}

function Head({ app, onChange }: { app: Card; onChange: (card: Card) => void }) {
  const t = useT(communityText);
  const { me } = useSession();
  const maintains = useMaintains(app.workspace);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [dialog, setDialog] = useState<"duplicate" | "profile" | null>(null);

  const like = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await api<{ likes: number }>(`/v1/apps/${encodeURIComponent(app.slug)}/like`, { method: app.liked ? "DELETE" : "POST" });
      onChange({ ...app, liked: !app.liked, likes: answer.likes });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <header className="studio-head">
      <Cover card={app} large />
      <div className="studio-head-text">
        <div className="row">
          <h1 data-testid="studio-app-name">{app.name}</h1>
          <span className="tag">{t(`mode_${app.mode}`)}</span>
          {app.site_access === "signed_in" ? <span className="tag">{t("signedInOnly")}</span> : null}
        </div>
        <div className="row muted small">
          <span>
            {t("madeBy")} <UserLink name={app.created_by} />
          </span>
          <span>·</span>
          <span>
            {t("inWorkspace")} <strong>{app.workspace}</strong>
          </span>
          {app.duplicated_from ? (
            <>
              <span>·</span>
              <span>
                {t("duplicatedFrom")} <Link to={`/studio/${encodeURIComponent(app.duplicated_from)}`}>{app.duplicated_from}</Link>
              </span>
            </>
          ) : null}
        </div>
        <div className="row studio-actions">
          <button type="button" className={`button${app.liked ? " liked" : ""}`} onClick={() => void like()} disabled={busy || !me} aria-pressed={app.liked} data-testid="like">
            {app.liked ? "♥" : "♡"} {app.liked ? t("liked") : t("like")} <span className="count" data-testid="like-count">{app.likes}</span>
          </button>
          <button type="button" className="button" onClick={() => setDialog("duplicate")} disabled={!me} data-testid="duplicate">
            <Icon name="copy" /> {t("duplicate")}
          </button>
          {app.page ? (
            <a className="button" href={app.page} target="_blank" rel="noreferrer">
              ↗ {t("openPage")}
            </a>
          ) : null}
          {app.created_by ? <FollowButton kind="user" name={app.created_by} /> : null}
          {maintains ? (
            <>
              <button type="button" className="button" onClick={() => setDialog("profile")} data-testid="edit-profile">
                {t("editProfile")}
              </button>
              <Link className="button" to={`/apps/${encodeURIComponent(app.slug)}/edit`}>
                {t("editApp")}
              </Link>
            </>
          ) : null}
        </div>
        {error ? <ErrorNote error={error} /> : null}
      </div>
      {dialog === "duplicate" ? <DuplicateDialog app={app} onClose={() => setDialog(null)} /> : null}
      {dialog === "profile" ? (
        <ProfileDialog
          app={app}
          onClose={() => setDialog(null)}
          onSaved={(next) => {
            onChange(next);
            setDialog(null);
          }}
        />
      ) : null}
    </header>
  );
}

function DuplicateDialog({ app, onClose }: { app: Card; onClose: () => void }) {
  const t = useT(communityText);
  const { me } = useSession();
  const targets = (me?.workspaces ?? []).filter((w) => w.role !== "viewer");
  const [workspace, setWorkspace] = useState(me?.workspace ?? "");
  const [name, setName] = useState(`${app.name} (copy)`);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const copy = await api<{ slug: string }>(`/v1/studio/apps/${encodeURIComponent(app.slug)}/duplicate`, {
        body: { name: name.trim() || undefined, workspace: workspace || undefined },
      });
      navigate(`/apps/${encodeURIComponent(copy.slug)}/edit`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("duplicateTitle", { name: app.name })} onClose={onClose}>
      <p className="muted">{t("duplicateHint")}</p>
      <label className="field">
        <span>{t("newName")}</span>
        <input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} data-testid="duplicate-name" />
      </label>
      {targets.length > 1 ? (
        <label className="field">
          <span>{t("intoWorkspace")}</span>
          <select value={workspace} onChange={(e) => setWorkspace(e.target.value)}>
            {targets.map((w) => (
              <option key={w.slug} value={w.slug}>
                {w.slug}
              </option>
            ))}
          </select>
        </label>
      ) : null}
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {t("cancel")}
        </button>
        <button type="button" className="button primary" onClick={() => void submit()} disabled={busy} data-testid="duplicate-confirm">
          {t("duplicate")}
        </button>
      </div>
    </Dialog>
  );
}

function ProfileDialog({ app, onClose, onSaved }: { app: Card; onClose: () => void; onSaved: (card: Card) => void }) {
  const t = useT(communityText);
  const [cover, setCover] = useState(app.cover_url);
  const [description, setDescription] = useState(app.description);
  const [tags, setTags] = useState(app.tags.join(", "));
  const [listed, setListed] = useState(app.listed);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const saved = await api<Card>(`/v1/studio/apps/${encodeURIComponent(app.slug)}/profile`, {
        method: "PUT",
        body: {
          cover_url: cover.trim(),
          description,
          tags: tags
            .split(/[,，]/)
            .map((tag) => tag.trim())
            .filter(Boolean),
          listed,
        },
      });
      onSaved(saved);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("editProfile")} onClose={onClose} wide>
      <label className="field">
        <span>
          {t("coverUrl")} <em className="hint">{t("coverHint")}</em>
        </span>
        <input value={cover} onChange={(e) => setCover(e.target.value)} placeholder="https://…" maxLength={1024} data-testid="profile-cover" />
      </label>
      <label className="field">
        <span>{t("description")}</span>
        <textarea rows={4} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={5000} data-testid="profile-description" />
      </label>
      <label className="field">
        <span>
          {t("tags")} <em className="hint">{t("tagsHint")}</em>
        </span>
        <input value={tags} onChange={(e) => setTags(e.target.value)} data-testid="profile-tags" />
      </label>
      <label className="row">
        <input type="checkbox" checked={listed} onChange={(e) => setListed(e.target.checked)} />
        <span>{t("listed")}</span>
      </label>
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {t("cancel")}
        </button>
        <button type="button" className="button primary" onClick={() => void submit()} disabled={busy} data-testid="profile-save">
          {t("save")}
        </button>
      </div>
    </Dialog>
  );
}

function linkHref(link: AppLink): string | null {
  if (link.kind === "model" && link.repo) return `/hub/models/${link.repo}`;
  if (link.kind === "dataset" && link.repo) return `/hub/datasets/${link.repo}`;
  if (link.kind === "knowledge_base" && link.ref) return `/knowledge/${encodeURIComponent(link.ref)}`;
  return null;
}

function Aside({ app, onChange }: { app: Card; onChange: (card: Card) => void }) {
  const t = useT(communityText);
  const maintains = useMaintains(app.workspace);
  const [kind, setKind] = useState<AppLink["kind"]>("dataset");
  const [ref, setRef] = useState("");
  const [error, setError] = useState<unknown>(null);
  const slug = encodeURIComponent(app.slug);

  const add = async () => {
    setError(null);
    try {
      onChange(await api<Card>(`/v1/studio/apps/${slug}/links`, { body: { kind, ref: ref.trim() } }));
      setRef("");
    } catch (e) {
      setError(e);
    }
  };
  const remove = async (link: AppLink) => {
    setError(null);
    try {
      await api(`/v1/studio/apps/${slug}/links/${link.kind}/${link.ref}`, { method: "DELETE" });
      onChange({ ...app, links: app.links.filter((l) => l !== link) });
    } catch (e) {
      setError(e);
    }
  };
  const shown = app.links.filter((l) => l.ref !== null || l.kind !== "knowledge_base");
  const hiddenBases = app.links.length - shown.length;

  return (
    <aside className="stack studio-aside">
      <div className="card stack">
        <h3>{t("about")}</h3>
        <p className="studio-description">{app.description || <span className="muted">{t("noDescription")}</span>}</p>
        {app.tags.length ? (
          <div className="row tags">
            {app.tags.map((tag) => (
              <Link key={tag} to={`/studio?tag=${encodeURIComponent(tag)}`} className="tag accent">
                #{tag}
              </Link>
            ))}
          </div>
        ) : null}
        <div className="row studio-numbers">
          <div className="stat">
            <b data-testid="stat-runs">{app.runs}</b>
            <span>{t("runs")}</span>
          </div>
          <div className="stat">
            <b>{app.likes}</b>
            <span>{t("likes")}</span>
          </div>
          <div className="stat">
            <b>{app.trending.toFixed(1)}</b>
            <span>{t("trending")}</span>
          </div>
        </div>
      </div>
      <div className="card stack" data-testid="studio-links">
        <h3>{t("usesTitle")}</h3>
        {shown.length === 0 && hiddenBases === 0 ? <p className="muted small">{t("usesNothing")}</p> : null}
        <ul className="link-list">
          {shown.map((link) => {
            const href = linkHref(link);
            const label = link.kind === "knowledge_base" ? (link.knowledge_base ?? link.ref ?? "") : (link.repo ?? link.ref ?? "");
            return (
              <li key={`${link.kind}:${link.ref}`} className="row">
                <span className="tag">{t(`link_${link.kind}`)}</span>
                {href ? <Link to={href}>{label}</Link> : <span>{label}</span>}
                {link.source === "manual" && maintains ? (
                  <button type="button" className="link small" onClick={() => void remove(link)} aria-label={t("removeLink")}>
                    ✕
                  </button>
                ) : null}
              </li>
            );
          })}
          {hiddenBases ? <li className="muted small">{t("privateKnowledge", { n: hiddenBases })}</li> : null}
        </ul>
        {maintains ? (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              void add();
            }}
          >
            <select value={kind} onChange={(e) => setKind(e.target.value as AppLink["kind"])} aria-label={t("linkKind")}>
              <option value="dataset">{t("link_dataset")}</option>
              <option value="model">{t("link_model")}</option>
              <option value="knowledge_base">{t("link_knowledge_base")}</option>
            </select>
            <input value={ref} onChange={(e) => setRef(e.target.value)} placeholder={t("linkPlaceholder")} aria-label={t("linkRef")} className="grow" />
            <button type="submit" className="button small" disabled={!ref.trim()}>
              {t("addLink")}
            </button>
          </form>
        ) : null}
        {error ? <ErrorNote error={error} /> : null}
      </div>
    </aside>
  );
}
