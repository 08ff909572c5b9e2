// Notifications (replies, mentions, status changes, finished jobs), and for workspace owners
// and admins: the workspace's webhook and the moderation audit log.
import { useEffect, useState } from "react";
import { api } from "../api";
import { Ago, UserLink, targetHref, type TargetRef } from "../components/community";
import { notificationsChanged } from "../components/notification-bell";
import { CopyButton, ErrorNote, Loaded, formatTime, useAsync } from "../components/ui";
import { useLang, useT } from "../i18n";
import { communityText } from "../i18n/community";
import { Link, navigate, useLocation } from "../router";
import { useSession } from "../session";

interface Notification {
  id: number;
  kind: "reply" | "mention" | "status" | "job_finished";
  actor: string | null;
  title: string;
  data: { target?: TargetRef; num?: number; title?: string; status?: string; job?: string; output_repo?: string; path?: string };
  read: boolean;
  created_at: string;
}

const KIND_ICON: Record<string, string> = { reply: "↩", mention: "@", status: "●", job_finished: "♨" };

function notificationHref(n: Notification): string | null {
  if (n.kind === "job_finished" && n.data.job) return `/refinery/${encodeURIComponent(n.data.job)}`;
  return targetHref(n.data.target, n.data.num);
}

/** The workspaces whose webhook and audit log the signed-in user may manage. */
function useManagedWorkspaces(): string[] {
  const { me } = useSession();
  if (!me) return [];
  return me.workspaces.filter((w) => me.is_admin || w.role === "owner" || w.role === "admin").map((w) => w.slug);
}

export default function Notifications() {
  const t = useT(communityText);
  const { query } = useLocation();
  const managed = useManagedWorkspaces();
  const tab = managed.length ? (query.get("tab") ?? "inbox") : "inbox";
  const setTab = (name: string) => navigate(name === "inbox" ? "/notifications" : `/notifications?tab=${name}`, true);
  return (
    <div className="page narrow-wide">
      <div className="page-head">
        <h1>{t("notifications")}</h1>
      </div>
      {managed.length ? (
        <div className="tabs" role="tablist">
          {(["inbox", "webhook", "audit"] as const).map((name) => (
            <button key={name} type="button" role="tab" aria-selected={tab === name} onClick={() => setTab(name)} data-testid={`tab-${name}`}>
              {name === "inbox" ? t("inbox") : name === "webhook" ? t("webhook") : t("auditLog")}
            </button>
          ))}
        </div>
      ) : null}
      {tab === "webhook" ? <Webhook workspaces={managed} /> : tab === "audit" ? <Audit workspaces={managed} /> : <Inbox />}
    </div>
  );
}

function Inbox() {
  const t = useT(communityText);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const list = useAsync(() => api<{ data: Notification[]; unread: number }>(`/v1/notifications?limit=100${unreadOnly ? "&unread=true" : ""}`), [unreadOnly]);
  const [error, setError] = useState<unknown>(null);

  const markRead = async (ids?: number[]) => {
    setError(null);
    try {
      await api("/v1/notifications/read", { body: ids ? { ids } : {} });
      notificationsChanged();
      if (list.value) {
        list.set({
          unread: ids ? Math.max(0, list.value.unread - ids.length) : 0,
          data: list.value.data.map((n) => (!ids || ids.includes(n.id) ? { ...n, read: true } : n)),
        });
      }
    } catch (e) {
      setError(e);
    }
  };

  const open = (n: Notification) => {
    if (!n.read) void markRead([n.id]);
    const href = notificationHref(n);
    if (href) navigate(href);
  };

  return (
    <section>
      <div className="row inbox-bar">
        <label className="row">
          <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.target.checked)} />
          <span>{t("unreadOnly")}</span>
        </label>
        <span className="muted small" data-testid="unread-count">
          {list.value ? t("nUnread", { n: list.value.unread }) : ""}
        </span>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => void markRead()} disabled={!list.value?.unread} data-testid="mark-all-read">
          {t("markAllRead")}
        </button>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <Loaded state={list} isEmpty={(l) => l.data.length === 0} empty={unreadOnly ? t("noUnread") : t("noNotifications")}>
        {(l) => (
          <ul className="notification-list" data-testid="notification-list">
            {l.data.map((n) => (
              <li key={n.id} className={n.read ? "read" : "unread"} data-testid={`notification-${n.kind}`}>
                <span className={`kind-icon kind-${n.kind}`} aria-hidden="true">
                  {KIND_ICON[n.kind] ?? "•"}
                </span>
                <div className="notification-main">
                  <button type="button" className="notification-title" onClick={() => open(n)}>
                    {n.title}
                  </button>
                  <div className="muted small row">
                    <span className="tag">{t(`kind_${n.kind}`)}</span>
                    {n.actor ? <UserLink name={n.actor} /> : null}
                    <Ago iso={n.created_at} />
                  </div>
                </div>
                {n.read ? null : (
                  <button type="button" className="button small" onClick={() => void markRead([n.id])} data-testid="mark-read">
                    {t("markRead")}
                  </button>
                )}
              </li>
            ))}
          </ul>
        )}
      </Loaded>
    </section>
  );
}

interface WebhookView {
  workspace: string;
  url: string;
  events: string[];
  active: boolean;
  created_by: string;
  updated_at: string;
  secret?: string;
}

interface Delivery {
  id: number;
  event: string;
  status: string;
  attempts: number;
  response_status: number | null;
  error: string | null;
  created_at: string;
  delivered_at: string | null;
}

function WorkspacePicker({ workspaces, value, onChange, allowAll }: { workspaces: string[]; value: string; onChange: (slug: string) => void; allowAll?: boolean }) {
  const t = useT(communityText);
  return (
    <label className="row">
      <span className="muted">{t("workspace")}</span>
      <select value={value} onChange={(e) => onChange(e.target.value)} data-testid="workspace-picker">
        {allowAll ? <option value="">{t("allWorkspaces")}</option> : null}
        {workspaces.map((slug) => (
          <option key={slug} value={slug}>
            {slug}
          </option>
        ))}
      </select>
    </label>
  );
}

function Webhook({ workspaces }: { workspaces: string[] }) {
  const t = useT(communityText);
  const { lang } = useLang();
  const [workspace, setWorkspace] = useState(workspaces[0]);
  const hook = useAsync(() => api<{ webhook: WebhookView | null; events: string[] }>(`/v1/workspaces/${encodeURIComponent(workspace)}/webhook`), [workspace]);
  const deliveries = useAsync(() => api<{ data: Delivery[] }>(`/v1/workspaces/${encodeURIComponent(workspace)}/webhook/deliveries?limit=20`).then((r) => r.data), [workspace]);
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>([]);
  const [active, setActive] = useState(true);
  const [rotate, setRotate] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState<string | null>(null);

  useEffect(() => {
    const current = hook.value;
    if (!current) return;
    setUrl(current.webhook?.url ?? "");
    setEvents(current.webhook?.events ?? current.events);
    setActive(current.webhook?.active ?? true);
    setRotate(false);
  }, [hook.value]);
  useEffect(() => {
    setSecret(null);
    setNote(null);
    setError(null);
  }, [workspace]);

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    setNote(null);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const path = `/v1/workspaces/${encodeURIComponent(workspace)}/webhook`;
  const save = () =>
    run(async () => {
      const answer = await api<{ webhook: WebhookView; events: string[] }>(path, { method: "PUT", body: { url: url.trim(), events, active, rotate_secret: rotate } });
      setSecret(answer.webhook.secret ?? null);
      hook.set({ webhook: answer.webhook, events: answer.events });
      setNote(t("webhookSaved"));
    });
  const remove = () =>
    run(async () => {
      if (!window.confirm(t("confirmRemoveWebhook"))) return;
      await api(path, { method: "DELETE" });
      setSecret(null);
      hook.reload();
    });
  const ping = () =>
    run(async () => {
      await api(`${path}/ping`, { method: "POST" });
      setNote(t("pingQueued"));
      setTimeout(deliveries.reload, 1500);
    });
  const all = hook.value?.events ?? [];

  return (
    <section className="stack">
      <div className="row">
        <WorkspacePicker workspaces={workspaces} value={workspace} onChange={setWorkspace} />
      </div>
      <p className="muted">{t("webhookLead")}</p>
      <Loaded state={hook}>
        {(current) => (
          <form
            className="card stack"
            onSubmit={(e) => {
              e.preventDefault();
              void save();
            }}
            data-testid="webhook-form"
          >
            <label className="field">
              <span>{t("webhookUrl")}</span>
              <input type="url" value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://hooks.example.com/danlu" required data-testid="webhook-url" />
            </label>
            <fieldset className="plain">
              <legend>{t("webhookEvents")}</legend>
              <div className="row">
                {all.map((name) => (
                  <label key={name} className="row">
                    <input type="checkbox" checked={events.includes(name)} onChange={(e) => setEvents(e.target.checked ? [...events, name] : events.filter((x) => x !== name))} />
                    <code>{name}</code>
                  </label>
                ))}
              </div>
            </fieldset>
            <div className="row">
              <label className="row">
                <input type="checkbox" checked={active} onChange={(e) => setActive(e.target.checked)} />
                <span>{t("webhookActive")}</span>
              </label>
              {current.webhook ? (
                <label className="row">
                  <input type="checkbox" checked={rotate} onChange={(e) => setRotate(e.target.checked)} />
                  <span>{t("rotateSecret")}</span>
                </label>
              ) : null}
            </div>
            {secret ? (
              <div className="secret-once" data-testid="webhook-secret">
                <strong>{t("secretOnce")}</strong>
                <code>{secret}</code>
                <CopyButton text={secret} />
              </div>
            ) : null}
            {note ? <p className="muted" role="status">{note}</p> : null}
            {error ? <ErrorNote error={error} /> : null}
            <div className="row">
              {current.webhook ? (
                <span className="muted small">
                  {t("webhookBy", { name: current.webhook.created_by })} · {formatTime(current.webhook.updated_at, lang)}
                </span>
              ) : null}
              <span className="spacer" />
              {current.webhook ? (
                <>
                  <button type="button" className="button danger" onClick={() => void remove()} disabled={busy}>
                    {t("removeWebhook")}
                  </button>
                  <button type="button" className="button" onClick={() => void ping()} disabled={busy}>
                    {t("sendPing")}
                  </button>
                </>
              ) : null}
              <button type="submit" className="button primary" disabled={busy || !url.trim()} data-testid="webhook-save">
                {t("save")}
              </button>
            </div>
          </form>
        )}
      </Loaded>
      <h2>{t("deliveries")}</h2>
      <Loaded state={deliveries} isEmpty={(l) => l.length === 0} empty={t("noDeliveries")}>
        {(l) => (
          <table className="table">
            <thead>
              <tr>
                <th>{t("event")}</th>
                <th>{t("status")}</th>
                <th>{t("attempts")}</th>
                <th>{t("when")}</th>
              </tr>
            </thead>
            <tbody>
              {l.map((d) => (
                <tr key={d.id}>
                  <td>
                    <code>{d.event}</code>
                  </td>
                  <td>
                    <span className={`tag ${d.status === "delivered" ? "ok" : d.status === "failed" ? "bad" : "warn"}`}>{d.status}</span> {d.response_status ? <code>{d.response_status}</code> : null}
                    {d.error ? <div className="muted small">{d.error}</div> : null}
                  </td>
                  <td>{d.attempts}</td>
                  <td>{formatTime(d.created_at, lang)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}

interface AuditEntry {
  id: number;
  actor: string;
  action: string;
  workspace: string | null;
  target: string;
  data: Record<string, unknown>;
  created_at: string;
}

function auditHref(target: string): string | null {
  // "apps/slug#3", "models/ns/name#2"
  const match = /^(apps|models|datasets)\/(.+?)(?:#(\d+))?$/.exec(target);
  if (!match) return null;
  const kind = match[1] === "apps" ? "app" : match[1] === "models" ? "model" : "dataset";
  return targetHref({ kind, name: match[2] }, match[3] ? Number(match[3]) : undefined);
}

function Audit({ workspaces }: { workspaces: string[] }) {
  const t = useT(communityText);
  const { lang } = useLang();
  const [workspace, setWorkspace] = useState("");
  const entries = useAsync(() => api<{ data: AuditEntry[] }>(`/v1/community/audit?limit=100${workspace ? `&workspace=${encodeURIComponent(workspace)}` : ""}`).then((r) => r.data), [workspace]);
  return (
    <section className="stack">
      <div className="row">
        <WorkspacePicker workspaces={workspaces} value={workspace} onChange={setWorkspace} allowAll />
      </div>
      <p className="muted">{t("auditLead")}</p>
      <Loaded state={entries} isEmpty={(l) => l.length === 0} empty={t("noAudit")}>
        {(l) => (
          <table className="table" data-testid="audit-log">
            <thead>
              <tr>
                <th>{t("when")}</th>
                <th>{t("who")}</th>
                <th>{t("action")}</th>
                <th>{t("target")}</th>
              </tr>
            </thead>
            <tbody>
              {l.map((entry) => {
                const href = auditHref(entry.target);
                const details = Object.entries(entry.data ?? {}).filter(([, v]) => v !== "" && v !== null && v !== undefined);
                return (
                  <tr key={entry.id}>
                    <td>{formatTime(entry.created_at, lang)}</td>
                    <td>
                      <UserLink name={entry.actor} />
                    </td>
                    <td>
                      <code>{entry.action}</code>
                    </td>
                    <td>
                      {href ? <Link to={href}>{entry.target}</Link> : <code>{entry.target}</code>}
                      {details.length ? (
                        <div className="muted small">
                          {details.map(([k, v]) => (
                            <span key={k} className="audit-detail">
                              {k}: {typeof v === "string" ? v : JSON.stringify(v)}
                            </span>
                          ))}
                        </div>
                      ) : null}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Loaded>
    </section>
  );
}
