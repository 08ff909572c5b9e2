// Discussions of a repo or an app: the list (pinned first, by status), opening one, and a
// thread with Markdown comments, replies, edit history, close/reopen, rename, pin and hide.
// Comments are shown only from the server's sanitized `html`; `raw` is never set as HTML.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { api } from "../api";
import { useT, type T } from "../i18n";
import { communityText } from "../i18n/community";
import { navigate, useLocation } from "../router";
import { useSession } from "../session";
import { Ago, Icon, ServerHtml, UserLink, useMaintains } from "./community";
import { ErrorNote, Loaded, useAsync } from "./ui";

export interface Person {
  name: string;
  fullname: string;
  roles?: string[];
}

export interface DiscussionSummary {
  num: number;
  title: string;
  status: "open" | "closed";
  pinned: boolean;
  createdAt: string;
  updatedAt: string;
  author: Person;
  repoOwner: { name: string };
  numComments: number;
}

interface Revision {
  raw: string;
  html: string;
  updatedAt: string;
  author: { name: string };
}

export interface DiscussionEvent {
  id: string;
  type: "comment" | "status-change" | "title-change" | "pin";
  createdAt: string;
  author: Person;
  parent?: string | null;
  data: {
    status?: string;
    from?: string;
    to?: string;
    pinned?: boolean;
    edited?: boolean;
    hidden?: boolean;
    hiddenBy?: string | null;
    latest?: Revision;
    numEdits?: number;
    history?: Revision[];
  };
}

interface Details extends DiscussionSummary {
  events: DiscussionEvent[];
}

interface Page {
  discussions: DiscussionSummary[];
  count: number;
  numClosedDiscussions: number;
}

/** The query string with some keys changed (empty values removed); replaces the history entry. */
function useQueryState() {
  const { path, query } = useLocation();
  const set = (changes: Record<string, string | null>, replace = false) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    const text = next.toString();
    navigate(text ? `${path}?${text}` : path, replace);
  };
  return { query, set };
}

export function Discussions({ base, workspace }: { base: string; workspace: string }) {
  const { query, set } = useQueryState();
  const num = Number(query.get("d") ?? "") || null;
  const creating = query.get("d") === "new";
  if (creating) return <NewDiscussion base={base} onCancel={() => set({ d: null })} onCreated={(n) => set({ d: String(n) }, true)} />;
  if (num) return <Thread base={base} num={num} workspace={workspace} onBack={() => set({ d: null })} />;
  return <DiscussionList base={base} onOpen={(n) => set({ d: String(n) })} onNew={() => set({ d: "new" })} />;
}

function DiscussionList({ base, onOpen, onNew }: { base: string; onOpen: (num: number) => void; onNew: () => void }) {
  const t = useT(communityText);
  const { me } = useSession();
  const [status, setStatus] = useState<"open" | "closed" | "">("open");
  const [search, setSearch] = useState("");
  const [typed, setTyped] = useState("");
  const page = useAsync(() => {
    const q = new URLSearchParams();
    if (status) q.set("status", status);
    if (search) q.set("search", search);
    return api<Page>(`${base}?${q}`);
  }, [base, status, search]);
  return (
    <section className="discussions" data-testid="discussions">
      <form
        className="row discussion-bar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch(typed.trim());
        }}
      >
        <div className="segmented" role="group" aria-label={t("status")}>
          {(["open", "closed", ""] as const).map((value) => (
            <button key={value || "all"} type="button" aria-pressed={status === value} onClick={() => setStatus(value)} data-testid={`discussions-${value || "all"}`}>
              {value === "open" ? t("statusOpen") : value === "closed" ? t("statusClosed") : t("statusAll")}
            </button>
          ))}
        </div>
        <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={t("searchDiscussions")} aria-label={t("searchDiscussions")} />
        <span className="spacer" />
        {me ? (
          <button type="button" className="button primary" onClick={onNew} data-testid="new-discussion">
            {t("newDiscussion")}
          </button>
        ) : null}
      </form>
      <Loaded state={page} isEmpty={(p) => p.discussions.length === 0} empty={status === "closed" ? t("noClosedDiscussions") : t("noDiscussions")}>
        {(p) => (
          <ul className="discussion-list" data-testid="discussion-list">
            {p.discussions.map((d) => (
              <li key={d.num}>
                <button type="button" className="discussion-item" onClick={() => onOpen(d.num)} data-testid={`discussion-${d.num}`}>
                  <span className={`dot ${d.status}`} aria-hidden="true" />
                  <span className="discussion-main">
                    <strong className="discussion-title">
                      {d.pinned ? (
                        <span className="tag accent" title={t("pinned")} data-testid="pinned">
                          <Icon name="pin" size={11} /> {t("pinned")}
                        </span>
                      ) : null}{" "}
                      {d.title}
                    </strong>
                    <span className="muted small">
                      #{d.num} · {t("openedBy", { name: d.author.name })} · <Ago iso={d.createdAt} />
                    </span>
                  </span>
                  <span className={`tag ${d.status === "open" ? "ok" : ""}`}>{d.status === "open" ? t("statusOpen") : t("statusClosed")}</span>
                  <span className="muted small" title={t("comments")}>
                    <Icon name="comment" /> {d.numComments}
                  </span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Loaded>
    </section>
  );
}

/** A Markdown box with Write and Preview (rendered by the server, exactly as it will show). */
export function MarkdownField({
  value,
  onChange,
  label,
  people = [],
  rows = 5,
  testId,
  autoFocus,
}: {
  value: string;
  onChange: (value: string) => void;
  label: string;
  people?: string[];
  rows?: number;
  testId?: string;
  autoFocus?: boolean;
}) {
  const t = useT(communityText);
  const [mode, setMode] = useState<"write" | "preview">("write");
  const [preview, setPreview] = useState<{ html: string } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const area = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (mode !== "preview") return;
    let live = true;
    setPreview(null);
    api<{ html: string }>("/v1/community/markdown", { body: { text: value } }).then(
      (answer) => live && setPreview(answer),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [mode, value]);
  const mention = (name: string) => {
    const box = area.current;
    const at = box ? box.selectionStart : value.length;
    const before = value.slice(0, at);
    const glue = before && !/\s$/.test(before) ? " " : "";
    onChange(`${before}${glue}@${name} ${value.slice(at)}`);
    setMode("write");
    setTimeout(() => area.current?.focus(), 0);
  };
  return (
    <div className="md-field">
      <div className="tabs small-tabs" role="tablist">
        <button type="button" role="tab" aria-selected={mode === "write"} onClick={() => setMode("write")}>
          {t("write")}
        </button>
        <button type="button" role="tab" aria-selected={mode === "preview"} onClick={() => setMode("preview")} data-testid={testId ? `${testId}-preview` : undefined}>
          {t("preview")}
        </button>
      </div>
      {mode === "write" ? (
        <textarea ref={area} value={value} onChange={(e) => onChange(e.target.value)} rows={rows} aria-label={label} placeholder={t("markdownHint")} data-testid={testId} autoFocus={autoFocus} />
      ) : (
        <div className="md-preview card">
          {error ? <ErrorNote error={error} /> : preview ? preview.html ? <ServerHtml html={preview.html} /> : <span className="muted">{t("nothingToPreview")}</span> : <span className="muted">…</span>}
        </div>
      )}
      <div className="row small muted md-help">
        <span>{t("markdownHelp")}</span>
        {people.length ? (
          <>
            <span>{t("mention")}</span>
            {people.slice(0, 8).map((name) => (
              <button key={name} type="button" className="chip" onClick={() => mention(name)}>
                @{name}
              </button>
            ))}
          </>
        ) : null}
      </div>
    </div>
  );
}

function NewDiscussion({ base, onCancel, onCreated }: { base: string; onCancel: () => void; onCreated: (num: number) => void }) {
  const t = useT(communityText);
  const [title, setTitle] = useState("");
  const [body, setBody] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const made = await api<{ num: number }>(base, { body: { title: title.trim(), description: body } });
      onCreated(made.num);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <form className="card stack new-discussion" onSubmit={(e) => void submit(e)} data-testid="new-discussion-form">
      <h3>{t("newDiscussion")}</h3>
      <label className="field">
        <span>{t("title")}</span>
        <input value={title} onChange={(e) => setTitle(e.target.value)} minLength={3} maxLength={200} required autoFocus data-testid="discussion-title" />
      </label>
      <div className="field">
        <span>{t("body")}</span>
        <MarkdownField value={body} onChange={setBody} label={t("body")} rows={7} testId="discussion-body" />
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <div className="row">
        <span className="spacer" />
        <button type="button" className="button" onClick={onCancel}>
          {t("cancel")}
        </button>
        <button type="submit" className="button primary" disabled={busy || title.trim().length < 3} data-testid="discussion-submit">
          {t("openDiscussion")}
        </button>
      </div>
    </form>
  );
}

function RoleBadges({ person }: { person: Person }) {
  const t = useT(communityText);
  return (
    <>
      {(person.roles ?? []).map((role) => (
        <span key={role} className={`tag role role-${role}`} data-testid={`role-${role}`}>
          {role === "author" ? t("roleAuthor") : role === "maintainer" ? t("roleMaintainer") : role === "admin" ? t("roleAdmin") : role}
        </span>
      ))}
    </>
  );
}

function Thread({ base, num, workspace, onBack }: { base: string; num: number; workspace: string; onBack: () => void }) {
  const t = useT(communityText);
  const { me } = useSession();
  const details = useAsync(() => api<Details>(`${base}/${num}`), [base, num]);
  const maintains = useMaintains(workspace);
  const [error, setError] = useState<unknown>(null);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [renaming, setRenaming] = useState<string | null>(null);

  const act = async (path: string, body: unknown) => {
    setBusy(true);
    setError(null);
    try {
      await api(`${base}/${num}${path}`, { body });
      details.reload();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="discussions thread" data-testid="discussion-thread">
      <button type="button" className="link" onClick={onBack} data-testid="back-to-discussions">
        ← {t("allDiscussions")}
      </button>
      <Loaded state={details}>
        {(d) => {
          const mine = !!me && d.author.name === me.username;
          const mayModerate = mine || maintains;
          const comments = d.events.filter((e) => e.type === "comment");
          const people = Array.from(new Set([d.author.name, ...comments.map((c) => c.author.name)])).filter((n) => n !== me?.username && n !== "deleted");
          const children = new Map<string, DiscussionEvent[]>();
          for (const c of comments) {
            if (c.parent) children.set(c.parent, [...(children.get(c.parent) ?? []), c]);
          }
          const known = new Set(comments.map((c) => c.id));
          const top = d.events.filter((e) => e.type !== "comment" || !e.parent || !known.has(e.parent));
          return (
            <>
              <header className="thread-head">
                {renaming !== null ? (
                  <form
                    className="row"
                    onSubmit={(e) => {
                      e.preventDefault();
                      void act("/title", { title: renaming.trim() }).then((ok) => ok && setRenaming(null));
                    }}
                  >
                    <input value={renaming} onChange={(e) => setRenaming(e.target.value)} minLength={3} maxLength={200} aria-label={t("title")} autoFocus className="rename-input" />
                    <button type="submit" className="button small primary" disabled={busy || renaming.trim().length < 3}>
                      {t("save")}
                    </button>
                    <button type="button" className="button small" onClick={() => setRenaming(null)}>
                      {t("cancel")}
                    </button>
                  </form>
                ) : (
                  <h2 data-testid="discussion-heading">
                    {d.title} <span className="muted">#{d.num}</span>
                  </h2>
                )}
                <div className="row">
                  <span className={`tag ${d.status === "open" ? "ok" : ""}`} data-testid="discussion-status">
                    {d.status === "open" ? t("statusOpen") : t("statusClosed")}
                  </span>
                  {d.pinned ? (
                    <span className="tag accent">
                      <Icon name="pin" size={11} /> {t("pinned")}
                    </span>
                  ) : null}
                  <span className="muted small">
                    {t("openedBy", { name: d.author.name })} · <Ago iso={d.createdAt} /> · {d.numComments === 1 ? t("oneComment") : t("nComments", { n: d.numComments })}
                  </span>
                  <span className="spacer" />
                  {mayModerate && renaming === null ? (
                    <button type="button" className="button small" onClick={() => setRenaming(d.title)}>
                      {t("rename")}
                    </button>
                  ) : null}
                  {maintains ? (
                    <button type="button" className="button small" disabled={busy} onClick={() => void act("/pin", { pinned: !d.pinned })} data-testid="pin-discussion">
                      {d.pinned ? t("unpin") : t("pin")}
                    </button>
                  ) : null}
                  {mayModerate ? (
                    <button type="button" className="button small" disabled={busy} onClick={() => void act("/status", { status: d.status === "open" ? "closed" : "open" })} data-testid="toggle-status">
                      {d.status === "open" ? t("close") : t("reopen")}
                    </button>
                  ) : null}
                </div>
              </header>
              {error ? <ErrorNote error={error} /> : null}
              <ol className="timeline">
                {top.map((event) =>
                  event.type === "comment" ? (
                    <li key={event.id}>
                      <Comment base={`${base}/${num}`} event={event} replies={children} people={people} maintains={maintains} onChanged={details.reload} />
                    </li>
                  ) : (
                    <li key={event.id} className="timeline-event muted small" data-testid={`event-${event.type}`}>
                      <UserLink name={event.author.name} /> {describe(event, t)} · <Ago iso={event.createdAt} />
                    </li>
                  ),
                )}
              </ol>
              {me ? (
                <form
                  className="card stack composer"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void act("/comment", { comment: draft }).then((ok) => ok && setDraft(""));
                  }}
                >
                  <MarkdownField value={draft} onChange={setDraft} label={t("addComment")} people={people} testId="comment-body" />
                  <div className="row">
                    <span className="spacer" />
                    {mayModerate ? (
                      <button
                        type="button"
                        className="button"
                        disabled={busy}
                        onClick={() => void act("/status", { status: d.status === "open" ? "closed" : "open", ...(draft.trim() ? { comment: draft } : {}) }).then((ok) => ok && setDraft(""))}
                      >
                        {d.status === "open" ? (draft.trim() ? t("closeWithComment") : t("close")) : draft.trim() ? t("reopenWithComment") : t("reopen")}
                      </button>
                    ) : null}
                    <button type="submit" className="button primary" disabled={busy || !draft.trim()} data-testid="comment-submit">
                      {t("comment")}
                    </button>
                  </div>
                </form>
              ) : null}
            </>
          );
        }}
      </Loaded>
    </section>
  );
}

function describe(event: DiscussionEvent, t: T<typeof communityText.en>): string {
  if (event.type === "status-change") return event.data.status === "closed" ? t("eventClosed") : t("eventReopened");
  if (event.type === "title-change") return t("eventRenamed", { from: event.data.from ?? "", to: event.data.to ?? "" });
  if (event.type === "pin") return event.data.pinned ? t("eventPinned") : t("eventUnpinned");
  return "";
}

function Comment({
  base,
  event,
  replies,
  people,
  maintains,
  onChanged,
}: {
  base: string;
  event: DiscussionEvent;
  replies: Map<string, DiscussionEvent[]>;
  people: string[];
  maintains: boolean;
  onChanged: () => void;
}) {
  const t = useT(communityText);
  const { me } = useSession();
  const [mode, setMode] = useState<"view" | "reply" | "edit" | "history">("view");
  const [text, setText] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const data = event.data;
  const mine = !!me && event.author.name === me.username;
  const hidden = !!data.hidden;

  const send = async (path: string, body: unknown) => {
    setBusy(true);
    setError(null);
    try {
      await api(`${base}${path}`, { body });
      setMode("view");
      setText("");
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const hide = () => {
    if (!window.confirm(t("confirmHide"))) return;
    void send(`/comment/${event.id}/hide`, {});
  };

  return (
    <article className={`comment${hidden ? " hidden-comment" : ""}`} data-testid="comment" data-comment-id={event.id}>
      <header className="row comment-head">
        <strong>
          <UserLink name={event.author.name} />
        </strong>
        <RoleBadges person={event.author} />
        <span className="muted small">
          <Ago iso={event.createdAt} />
        </span>
        {data.edited && !hidden ? (
          <button type="button" className="link small" onClick={() => setMode(mode === "history" ? "view" : "history")} data-testid="comment-edited">
            {t("edited", { n: data.numEdits ?? 1 })}
          </button>
        ) : null}
        <span className="spacer" />
        {me && !hidden ? (
          <button type="button" className="button small" onClick={() => setMode(mode === "reply" ? "view" : "reply")} data-testid="reply">
            {t("reply")}
          </button>
        ) : null}
        {mine && !hidden ? (
          <button
            type="button"
            className="button small"
            onClick={() => {
              setText(data.latest?.raw ?? "");
              setMode("edit");
            }}
            data-testid="edit-comment"
          >
            {t("edit")}
          </button>
        ) : null}
        {(mine || maintains) && !hidden ? (
          <button type="button" className="button small danger" onClick={hide} disabled={busy} data-testid="hide-comment">
            {t("hide")}
          </button>
        ) : null}
      </header>
      {hidden ? (
        <p className="muted hidden-note">{data.hiddenBy ? t("hiddenBy", { name: data.hiddenBy }) : t("hidden")}</p>
      ) : mode === "edit" ? (
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void send(`/comment/${event.id}/edit`, { content: text });
          }}
        >
          <MarkdownField value={text} onChange={setText} label={t("edit")} people={people} testId="edit-body" autoFocus />
          <div className="row">
            <span className="spacer" />
            <button type="button" className="button small" onClick={() => setMode("view")}>
              {t("cancel")}
            </button>
            <button type="submit" className="button small primary" disabled={busy || !text.trim()} data-testid="edit-submit">
              {t("save")}
            </button>
          </div>
        </form>
      ) : (
        <ServerHtml html={data.latest?.html ?? ""} className="comment-body" testId="comment-html" />
      )}
      {mode === "history" && data.history ? (
        <div className="history card" data-testid="comment-history">
          <h4>{t("editHistory")}</h4>
          <ol>
            {data.history.map((revision, i) => (
              <li key={i}>
                <div className="muted small">
                  <UserLink name={revision.author.name} /> · <Ago iso={revision.updatedAt} /> {i === data.history!.length - 1 ? `· ${t("original")}` : ""}
                </div>
                <ServerHtml html={revision.html} />
              </li>
            ))}
          </ol>
        </div>
      ) : null}
      {error ? <ErrorNote error={error} /> : null}
      {mode === "reply" ? (
        <form
          className="stack reply-form"
          onSubmit={(e) => {
            e.preventDefault();
            void send("/comment", { comment: text, parent: event.id });
          }}
        >
          <MarkdownField value={text} onChange={setText} label={t("reply")} people={people} rows={3} testId="reply-body" autoFocus />
          <div className="row">
            <span className="spacer" />
            <button type="button" className="button small" onClick={() => setMode("view")}>
              {t("cancel")}
            </button>
            <button type="submit" className="button small primary" disabled={busy || !text.trim()} data-testid="reply-submit">
              {t("reply")}
            </button>
          </div>
        </form>
      ) : null}
      {(replies.get(event.id) ?? []).length ? (
        <ol className="replies">
          {(replies.get(event.id) ?? []).map((child) => (
            <li key={child.id}>
              <Comment base={base} event={child} replies={replies} people={people} maintains={maintains} onChanged={onChanged} />
            </li>
          ))}
        </ol>
      ) : null}
    </article>
  );
}
