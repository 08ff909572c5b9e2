// API keys (create, shown once; revoke) and the workspace's usage and balance.
import { useState } from "react";
import { api, downloadFrom } from "../api";
import { CopyButton, Dialog, ErrorNote, LineChart, Loaded, formatTime, useAsync } from "../components/ui";
import { messages, useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { useSession } from "../session";

const text = messages(
  {
    title: "Keys & usage",
    keys: "API keys",
    newKey: "New key",
    keyName: "Key name",
    scopes: "Scopes",
    expires: "Expires (optional)",
    shownOnce: "Copy this key now: it is shown only once and stored only as a hash.",
    revoke: "Revoke",
    confirmRevoke: "Revoke {name}? Anything using it stops working at once.",
    prefix: "Key",
    lastUsed: "Last used",
    never: "never",
    session: "this browser",
    usage: "Usage, last 30 days",
    byDay: "By day",
    byModel: "By model",
    requests: "Requests",
    inputTokens: "Input tokens",
    outputTokens: "Output tokens",
    cost: "Cost (¥)",
    downloadCsv: "Download CSV",
    balance: "Balance",
    credit: "Credit",
    available: "Available",
    noKeys: "No keys yet. Create one to call the API from code.",
    noUsage: "No model calls in the last 30 days.",
    tokensPerDay: "Tokens per day",
    scope_inference: "Call models and apps",
    "scope_hub:read": "Read the hub",
    "scope_hub:write": "Write to the hub",
    scope_admin: "Administer danlu",
  },
  {
    title: "密钥与用量",
    keys: "API 密钥",
    newKey: "新建密钥",
    keyName: "密钥名称",
    scopes: "权限范围",
    expires: "过期时间（可选）",
    shownOnce: "请立即复制此密钥：它只显示这一次，服务器只保存其哈希值。",
    revoke: "吊销",
    confirmRevoke: "吊销 {name}？使用它的程序会立即失效。",
    prefix: "密钥",
    lastUsed: "最近使用",
    never: "从未",
    session: "当前浏览器",
    usage: "近 30 天用量",
    byDay: "按天",
    byModel: "按模型",
    requests: "请求数",
    inputTokens: "输入 tokens",
    outputTokens: "输出 tokens",
    cost: "费用（元）",
    downloadCsv: "下载 CSV",
    balance: "余额",
    credit: "抵扣金",
    available: "可用",
    noKeys: "还没有密钥。创建一个即可在代码中调用 API。",
    noUsage: "近 30 天没有模型调用。",
    tokensPerDay: "每日 tokens",
    scope_inference: "调用模型与应用",
    "scope_hub:read": "读取模型库",
    "scope_hub:write": "写入模型库",
    scope_admin: "管理丹炉",
  },
);

interface Key {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  status: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

interface UsageRow {
  [group: string]: unknown;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cost: { yuan: string };
}

const SESSION_NAME = "console session";

export default function Keys() {
  const t = useT(text);
  const c = useT(common);
  const { lang } = useLang();
  const { me } = useSession();
  const keys = useAsync(() => api<{ data: Key[] }>("/v1/keys").then((r) => r.data.filter((k) => k.status === "active")), []);
  const [creating, setCreating] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [by, setBy] = useState<"day" | "model">("day");
  const usage = useAsync(() => api<{ data: UsageRow[] }>(`/v1/usage?group_by=${by}`).then((r) => r.data), [by]);
  const balance = useAsync(() => api<{ balance: { yuan: string }; credit: { yuan: string }; available: { yuan: string } }>("/v1/billing/balance"), []);

  const revoke = async (key: Key) => {
    if (!confirm(t("confirmRevoke", { name: key.name }))) return;
    try {
      await api(`/v1/keys/${key.id}`, { method: "DELETE" });
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };

  const csv = () => downloadFrom(`/v1/usage?group_by=${by}&format=csv`, `danlu-usage-by-${by}.csv`).catch(setError);

  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("title")}</h1>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <section>
        <div className="page-head">
          <h2>{t("keys")}</h2>
          <span className="spacer" />
          <button type="button" className="button primary" onClick={() => setCreating(true)} data-testid="new-key">
            {t("newKey")}
          </button>
        </div>
        <Loaded state={keys} isEmpty={(list) => list.length === 0} empty={t("noKeys")}>
          {(list) => (
            <table className="table" data-testid="key-list">
              <thead>
                <tr>
                  <th>{c("name")}</th>
                  <th>{t("prefix")}</th>
                  <th>{t("scopes")}</th>
                  <th>{t("lastUsed")}</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {list.map((key) => (
                  <tr key={key.id}>
                    <td>
                      {key.name === SESSION_NAME ? t("session") : key.name}
                      <div className="muted small">{formatTime(key.created_at, lang)}</div>
                    </td>
                    <td>
                      <code>{key.prefix}…</code>
                    </td>
                    <td>
                      <div className="row">
                        {key.scopes.map((scope) => (
                          <span className="tag" key={scope}>
                            {scope}
                          </span>
                        ))}
                      </div>
                    </td>
                    <td>{key.last_used_at ? formatTime(key.last_used_at, lang) : t("never")}</td>
                    <td>
                      <button type="button" className="button small danger" onClick={() => void revoke(key)}>
                        {t("revoke")}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loaded>
      </section>
      <section>
        <div className="page-head">
          <h2>{t("usage")}</h2>
          <div className="tabs" role="tablist">
            <button type="button" role="tab" aria-selected={by === "day"} onClick={() => setBy("day")}>
              {t("byDay")}
            </button>
            <button type="button" role="tab" aria-selected={by === "model"} onClick={() => setBy("model")}>
              {t("byModel")}
            </button>
          </div>
          <span className="spacer" />
          <button type="button" className="button small" onClick={() => void csv()}>
            {t("downloadCsv")}
          </button>
        </div>
        <Loaded state={balance}>
          {(funds) => (
            <div className="row stats">
              <div className="card stat">
                <b>¥{funds.available.yuan}</b>
                <span>{t("available")}</span>
              </div>
              <div className="card stat">
                <b>¥{funds.balance.yuan}</b>
                <span>{t("balance")}</span>
              </div>
              <div className="card stat">
                <b>¥{funds.credit.yuan}</b>
                <span>{t("credit")}</span>
              </div>
            </div>
          )}
        </Loaded>
        <Loaded state={usage} isEmpty={(rows) => rows.length === 0} empty={t("noUsage")}>
          {(rows) => (
            <>
              {by === "day" ? (
                <div className="card">
                  <LineChart
                    yLabel={t("tokensPerDay")}
                    series={[
                      { name: t("inputTokens"), points: rows.map((r) => [Date.parse(String(r.day)), r.input_tokens]) },
                      { name: t("outputTokens"), points: rows.map((r) => [Date.parse(String(r.day)), r.output_tokens]) },
                    ]}
                    formatX={(x) => new Date(x).toLocaleDateString(lang === "zh" ? "zh-CN" : "en", { month: "short", day: "numeric" })}
                  />
                </div>
              ) : null}
              <table className="table" data-testid="usage-table">
                <thead>
                  <tr>
                    <th>{by === "day" ? t("byDay") : t("byModel")}</th>
                    <th>{t("requests")}</th>
                    <th>{t("inputTokens")}</th>
                    <th>{t("outputTokens")}</th>
                    <th>{t("cost")}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((row) => (
                    <tr key={String(row[by])}>
                      <td>{String(row[by])}</td>
                      <td>{row.requests}</td>
                      <td>{row.input_tokens}</td>
                      <td>{row.output_tokens}</td>
                      <td>{row.cost.yuan}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </Loaded>
      </section>
      {creating ? <CreateKey admin={!!me?.is_admin} onClose={() => setCreating(false)} onCreated={keys.reload} /> : null}
    </div>
  );
}

function CreateKey({ admin, onClose, onCreated }: { admin: boolean; onClose: () => void; onCreated: () => void }) {
  const t = useT(text);
  const c = useT(common);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<string[]>(["inference", "hub:read", "hub:write"]);
  const [expires, setExpires] = useState("");
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<unknown>(null);
  const all = ["inference", "hub:read", "hub:write", ...(admin ? ["admin"] : [])];

  const create = async () => {
    setError(null);
    try {
      const answer = await api<{ key: string }>("/v1/keys", {
        body: { name, scopes, ...(expires ? { expires_at: new Date(expires).toISOString() } : {}) },
      });
      setSecret(answer.key);
      onCreated();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <Dialog title={t("newKey")} onClose={onClose}>
      {secret ? (
        <>
          <p>{t("shownOnce")}</p>
          <pre data-testid="new-key-secret">{secret}</pre>
          <div className="actions">
            <CopyButton text={secret} />
            <button type="button" className="button primary" onClick={onClose}>
              {c("close")}
            </button>
          </div>
        </>
      ) : (
        <>
          <label className="field">
            <span>{t("keyName")}</span>
            <input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} required data-testid="key-name" />
          </label>
          <fieldset className="stack plain">
            <legend>{t("scopes")}</legend>
            {all.map((scope) => (
              <label key={scope} className="row">
                <input type="checkbox" checked={scopes.includes(scope)} onChange={(e) => setScopes(e.target.checked ? [...scopes, scope] : scopes.filter((s) => s !== scope))} />
                <code>{scope}</code> <span className="muted">{t(`scope_${scope}` as "scope_inference")}</span>
              </label>
            ))}
          </fieldset>
          <label className="field">
            <span>{t("expires")}</span>
            <input type="datetime-local" value={expires} onChange={(e) => setExpires(e.target.value)} />
          </label>
          {error ? <ErrorNote error={error} /> : null}
          <div className="actions">
            <button type="button" className="button" onClick={onClose}>
              {c("cancel")}
            </button>
            <button type="button" className="button primary" onClick={() => void create()} disabled={!name.trim() || scopes.length === 0} data-testid="create-key">
              {c("create")}
            </button>
          </div>
        </>
      )}
    </Dialog>
  );
}
