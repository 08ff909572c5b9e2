// An app's conversation logs and run traces (node timings as a waterfall, inputs and
// outputs, tokens, cost, time to first token, feedback), and its annotations: good answers
// kept as saved replies or training examples, exported to a hub dataset for the refinery.
import { useState } from "react";
import { api } from "../api";
import { useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { insightText } from "../i18n/insight";
import { Link } from "../router";
import { useSession } from "../session";
import { formatCount, formatMs, formatYuan } from "./insight-dashboard";
import { Waterfall, type Span } from "./insight-charts";
import { Dialog, ErrorNote, Loaded, formatTime, useAsync } from "./ui";

interface Feedback {
  rating: "like" | "dislike" | "none" | null;
  comment: string | null;
}

interface RunRow {
  id: string;
  version: number | null;
  status: string;
  user: string | null;
  conversation_id: string | null;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  error: string | null;
  elapsed_ms: number | null;
  created_at: string;
}

interface ConversationRow {
  id: string;
  user: string | null;
  created_at: string;
  last_message_at: string | null;
  messages: number;
  first_query: string | null;
  match: string | null;
}

interface ConversationDetail {
  id: string;
  user: string | null;
  created_at: string;
  messages: { position: number; role: string; content: string; run_id: string | null; created_at: string; feedback?: Feedback | null }[];
}

interface TraceNode {
  node_id: string;
  type: string | null;
  status: string | null;
  started_ms: number | null;
  elapsed_ms: number | null;
  inputs: unknown;
  outputs: unknown;
  error: string | null;
}

interface Trace {
  run_id: string;
  version: number | null;
  status: string;
  error: string | null;
  user: string | null;
  conversation_id: string | null;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  messages: { role: string; content: string }[];
  usage: { prompt_tokens?: number; completion_tokens?: number } | null;
  elapsed_ms: number | null;
  created_at: string;
  recorded: boolean;
  insight: {
    model?: string | null;
    input_tokens?: number;
    output_tokens?: number;
    cost?: number;
    latency_ms?: number | null;
    ttft_ms?: number | null;
    user?: string;
    user_kind?: string;
    models?: unknown;
    unpriced_models?: string[];
  };
  nodes: TraceNode[];
  feedback: Feedback | null;
}

export interface Annotation {
  id: string;
  run_id: string;
  question: string;
  answer: string;
  saved_reply: boolean;
  training: boolean;
  exported_to: string | null;
  exported_at: string | null;
  created_by: string | null;
  created_at: string;
}

function answerOf(outputs: Record<string, unknown> | null | undefined): string {
  if (!outputs) return "";
  for (const key of ["answer", "text", "result"]) if (typeof outputs[key] === "string") return outputs[key] as string;
  return JSON.stringify(outputs);
}

function Json({ value }: { value: unknown }) {
  return <pre className="json">{JSON.stringify(value ?? null, null, 2)}</pre>;
}

function StatusTag({ status }: { status: string }) {
  const t = useT(insightText);
  const ok = status === "succeeded";
  return <span className={`tag ${ok ? "ok" : status === "failed" ? "bad" : ""}`}>{ok ? t("succeeded") : status === "failed" ? t("failedStatus") : status}</span>;
}

function FeedbackTag({ feedback, quiet }: { feedback: Feedback | null | undefined; quiet?: boolean }) {
  const t = useT(insightText);
  if (!feedback || (!feedback.rating && !feedback.comment) || (feedback.rating === "none" && !feedback.comment)) return quiet ? null : <span className="muted">{t("noFeedback")}</span>;
  return (
    <span className="row" data-testid="feedback">
      {feedback.rating === "like" ? <span className="tag ok">▲ {t("like")}</span> : null}
      {feedback.rating === "dislike" ? <span className="tag bad">▼ {t("dislike")}</span> : null}
      {feedback.comment ? <q>{feedback.comment}</q> : null}
    </span>
  );
}

// --- annotate ------------------------------------------------------------------------------

export function AnnotateDialog({
  slug,
  runId,
  question,
  answer,
  training,
  onClose,
  onSaved,
}: {
  slug: string;
  runId: string;
  question: string;
  answer: string;
  training: boolean;
  onClose: () => void;
  onSaved: (saved: Annotation) => void;
}) {
  const t = useT(insightText);
  const c = useT(common);
  const [text, setText] = useState(answer);
  const [asReply, setAsReply] = useState(!training);
  const [asTraining, setAsTraining] = useState(training);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const save = async () => {
    setBusy(true);
    setError(null);
    try {
      const saved = await api<Annotation>(`/v1/apps/${slug}/annotations`, {
        body: { run_id: runId, saved_reply: asReply, training: asTraining, ...(text !== answer ? { answer: text } : {}) },
      });
      onSaved(saved);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("annotate")} onClose={onClose} wide>
      <p className="muted">{t("annotateHint")}</p>
      <div className="field">
        <span>{t("question")}</span>
        <div className="message user message-text">{question}</div>
      </div>
      <label className="field">
        <span>{t("answer")}</span>
        <textarea rows={6} value={text} onChange={(e) => setText(e.target.value)} data-testid="annotation-answer" />
      </label>
      <div className="row">
        <label className="row">
          <input type="checkbox" checked={asReply} onChange={(e) => setAsReply(e.target.checked)} /> {t("savedReply")}
        </label>
        <label className="row">
          <input type="checkbox" checked={asTraining} onChange={(e) => setAsTraining(e.target.checked)} /> {t("training")}
        </label>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {c("cancel")}
        </button>
        <button type="button" className="button primary" disabled={busy || (!asReply && !asTraining) || !text.trim()} onClick={() => void save()} data-testid="annotation-save">
          {c("save")}
        </button>
      </div>
    </Dialog>
  );
}

/** "Save as reply" and "Add to training data" for one answer, with the dialog they open. */
function AnnotateButtons({ slug, runId, question, answer }: { slug: string; runId: string; question: string; answer: string }) {
  const t = useT(insightText);
  const [open, setOpen] = useState<"reply" | "training" | null>(null);
  const [saved, setSaved] = useState(false);
  return (
    <span className="row">
      <button type="button" className="button small" onClick={() => setOpen("reply")} data-testid="save-as-reply">
        {t("saveAsReply")}
      </button>
      <button type="button" className="button small" onClick={() => setOpen("training")} data-testid="add-to-training">
        {t("addToTraining")}
      </button>
      {saved ? (
        <span className="tag ok" role="status">
          {t("annotationSaved")}
        </span>
      ) : null}
      {open ? (
        <AnnotateDialog
          slug={slug}
          runId={runId}
          question={question}
          answer={answer}
          training={open === "training"}
          onClose={() => setOpen(null)}
          onSaved={() => {
            setOpen(null);
            setSaved(true);
          }}
        />
      ) : null}
    </span>
  );
}

// --- a run's trace ----------------------------------------------------------------------------

export function RunTrace({ slug, runId }: { slug: string; runId: string }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const trace = useAsync(() => api<Trace>(`/v1/apps/${slug}/insight/runs/${runId}`), [slug, runId]);
  return (
    <Loaded state={trace}>
      {(run) => {
        const question = run.messages.find((m) => m.role === "user")?.content ?? JSON.stringify(run.inputs);
        const answer = run.messages.find((m) => m.role === "assistant")?.content ?? answerOf(run.outputs);
        const total = run.elapsed_ms ?? run.insight.latency_ms ?? 0;
        let cursor = 0;
        const spans: Span[] = run.nodes.map((node) => {
          const start = node.started_ms ?? cursor;
          const duration = node.elapsed_ms ?? 0;
          cursor = start + duration;
          const name = `${node.node_id}${node.type && node.type !== node.node_id ? ` (${node.type})` : ""}`;
          return {
            id: node.node_id,
            label: (
              <>
                <code>{node.node_id}</code> {node.type && node.type !== node.node_id ? <span className="muted small">{node.type}</span> : null}
              </>
            ),
            start,
            duration,
            status: node.status,
            description: `${name}: ${t("startsAt", { start: formatMs(start) })}, ${t("took", { ms: formatMs(duration) })}${node.status && node.status !== "succeeded" ? ` (${node.status})` : ""}`,
            details: (
              <details>
                <summary>
                  {t("nodeInputs")} / {t("nodeOutputs")}
                </summary>
                <div className="grid-2">
                  <div>
                    <strong className="small">{t("nodeInputs")}</strong>
                    <Json value={node.inputs} />
                  </div>
                  <div>
                    <strong className="small">{t("nodeOutputs")}</strong>
                    <Json value={node.outputs} />
                  </div>
                </div>
                {node.error ? <ErrorNote error={new Error(node.error)} /> : null}
              </details>
            ),
          };
        });
        const tokensIn = run.insight.input_tokens ?? run.usage?.prompt_tokens ?? 0;
        const tokensOut = run.insight.output_tokens ?? run.usage?.completion_tokens ?? 0;
        return (
          <div className="stack" data-testid="trace">
            <div className="row">
              <h3 style={{ margin: 0 }}>{t("trace")}</h3>
              <code className="small">{run.run_id}</code>
              <StatusTag status={run.status} />
              <span className="spacer" />
              <span className="muted small">{formatTime(run.created_at, lang)}</span>
            </div>
            {run.error ? <ErrorNote error={new Error(run.error)} /> : null}
            {!run.recorded ? <p className="muted small">{t("notRecorded")}</p> : null}
            <div className="trace-stats" data-testid="trace-stats">
              <div>
                <span>{t("user")}</span>
                <b>{run.user ?? run.insight.user ?? t("anonymous")}</b>
              </div>
              <div>
                <span>{t("latency")}</span>
                <b>{total ? formatMs(total) : "—"}</b>
              </div>
              <div>
                <span>{t("ttft")}</span>
                <b>{run.insight.ttft_ms !== null && run.insight.ttft_ms !== undefined ? formatMs(run.insight.ttft_ms) : "—"}</b>
              </div>
              <div>
                <span>{t("tokens")}</span>
                <b>{t("tokensInOut", { input: formatCount(tokensIn, lang), output: formatCount(tokensOut, lang) })}</b>
              </div>
              <div>
                <span>{t("cost")}</span>
                <b data-testid="trace-cost">{run.insight.cost !== undefined ? formatYuan(run.insight.cost, lang) : "—"}</b>
              </div>
              <div>
                <span>{t("model")}</span>
                <b>{run.insight.model ?? "—"}</b>
              </div>
              <div>
                <span>{t("feedback")}</span>
                <b>
                  <FeedbackTag feedback={run.feedback} />
                </b>
              </div>
            </div>
            {run.insight.unpriced_models?.length ? <p className="muted small">{t("unpriced", { models: run.insight.unpriced_models.join(", ") })}</p> : null}
            {run.messages.length ? (
              <div className="stack">
                {run.messages.map((m, i) => (
                  <div key={i} className={`message ${m.role}`}>
                    <strong className="small">{m.role === "user" ? t("question") : t("answer")}</strong>
                    <div className="message-text">{m.content}</div>
                  </div>
                ))}
              </div>
            ) : null}
            {run.status === "succeeded" ? <AnnotateButtons slug={slug} runId={run.run_id} question={question} answer={answer} /> : null}
            <h3>{t("nodes")}</h3>
            <Waterfall spans={spans} total={total} formatMs={formatMs} caption={t("nodes")} />
            <details>
              <summary>
                {t("runInputs")} / {t("runOutputs")}
              </summary>
              <div className="grid-2">
                <Json value={run.inputs} />
                <Json value={run.outputs} />
              </div>
            </details>
          </div>
        );
      }}
    </Loaded>
  );
}

// --- one conversation ---------------------------------------------------------------------------

function ConversationView({ slug, id, onTrace }: { slug: string; id: string; onTrace: (runId: string) => void }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const found = useAsync(() => api<ConversationDetail>(`/v1/apps/${slug}/insight/conversations/${id}`), [slug, id]);
  return (
    <Loaded state={found}>
      {(conversation) => (
        <div className="stack" data-testid="conversation">
          <div className="row">
            <h3 style={{ margin: 0 }}>{t("conversation")}</h3>
            <code className="small">{conversation.id}</code>
            <span className="spacer" />
            <span className="muted small">
              {conversation.user ?? t("anonymous")} · {formatTime(conversation.created_at, lang)}
            </span>
          </div>
          {conversation.messages.map((m, i) => {
            const question = m.role === "assistant" ? [...conversation.messages.slice(0, i)].reverse().find((x) => x.role === "user")?.content ?? "" : "";
            return (
              <div key={m.position} className={`message ${m.role}`}>
                <div className="row">
                  <strong className="small">{m.role === "user" ? t("question") : t("answer")}</strong>
                  <span className="muted small">{formatTime(m.created_at, lang)}</span>
                  {m.role === "assistant" ? <FeedbackTag feedback={m.feedback} quiet /> : null}
                </div>
                <div className="message-text">{m.content}</div>
                {m.role === "assistant" && m.run_id ? (
                  <div className="row">
                    <button type="button" className="button small" onClick={() => onTrace(m.run_id!)}>
                      {t("openTrace")}
                    </button>
                    <AnnotateButtons slug={slug} runId={m.run_id} question={question} answer={m.content} />
                  </div>
                ) : null}
              </div>
            );
          })}
        </div>
      )}
    </Loaded>
  );
}

// --- the logs tab ---------------------------------------------------------------------------------

type Selected = { kind: "run" | "conversation"; id: string; from?: string };

export function Logs({ slug }: { slug: string }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const [mode, setMode] = useState<"runs" | "conversations">("runs");
  const [typed, setTyped] = useState("");
  const [q, setQ] = useState("");
  const [status, setStatus] = useState("");
  const [limit, setLimit] = useState(50);
  const [selected, setSelected] = useState<Selected | null>(null);
  const params = new URLSearchParams({ limit: String(limit) });
  if (q) params.set("q", q);
  if (status && mode === "runs") params.set("status", status);
  const path = `/v1/apps/${slug}/insight/${mode}?${params}`;
  const list = useAsync(() => api<{ data: (RunRow | ConversationRow)[] }>(path).then((r) => r.data), [path]);

  return (
    <div className="stack">
      <form
        className="row"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setLimit(50);
          setQ(typed.trim());
        }}
      >
        <input type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder={t("search")} aria-label={t("search")} style={{ width: "min(420px, 100%)" }} data-testid="logs-search" />
        <button type="submit" className="button">
          {t("searchButton")}
        </button>
        <div className="tabs compact" role="group" aria-label={t("show")}>
          <button type="button" aria-pressed={mode === "runs"} onClick={() => setMode("runs")}>
            {t("runsList")}
          </button>
          <button type="button" aria-pressed={mode === "conversations"} onClick={() => setMode("conversations")}>
            {t("conversations")}
          </button>
        </div>
        {mode === "runs" ? (
          <select value={status} onChange={(e) => setStatus(e.target.value)} aria-label={t("status")}>
            <option value="">{t("anyStatus")}</option>
            <option value="succeeded">{t("succeeded")}</option>
            <option value="failed">{t("failedStatus")}</option>
          </select>
        ) : null}
      </form>
      <div className="logs-layout">
        <Loaded state={list} isEmpty={(rows) => rows.length === 0} empty={mode === "runs" ? t("noRuns") : t("noConversations")}>
          {(rows) => (
            <div className="stack">
              <ul className="log-list" data-testid={mode === "runs" ? "run-list" : "conversation-list"}>
                {rows.map((row) => {
                  const kind = mode === "runs" ? "run" : "conversation";
                  const current = selected?.id === row.id;
                  return (
                    <li key={row.id}>
                      <button type="button" className="log-item" aria-current={current} onClick={() => setSelected({ kind, id: row.id })}>
                        {mode === "runs" ? <RunItem run={row as RunRow} lang={lang} /> : <ConversationItem conversation={row as ConversationRow} lang={lang} />}
                      </button>
                    </li>
                  );
                })}
              </ul>
              {rows.length >= limit && limit < 200 ? (
                <button type="button" className="button small" onClick={() => setLimit((l) => Math.min(200, l + 50))}>
                  {t("loadMore")}
                </button>
              ) : null}
            </div>
          )}
        </Loaded>
        <div className="card log-detail">
          {selected === null ? (
            <p className="muted">{t("pickOne")}</p>
          ) : selected.kind === "run" ? (
            <>
              {selected.from ? (
                <button type="button" className="link" onClick={() => setSelected({ kind: "conversation", id: selected.from! })}>
                  ← {t("conversation")}
                </button>
              ) : null}
              <RunTrace slug={slug} runId={selected.id} />
            </>
          ) : (
            <ConversationView slug={slug} id={selected.id} onTrace={(runId) => setSelected({ kind: "run", id: runId, from: selected.id })} />
          )}
        </div>
      </div>
    </div>
  );
}

function RunItem({ run, lang }: { run: RunRow; lang: string }) {
  const t = useT(insightText);
  return (
    <>
      <span className="row">
        <StatusTag status={run.status} />
        <strong className="small">{run.user ?? t("anonymous")}</strong>
        <span className="spacer" />
        <span className="muted small">{run.elapsed_ms !== null ? formatMs(run.elapsed_ms) : ""}</span>
      </span>
      <span className="snippet">{run.error ?? answerOf(run.outputs)}</span>
      <span className="muted small">{formatTime(run.created_at, lang)}</span>
    </>
  );
}

function ConversationItem({ conversation, lang }: { conversation: ConversationRow; lang: string }) {
  const t = useT(insightText);
  return (
    <>
      <span className="row">
        <strong className="small">{conversation.user ?? t("anonymous")}</strong>
        <span className="spacer" />
        <span className="muted small">{t("messageCount", { n: conversation.messages })}</span>
      </span>
      <span className="snippet">{conversation.match ?? conversation.first_query ?? ""}</span>
      <span className="muted small">{formatTime(conversation.created_at, lang)}</span>
    </>
  );
}

// --- the annotations tab ----------------------------------------------------------------------------

export function Annotations({ slug }: { slug: string }) {
  const t = useT(insightText);
  const c = useT(common);
  const { lang } = useLang();
  const [filter, setFilter] = useState<"" | "saved_reply" | "training">("");
  const [exporting, setExporting] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const list = useAsync(() => api<{ data: Annotation[] }>(`/v1/apps/${slug}/annotations${filter ? `?${filter}=true` : ""}`).then((r) => r.data), [slug, filter]);
  const remove = async (annotation: Annotation) => {
    if (!confirm(t("confirmDeleteAnnotation"))) return;
    try {
      await api(`/v1/apps/${slug}/annotations/${annotation.id}`, { method: "DELETE" });
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div className="stack">
      <div className="row">
        <label className="row">
          {t("filter")}
          <select value={filter} onChange={(e) => setFilter(e.target.value as typeof filter)}>
            <option value="">{t("all")}</option>
            <option value="saved_reply">{t("onlyReplies")}</option>
            <option value="training">{t("onlyTraining")}</option>
          </select>
        </label>
        <span className="spacer" />
        <button type="button" className="button primary" onClick={() => setExporting(true)} data-testid="export-training">
          {t("exportTraining")}
        </button>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <Loaded state={list} isEmpty={(rows) => rows.length === 0} empty={t("noAnnotations")}>
        {(rows) => (
          <table className="table" data-testid="annotation-list">
            <thead>
              <tr>
                <th>{t("question")}</th>
                <th>{t("answer")}</th>
                <th>{t("annotationKind")}</th>
                <th>{c("created")}</th>
                <th>{c("actions")}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((a) => (
                <tr key={a.id}>
                  <td className="message-text">{a.question}</td>
                  <td className="message-text">{a.answer}</td>
                  <td>
                    <div className="row">
                      {a.saved_reply ? <span className="tag accent">{t("savedReply")}</span> : null}
                      {a.training ? <span className="tag ok">{t("training")}</span> : null}
                      {a.exported_to ? <span className="tag">{t("exportedTo", { repo: a.exported_to })}</span> : null}
                    </div>
                  </td>
                  <td>
                    {formatTime(a.created_at, lang)}
                    {a.created_by ? <div className="muted small">{t("createdBy", { name: a.created_by })}</div> : null}
                  </td>
                  <td>
                    <button type="button" className="button small danger" onClick={() => void remove(a)}>
                      {t("deleteAnnotation")}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {exporting ? (
        <ExportDialog
          slug={slug}
          onClose={() => {
            setExporting(false);
            list.reload();
          }}
        />
      ) : null}
    </div>
  );
}

function ExportDialog({ slug, onClose }: { slug: string; onClose: () => void }) {
  const t = useT(insightText);
  const c = useT(common);
  const { me } = useSession();
  const [repo, setRepo] = useState(`${me?.username ?? "me"}/${slug}-annotations`);
  const [path, setPath] = useState("annotations.jsonl");
  const [again, setAgain] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ repo: string; commit: string; added: number } | null>(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      setDone(await api(`/v1/apps/${slug}/annotations/export`, { body: { repo: repo.trim(), path: path.trim(), include_exported: again } }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog title={t("exportTraining")} onClose={onClose}>
      {done ? (
        <>
          <p role="status" data-testid="export-done">
            {t("exported", { n: done.added, repo: done.repo, commit: done.commit.slice(0, 8) })}
          </p>
          <div className="actions">
            <Link className="button" to={`/hub/datasets/${done.repo}`}>
              {t("openDataset")}
            </Link>
            <button type="button" className="button primary" onClick={onClose}>
              {c("close")}
            </button>
          </div>
        </>
      ) : (
        <>
          <p className="muted">{t("exportHint")}</p>
          <label className="field">
            <span>{t("datasetRepo")}</span>
            <input value={repo} onChange={(e) => setRepo(e.target.value)} data-testid="export-repo" />
          </label>
          <label className="field">
            <span>{t("datasetPath")}</span>
            <input value={path} onChange={(e) => setPath(e.target.value)} />
          </label>
          <label className="row">
            <input type="checkbox" checked={again} onChange={(e) => setAgain(e.target.checked)} /> {t("includeExported")}
          </label>
          {error ? <ErrorNote error={error} /> : null}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              {c("cancel")}
            </button>
            <button type="button" className="button primary" disabled={busy || !repo.includes("/") || !path.trim()} onClick={() => void run()} data-testid="export-submit">
              {t("export")}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
