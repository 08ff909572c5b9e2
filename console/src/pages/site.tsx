// A published app's public page (/s/:slug): chat for chat and agent apps, a form for
// workflows. The iframe embed and the chat bubble load it with ?embed=1.
import { useRef, useState, type FormEvent } from "react";
import { api, events } from "../api";
import { ChatLog, Composer, type Turn } from "../components/chat";
import { CopyButton, ErrorNote, Loaded, useAsync } from "../components/ui";
import { messages, useT } from "../i18n";
import { useLocation } from "../router";
import { LanguageSwitch } from "../shell";

const text = messages(
  {
    poweredBy: "Made with danlu",
    share: "Copy link",
    newChat: "New conversation",
    run: "Run",
    running: "Running…",
    outputs: "Result",
    failed: "The app failed: {error}",
    signInNeeded: "This app is for signed-in users.",
    signIn: "Sign in",
    required: "required",
  },
  {
    poweredBy: "由丹炉构建",
    share: "复制链接",
    newChat: "新对话",
    run: "运行",
    running: "运行中…",
    outputs: "结果",
    failed: "应用运行失败：{error}",
    signInNeeded: "此应用仅对已登录用户开放。",
    signIn: "登录",
    required: "必填",
  },
);

interface SiteInfo {
  slug: string;
  name: string;
  mode: "chat" | "agent" | "workflow";
  description: string;
  inputs: { name: string; type: string; required?: boolean; label?: string; default?: unknown }[];
}

function visitorId(): string {
  let id = localStorage.getItem("danlu.visitor");
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    id = "v" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("danlu.visitor", id);
  }
  return id;
}

export default function SitePage({ params }: { params: Record<string, string> }) {
  const t = useT(text);
  const { query } = useLocation();
  const embed = query.get("embed") === "1";
  const slug = params.slug;
  const site = useAsync(() => api<SiteInfo>(`/v1/sites/${encodeURIComponent(slug)}`), [slug]);
  return (
    <div className={`site${embed ? " embed" : ""}`}>
      <Loaded state={site}>
        {(info) => (
          <>
            {!embed ? (
              <header className="site-head">
                <div>
                  <h1>{info.name}</h1>
                  {info.description ? <p className="muted">{info.description}</p> : null}
                </div>
                <span className="spacer" />
                <CopyButton text={`${location.origin}/s/${info.slug}`} label={t("share")} />
                <LanguageSwitch />
              </header>
            ) : null}
            {info.mode === "workflow" ? <WorkflowForm info={info} /> : <SiteChat info={info} embed={embed} />}
            {!embed ? <footer className="muted small site-foot">{t("poweredBy")}</footer> : null}
          </>
        )}
      </Loaded>
    </div>
  );
}

function SiteChat({ info, embed }: { info: SiteInfo; embed: boolean }) {
  const t = useT(text);
  const storageKey = `danlu.conversation.${info.slug}`;
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const conversation = useRef<string | null>(sessionStorage.getItem(storageKey));
  const abort = useRef<AbortController | null>(null);

  const send = async (message: string) => {
    setBusy(true);
    setTurns((old) => [...old, { role: "user", content: message }, { role: "assistant", content: "" }]);
    const controller = new AbortController();
    abort.current = controller;
    const append = (piece: string, error = false) =>
      setTurns((old) => {
        const next = old.slice();
        const last = next[next.length - 1];
        next[next.length - 1] = { ...last, content: last.content + piece, error: error || last.error };
        return next;
      });
    try {
      for await (const event of events(`/v1/sites/${encodeURIComponent(info.slug)}/messages`, {
        body: { visitor: visitorId(), query: message, conversation_id: conversation.current, stream: true },
        signal: controller.signal,
      })) {
        if (event.event === "run_started" && event.conversation_id) {
          conversation.current = event.conversation_id;
          sessionStorage.setItem(storageKey, event.conversation_id);
        } else if (event.event === "answer_chunk") append(event.text);
        else if (event.event === "run_failed") append(t("failed", { error: event.error }), true);
      }
    } catch (error) {
      if (!controller.signal.aborted) append(error instanceof Error ? error.message : String(error), true);
    } finally {
      setBusy(false);
    }
  };

  const restart = () => {
    conversation.current = null;
    sessionStorage.removeItem(storageKey);
    setTurns([]);
  };

  return (
    <div className={`chat site-chat${embed ? " embed" : ""}`}>
      {embed ? (
        <div className="row site-embed-head">
          <strong>{info.name}</strong>
          <span className="spacer" />
        </div>
      ) : null}
      <ChatLog turns={turns} busy={busy} />
      <div className="row">
        <button type="button" className="button small" onClick={restart} disabled={busy || turns.length === 0}>
          {t("newChat")}
        </button>
      </div>
      <Composer onSend={(m) => void send(m)} onStop={() => abort.current?.abort()} busy={busy} />
    </div>
  );
}

function WorkflowForm({ info }: { info: SiteInfo }) {
  const t = useT(text);
  const [values, setValues] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<Record<string, unknown> | null>(null);
  const [error, setError] = useState<unknown>(null);

  const coerce = (type: string, raw: string): unknown => {
    if (raw === "") return undefined;
    if (type === "number" || type === "integer") return Number(raw);
    if (type === "boolean") return raw === "true";
    if (type === "object" || type === "array") return JSON.parse(raw);
    return raw;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const inputs: Record<string, unknown> = {};
      for (const field of info.inputs) {
        const value = coerce(field.type, values[field.name] ?? "");
        if (value !== undefined) inputs[field.name] = value;
      }
      const answer = await api<{ status: string; outputs: Record<string, unknown>; error: string | null }>(
        `/v1/sites/${encodeURIComponent(info.slug)}/messages`,
        { body: { visitor: visitorId(), inputs, stream: false } },
      );
      if (answer.status !== "succeeded") setError(new Error(t("failed", { error: answer.error ?? "" })));
      else setResult(answer.outputs);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card stack site-form" onSubmit={submit}>
      {info.inputs.map((field) => (
        <label className="field" key={field.name}>
          <span>
            {field.label || field.name} {field.required ? <em className="hint">({t("required")})</em> : null}
          </span>
          {field.type === "string" ? (
            <textarea rows={3} required={field.required} value={values[field.name] ?? ""} onChange={(e) => setValues({ ...values, [field.name]: e.target.value })} />
          ) : (
            <input required={field.required} value={values[field.name] ?? ""} onChange={(e) => setValues({ ...values, [field.name]: e.target.value })} />
          )}
        </label>
      ))}
      <button type="submit" className="button primary" disabled={busy} data-testid="site-run">
        {busy ? t("running") : t("run")}
      </button>
      {error ? <ErrorNote error={error} /> : null}
      {result ? (
        <div className="stack" data-testid="site-result">
          <h2>{t("outputs")}</h2>
          {Object.entries(result).map(([name, value]) => (
            <div key={name}>
              <div className="muted small">{name}</div>
              <div className="bubble assistant">{typeof value === "string" ? value : JSON.stringify(value, null, 2)}</div>
            </div>
          ))}
        </div>
      ) : null}
    </form>
  );
}
