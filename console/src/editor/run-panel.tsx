// Run the draft: a form for the start node's inputs (workflows) or a chat box (chat and agent
// apps), streamed over SSE; live per-node status goes to the canvas, timings and outputs here.
import { useContext, useEffect, useId, useImperativeHandle, useRef, useState, type FormEvent, type KeyboardEvent, type Ref } from "react";
import { ApiError, events } from "../api";
import { CopyButton, ErrorNote } from "../components/ui";
import { useT } from "../i18n";
import { STATUS_KEYS, text } from "./messages";
import { OverlayContext } from "./overlay";
import type { Mode, NodeRun, NodeRunStatus, RunEventData } from "./types";

export interface InputDecl {
  name: string;
  type?: string;
  required?: boolean;
  default?: unknown;
  description?: string;
  max_length?: number | null;
}

function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

function statusClass(status: string): string {
  if (status === "succeeded") return "ok";
  if (status === "failed") return "bad";
  if (status === "running" || status === "retrying" || status === "error_branch") return "warn";
  return "";
}

/** One node's part of a run: status, time, outputs, error, streamed text. */
export function RunDetails({ run, compact }: { run: NodeRun; compact?: boolean }) {
  const t = useT(text);
  return (
    <div className="dl-run-details">
      {compact ? null : (
        <div className="row">
          <span className={`tag ${statusClass(run.status)}`}>{t(STATUS_KEYS[run.status])}</span>
          {run.elapsed_ms !== undefined ? <span className="muted small">{formatMs(run.elapsed_ms)}</span> : null}
          {run.attempt ? <span className="muted small">{t("attempt", { n: run.attempt + 1 })}</span> : null}
        </div>
      )}
      {run.error ? <div className="error-note">{run.error}</div> : null}
      {run.outputs ? (
        <pre className="dl-json" tabIndex={0} aria-label={t("outputs")}>
          {JSON.stringify(run.outputs, null, 2)}
        </pre>
      ) : run.text ? (
        <pre className="dl-json dl-streamed" tabIndex={0} aria-live="polite">
          {run.text}
        </pre>
      ) : null}
    </div>
  );
}

interface TraceItem extends NodeRun {
  id: string;
}

interface RunState {
  status: "idle" | "running" | "succeeded" | "failed" | "stopped";
  runId?: string;
  error?: unknown;
  outputs?: Record<string, unknown>;
  elapsed_ms?: number;
  usage?: Record<string, number>;
  trace: TraceItem[];
}

interface ChatMessage {
  role: "user" | "assistant";
  text: string;
  error?: string;
}

function coerce(decl: InputDecl, raw: string | boolean | undefined, t: (k: "notJson" | "notNumber", v?: Record<string, string>) => string): unknown {
  if (raw === undefined || raw === "") return undefined;
  switch (decl.type ?? "string") {
    case "boolean":
      return raw === true;
    case "number":
    case "integer": {
      const n = Number(raw);
      if (!Number.isFinite(n) || (decl.type === "integer" && !Number.isInteger(n))) throw new Error(t("notNumber", { name: decl.name }));
      return n;
    }
    case "object":
    case "array":
    case "any":
      try {
        return JSON.parse(String(raw));
      } catch {
        if (decl.type === "any") return raw;
        throw new Error(t("notJson", { name: decl.name }));
      }
    default:
      return String(raw);
  }
}

export interface RunHandle {
  /** The toolbar's Run: run when the inputs are valid, else point at what is missing. */
  start: () => void;
}

export function RunPanel({
  slug,
  mode,
  inputs,
  flush,
  focusNode,
  onRunning,
  handle,
}: {
  handle?: Ref<RunHandle>;
  slug: string;
  mode: Mode;
  inputs: InputDecl[];
  /** Save the draft first (the server runs the saved draft); false when it could not. */
  flush: () => Promise<boolean>;
  focusNode: (id: string) => void;
  onRunning: (running: boolean) => void;
}) {
  const t = useT(text);
  const overlay = useContext(OverlayContext);
  const base = useId();
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [state, setState] = useState<RunState>({ status: "idle", trace: [] });
  const [query, setQuery] = useState("");
  const [chat, setChat] = useState<ChatMessage[]>([]);
  const [conversationId, setConversationId] = useState<string | null>(null);
  const [answer, setAnswer] = useState("");
  const abort = useRef<AbortController | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const queryRef = useRef<HTMLTextAreaElement>(null);
  const isChat = mode !== "workflow";
  const running = state.status === "running";

  useEffect(() => {
    onRunning(running);
  }, [running, onRunning]);
  useEffect(() => () => abort.current?.abort(), []);
  useEffect(() => {
    logRef.current?.scrollTo({ top: logRef.current.scrollHeight });
  }, [chat, answer]);

  const run = async (chatQuery?: string) => {
    let body: Record<string, unknown>;
    try {
      const given: Record<string, unknown> = {};
      for (const decl of inputs) {
        const value = coerce(decl, values[decl.name], t);
        if (value !== undefined) given[decl.name] = value;
      }
      body = { inputs: given, stream: true, draft: true };
      if (isChat) {
        body.query = chatQuery;
        if (conversationId) body.conversation_id = conversationId;
      }
    } catch (error) {
      setState({ status: "failed", error, trace: [] });
      return;
    }
    setState({ status: "running", trace: [] });
    if (!(await flush())) {
      setState({ status: "failed", error: new Error(t("runNeedsSave")), trace: [] });
      return;
    }
    overlay.clearRuns();
    if (isChat && chatQuery) setChat((c) => [...c, { role: "user", text: chatQuery }]);
    setAnswer("");
    const controller = new AbortController();
    abort.current = controller;
    const trace = new Map<string, TraceItem>();
    const answers = new Map<string, string>();
    const update = (id: string, change: (p: NodeRun | null) => NodeRun) => {
      const next = { ...change(trace.get(id) ?? null), id };
      trace.set(id, next);
      overlay.setRun(id, () => next);
      setState((s) => ({ ...s, trace: [...trace.values()] }));
    };
    let finalText = "";
    let failed: string | null = null;
    try {
      const path = isChat ? `/v1/apps/${encodeURIComponent(slug)}/chat` : `/v1/apps/${encodeURIComponent(slug)}/run`;
      for await (const ev of events<RunEventData>(path, { body, signal: controller.signal })) {
        const id = ev.node_id ?? "";
        switch (ev.event) {
          case "run_started":
            setState((s) => ({ ...s, runId: ev.run_id }));
            if (ev.conversation_id) setConversationId(ev.conversation_id);
            break;
          case "node_started":
            update(id, () => ({ status: "running", type: ev.type, started: performance.now() }));
            break;
          case "node_retry":
            update(id, (p) => ({ ...(p ?? {}), status: "retrying", attempt: ev.attempt, error: ev.error ?? undefined }));
            break;
          case "node_finished":
            update(id, (p) => ({
              ...(p ?? {}),
              status: (ev.status as NodeRunStatus) ?? "succeeded",
              elapsed_ms: ev.elapsed_ms,
              outputs: ev.outputs,
              error: ev.error ?? undefined,
            }));
            break;
          case "node_skipped":
            update(id, (p) => ({ ...(p ?? {}), status: "skipped" }));
            break;
          case "text_chunk":
            update(id, (p) => ({ ...(p ?? { status: "running" }), text: (p?.text ?? "") + (ev.text ?? "") }));
            break;
          case "answer_chunk":
            answers.set(id, (answers.get(id) ?? "") + (ev.text ?? ""));
            setAnswer([...answers.values()].join(""));
            break;
          case "answer":
            answers.set(id, ev.text ?? "");
            setAnswer([...answers.values()].join(""));
            break;
          case "run_finished":
            finalText = [...answers.values()].join("");
            if (!finalText && isChat && ev.outputs) finalText = Object.values(ev.outputs).map(String).join("\n");
            setState((s) => ({ ...s, status: "succeeded", outputs: ev.outputs, elapsed_ms: ev.elapsed_ms, usage: ev.usage }));
            break;
          case "run_failed":
            failed = ev.error ?? t("runFailed");
            finalText = [...answers.values()].join("");
            setState((s) => ({ ...s, status: "failed", error: new Error(failed ?? ""), elapsed_ms: ev.elapsed_ms }));
            break;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) {
        setState((s) => ({ ...s, status: "stopped" }));
        failed = t("stopped");
      } else {
        failed = error instanceof Error ? error.message : String(error);
        setState((s) => ({ ...s, status: "failed", error }));
      }
      for (const [id, item] of trace) if (item.status === "running" || item.status === "retrying") update(id, (p) => ({ ...(p ?? item), status: "failed", error: failed ?? undefined }));
    } finally {
      abort.current = null;
      setState((s) => (s.status === "running" ? { ...s, status: "succeeded" } : s));
    }
    if (isChat) {
      setChat((c) => [...c, { role: "assistant", text: finalText, error: failed ?? undefined }]);
      setAnswer("");
    }
  };

  const submitInputs = (event: FormEvent) => {
    event.preventDefault();
    if (!running) void run();
  };
  const sendChat = (event?: FormEvent) => {
    event?.preventDefault();
    const q = query.trim();
    if (!q || running) return;
    setQuery("");
    void run(q);
  };
  const chatKey = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) sendChat(event);
  };

  useImperativeHandle(handle, () => ({
    start: () => {
      if (running) return;
      if (isChat) {
        if (query.trim()) sendChat();
        else queryRef.current?.focus();
        return;
      }
      if (formRef.current && !formRef.current.reportValidity()) return;
      void run();
    },
  }));

  const inputFields = inputs.map((decl) => {
    const id = `${base}-${decl.name}`;
    const raw = values[decl.name];
    const set = (v: string | boolean) => setValues((vs) => ({ ...vs, [decl.name]: v }));
    const required = decl.required !== false && (decl.default === undefined || decl.default === null);
    const hint = [decl.type ?? "string", decl.description].filter(Boolean).join(" · ");
    return (
      <div key={decl.name} className="field dl-field">
        {decl.type === "boolean" ? (
          <label className="dl-check">
            <input type="checkbox" checked={raw === true || (raw === undefined && decl.default === true)} onChange={(e) => set(e.target.checked)} /> {decl.name}
          </label>
        ) : (
          <>
            <label htmlFor={id}>
              <span className="dl-field-label">
                {decl.name}
                {required ? <abbr title={t("required")} className="dl-required">*</abbr> : null}
              </span>{" "}
              <span className="hint">{hint}</span>
            </label>
            {decl.type === "number" || decl.type === "integer" ? (
              <input id={id} type="number" step={decl.type === "integer" ? 1 : "any"} value={typeof raw === "string" ? raw : ""} placeholder={decl.default != null ? String(decl.default) : undefined} required={required} onChange={(e) => set(e.target.value)} />
            ) : decl.type === "object" || decl.type === "array" ? (
              <textarea id={id} className="mono" rows={3} value={typeof raw === "string" ? raw : ""} placeholder={decl.type === "array" ? "[ ]" : "{ }"} required={required} onChange={(e) => set(e.target.value)} />
            ) : (
              <textarea
                id={id}
                rows={2}
                value={typeof raw === "string" ? raw : ""}
                maxLength={decl.max_length ?? undefined}
                placeholder={decl.default != null ? String(decl.default) : undefined}
                required={required}
                onChange={(e) => set(e.target.value)}
              />
            )}
          </>
        )}
      </div>
    );
  });

  return (
    <div className="dl-run-panel">
      {isChat ? (
        <div className="chat dl-chat">
          <div className="row">
            <span className="muted small">{t("chatDraftHint")}</span>
            <span className="spacer" />
            <button
              type="button"
              className="button small"
              disabled={running || (!chat.length && !conversationId)}
              onClick={() => {
                setChat([]);
                setConversationId(null);
                setState({ status: "idle", trace: [] });
                overlay.clearRuns();
              }}
            >
              {t("newConversation")}
            </button>
          </div>
          {inputs.length ? (
            <details className="dl-section">
              <summary>{t("inputs")}</summary>
              <div className="dl-fields">{inputFields}</div>
            </details>
          ) : null}
          <div className="chat-log dl-chat-log" ref={logRef} aria-live="polite">
            {chat.length === 0 && !running ? <p className="muted small">{t("chatEmpty")}</p> : null}
            {chat.map((m, i) => (
              <div key={i} className={`bubble ${m.role}${m.error ? " dl-bubble-error" : ""}`}>
                {m.text || (m.error ? "" : "…")}
                {m.error ? <div className="dl-bubble-note">{m.error}</div> : null}
              </div>
            ))}
            {running ? <div className="bubble assistant">{answer || <span className="muted">{t("thinking")}</span>}</div> : null}
          </div>
          <form className="chat-input" onSubmit={sendChat}>
            <label htmlFor={`${base}-query`} className="visually-hidden">
              {t("message")}
            </label>
            <textarea id={`${base}-query`} ref={queryRef} value={query} placeholder={t("messagePlaceholder")} onChange={(e) => setQuery(e.target.value)} onKeyDown={chatKey} />
            {running ? (
              <button type="button" className="button" onClick={() => abort.current?.abort()}>
                {t("stop")}
              </button>
            ) : (
              <button type="submit" className="button primary" data-testid="run-submit" disabled={!query.trim()}>
                {t("send")}
              </button>
            )}
          </form>
        </div>
      ) : (
        <form className="stack" onSubmit={submitInputs} ref={formRef}>
          {inputs.length ? inputFields : <p className="muted small">{t("noInputs")}</p>}
          <div className="row">
            {running ? (
              <button type="button" className="button" onClick={() => abort.current?.abort()}>
                {t("stop")}
              </button>
            ) : (
              <button type="submit" className="button primary" data-testid="run-submit">
                ▶ {t("runDraft")}
              </button>
            )}
            <span className="muted small">{t("runDraftHint")}</span>
          </div>
        </form>
      )}

      <div className="dl-run-result" aria-live="polite">
        {state.status === "running" ? <p className="muted small">{t("running")}</p> : null}
        {state.error ? (
          <ErrorNote error={state.error instanceof ApiError || state.error instanceof Error ? state.error : new Error(String(state.error))} />
        ) : null}
        {state.status === "stopped" ? <p className="muted small">{t("stopped")}</p> : null}
        {state.status === "succeeded" || state.status === "failed" ? (
          <div className="row small" data-testid="run-status" data-state={state.status}>
            <span className={`tag ${statusClass(state.status)}`}>{t(state.status === "succeeded" ? "status_succeeded" : "status_failed")}</span>
            {state.elapsed_ms !== undefined ? <span className="muted">{t("took", { time: formatMs(state.elapsed_ms) })}</span> : null}
            {state.usage && Object.keys(state.usage).length ? (
              <span className="muted">{Object.entries(state.usage).map(([k, v]) => `${k}: ${v}`).join(" · ")}</span>
            ) : null}
          </div>
        ) : null}
        {!isChat && state.outputs ? (
          <div className="stack">
            <div className="row">
              <h3>{t("outputs")}</h3>
              <span className="spacer" />
              <CopyButton text={JSON.stringify(state.outputs, null, 2)} />
            </div>
            <pre className="dl-json" tabIndex={0}>
              {JSON.stringify(state.outputs, null, 2)}
            </pre>
          </div>
        ) : null}
        {state.trace.length ? (
          <div className="stack">
            <h3>{t("trace")}</h3>
            <ol className="dl-trace">
              {state.trace.map((item) => (
                <li key={item.id}>
                  <details>
                    <summary>
                      <span className={`tag ${statusClass(item.status)}`}>{t(STATUS_KEYS[item.status])}</span>{" "}
                      <button
                        type="button"
                        className="link"
                        onClick={(e) => {
                          e.preventDefault();
                          focusNode(item.id);
                        }}
                      >
                        {item.id}
                      </button>{" "}
                      <span className="muted small">{formatMs(item.elapsed_ms)}</span>
                    </summary>
                    <RunDetails run={item} compact />
                  </details>
                </li>
              ))}
            </ol>
          </div>
        ) : null}
      </div>
    </div>
  );
}
