// Chat with any gateway model, streamed, with parameters; or two models side by side.
import { useRef, useState } from "react";
import { api, events } from "../api";
import { ChatLog, Composer, type Turn } from "../components/chat";
import { Loaded, useAsync } from "../components/ui";
import { messages, useT } from "../i18n";
import { useLocation } from "../router";

const text = messages(
  {
    title: "Playground",
    model: "Model",
    compare: "Compare two models",
    system: "System prompt",
    systemPlaceholder: "You are a helpful assistant.",
    temperature: "Temperature",
    maxTokens: "Max tokens",
    topP: "Top p",
    clear: "Clear",
    stats: "{tokens} tokens · {seconds} s · {speed} tokens/s",
    noModels: "No chat models are served. Add a provider (danlu providers add) or enable the embedded model.",
  },
  {
    title: "调试台",
    model: "模型",
    compare: "双模型对比",
    system: "系统提示词",
    systemPlaceholder: "你是一个乐于助人的助手。",
    temperature: "温度",
    maxTokens: "最大 token 数",
    topP: "Top p",
    clear: "清空",
    stats: "{tokens} tokens · {seconds} 秒 · {speed} tokens/秒",
    noModels: "当前没有可用的对话模型。请添加供应商（danlu providers add）或启用内置模型。",
  },
);

interface Model {
  id: string;
  owned_by: string;
  capabilities?: string[];
}

interface Params {
  system: string;
  temperature: number;
  max_tokens: number;
  top_p: number;
}

function isChatModel(model: Model): boolean {
  return !/embed|e5|bge|rerank/i.test(model.id);
}

export default function Playground() {
  const t = useT(text);
  const models = useAsync(() => api<{ data: Model[] }>("/v1/models").then((r) => r.data.filter(isChatModel)), []);
  const [compare, setCompare] = useState(false);
  const [params, setParams] = useState<Params>({ system: "", temperature: 0.7, max_tokens: 256, top_p: 1 });
  const { query } = useLocation();
  const [models2, setModels2] = useState<[string, string]>([query.get("model") ?? "", ""]);
  const panes = useRef<Array<((message: string) => void) | null>>([null, null]);

  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("title")}</h1>
        <label className="row">
          <input type="checkbox" checked={compare} onChange={(e) => setCompare(e.target.checked)} data-testid="compare" />
          {t("compare")}
        </label>
      </div>
      <Loaded state={models} isEmpty={(list) => list.length === 0} empty={t("noModels")}>
        {(list) => (
          <div className="playground">
            <aside className="card stack params">
              <label className="field">
                <span>{t("system")}</span>
                <textarea rows={4} value={params.system} placeholder={t("systemPlaceholder")} onChange={(e) => setParams({ ...params, system: e.target.value })} />
              </label>
              <label className="field">
                <span>
                  {t("temperature")} <span className="hint">{params.temperature}</span>
                </span>
                <input type="range" min={0} max={2} step={0.1} value={params.temperature} onChange={(e) => setParams({ ...params, temperature: Number(e.target.value) })} />
              </label>
              <label className="field">
                <span>
                  {t("topP")} <span className="hint">{params.top_p}</span>
                </span>
                <input type="range" min={0} max={1} step={0.05} value={params.top_p} onChange={(e) => setParams({ ...params, top_p: Number(e.target.value) })} />
              </label>
              <label className="field">
                <span>{t("maxTokens")}</span>
                <input type="number" min={1} max={32768} value={params.max_tokens} onChange={(e) => setParams({ ...params, max_tokens: Number(e.target.value) })} />
              </label>
            </aside>
            <div className={compare ? "grid-2" : ""}>
              {(compare ? [0, 1] : [0]).map((index) => (
                <ChatPane
                  key={index}
                  models={list}
                  model={models2[index] || list[Math.min(index, list.length - 1)].id}
                  onModel={(id) => setModels2((old) => (index === 0 ? [id, old[1]] : [old[0], id]))}
                  params={params}
                  register={(send) => (panes.current[index] = send)}
                  shared={compare ? (message) => panes.current.forEach((send, i) => i !== index && send?.(message)) : undefined}
                  testId={`pane-${index}`}
                />
              ))}
            </div>
          </div>
        )}
      </Loaded>
    </div>
  );
}

function ChatPane({
  models,
  model,
  onModel,
  params,
  register,
  shared,
  testId,
}: {
  models: Model[];
  model: string;
  onModel: (id: string) => void;
  params: Params;
  register: (send: (message: string) => void) => void;
  shared?: (message: string) => void;
  testId: string;
}) {
  const t = useT(text);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [busy, setBusy] = useState(false);
  const [stats, setStats] = useState("");
  const abort = useRef<AbortController | null>(null);

  const send = async (message: string) => {
    const history = [...turns, { role: "user" as const, content: message }];
    setTurns([...history, { role: "assistant", content: "" }]);
    setBusy(true);
    setStats("");
    const controller = new AbortController();
    abort.current = controller;
    const started = performance.now();
    let tokens = 0;
    const append = (piece: string, error = false) =>
      setTurns((old) => {
        const next = old.slice();
        const last = next[next.length - 1];
        next[next.length - 1] = { ...last, content: last.content + piece, error };
        return next;
      });
    try {
      const wire = [
        ...(params.system ? [{ role: "system", content: params.system }] : []),
        ...history.filter((turn) => !turn.error).map(({ role, content }) => ({ role, content })),
      ];
      for await (const chunk of events("/v1/chat/completions", {
        body: {
          model,
          messages: wire,
          stream: true,
          stream_options: { include_usage: true },
          temperature: params.temperature,
          top_p: params.top_p,
          max_tokens: params.max_tokens,
        },
        signal: controller.signal,
      })) {
        const piece = chunk.choices?.[0]?.delta?.content;
        if (piece) append(piece);
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
      const seconds = (performance.now() - started) / 1000;
      setStats(t("stats", { tokens, seconds: seconds.toFixed(1), speed: (tokens / Math.max(seconds, 0.001)).toFixed(1) }));
    } catch (error) {
      if (!controller.signal.aborted) append(error instanceof Error ? error.message : String(error), true);
    } finally {
      setBusy(false);
    }
  };
  register((message) => void send(message));

  return (
    <section className="card chat pane" data-testid={testId}>
      <div className="row">
        <label className="row">
          <span className="muted">{t("model")}</span>
          <select value={model} onChange={(e) => onModel(e.target.value)} data-testid={`${testId}-model`}>
            {models.map((m) => (
              <option key={m.id} value={m.id}>
                {m.id}
              </option>
            ))}
          </select>
        </label>
        <span className="spacer" />
        <button type="button" className="button small" onClick={() => setTurns([])} disabled={busy}>
          {t("clear")}
        </button>
      </div>
      <ChatLog turns={turns} busy={busy} />
      {stats ? <div className="muted small">{stats}</div> : null}
      <Composer
        busy={busy}
        onStop={() => abort.current?.abort()}
        onSend={(message) => {
          void send(message);
          shared?.(message);
        }}
      />
    </section>
  );
}
