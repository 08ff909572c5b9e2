// Apps: the list, create from a template, import and export DSL, and the way to each app's page.
import { useState } from "react";
import { api, saveBlob } from "../api";
import { CopyButton, Dialog, ErrorNote, Loaded, formatTime, useAsync } from "../components/ui";
import { messages, useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { Link, navigate } from "../router";
import { AnalyticsLink } from "../components/insight-link";

export const appsText = messages(
  {
    title: "Apps",
    create: "Create app",
    import: "Import DSL",
    importHint: "Paste an app's DSL (YAML or JSON), or choose a file exported from danlu or written by hand.",
    chooseFile: "Choose file",
    template: "Start from",
    appName: "App name",
    none: "No apps yet. Create your first one from a template — it runs on the embedded model, offline.",
    mode_chat: "Chat",
    mode_agent: "Agent",
    mode_workflow: "Workflow",
    published: "Published v{n}",
    draft: "Draft",
    edit: "Edit",
    open: "Open page",
    export: "Export",
    access: "Page access",
    access_public: "Anyone with the link",
    access_signed_in: "Signed-in users",
    access_off: "Off (API only)",
    shareLink: "Share link",
  },
  {
    title: "应用",
    create: "创建应用",
    import: "导入 DSL",
    importHint: "粘贴应用的 DSL（YAML 或 JSON），或选择从丹炉导出或手写的文件。",
    chooseFile: "选择文件",
    template: "模板",
    appName: "应用名称",
    none: "还没有应用。从模板创建第一个吧——它运行在内置模型上，无需联网。",
    mode_chat: "对话",
    mode_agent: "智能体",
    mode_workflow: "工作流",
    published: "已发布 v{n}",
    draft: "草稿",
    edit: "编辑",
    open: "打开页面",
    export: "导出",
    access: "页面访问",
    access_public: "任何持有链接的人",
    access_signed_in: "已登录用户",
    access_off: "关闭（仅 API）",
    shareLink: "分享链接",
  },
);

export interface AppSummary {
  id: string;
  slug: string;
  name: string;
  mode: "chat" | "agent" | "workflow";
  description: string;
  published_version: number | null;
  site_access: "public" | "signed_in" | "off";
  updated_at: string;
}

interface Template {
  id: string;
  name: string;
  mode: string;
  description: string;
}

export default function Apps() {
  const t = useT(appsText);
  const c = useT(common);
  const { lang } = useLang();
  const apps = useAsync(() => api<{ data: AppSummary[] }>("/v1/apps").then((r) => r.data), []);
  const [dialog, setDialog] = useState<"create" | "import" | null>(null);
  const [error, setError] = useState<unknown>(null);

  const setAccess = async (app: AppSummary, access: string) => {
    try {
      await api(`/v1/apps/${app.slug}/site`, { method: "PUT", body: { access } });
      apps.reload();
    } catch (e) {
      setError(e);
    }
  };

  const remove = async (app: AppSummary) => {
    if (!confirm(c("confirmDelete", { name: app.name }))) return;
    try {
      await api(`/v1/apps/${app.slug}`, { method: "DELETE" });
      apps.reload();
    } catch (e) {
      setError(e);
    }
  };

  const exportDsl = async (app: AppSummary) => {
    try {
      const yaml = await api<string>(`/v1/apps/${app.slug}/export?format=yaml`);
      saveBlob(new Blob([yaml], { type: "application/yaml" }), `${app.slug}.yaml`);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("title")}</h1>
        <span className="spacer" />
        <button type="button" className="button" onClick={() => setDialog("import")}>
          {t("import")}
        </button>
        <button type="button" className="button primary" onClick={() => setDialog("create")} data-testid="create-app">
          {t("create")}
        </button>
      </div>
      {error ? <ErrorNote error={error} /> : null}
      <Loaded state={apps} isEmpty={(list) => list.length === 0} empty={t("none")}>
        {(list) => (
          <table className="table" data-testid="app-list">
            <thead>
              <tr>
                <th>{c("name")}</th>
                <th>{c("status")}</th>
                <th>{t("access")}</th>
                <th>{c("updated")}</th>
                <th>{c("actions")}</th>
              </tr>
            </thead>
            <tbody>
              {list.map((app) => (
                <tr key={app.id}>
                  <td>
                    <Link to={`/apps/${app.slug}/edit`}>
                      <strong>{app.name}</strong>
                    </Link>
                    <div className="muted small">
                      {t(`mode_${app.mode}`)} · <code>{app.slug}</code>
                    </div>
                  </td>
                  <td>
                    {app.published_version ? (
                      <span className="tag ok">{t("published", { n: app.published_version })}</span>
                    ) : (
                      <span className="tag">{t("draft")}</span>
                    )}
                  </td>
                  <td>
                    <select value={app.site_access} onChange={(e) => void setAccess(app, e.target.value)} aria-label={t("access")}>
                      <option value="public">{t("access_public")}</option>
                      <option value="signed_in">{t("access_signed_in")}</option>
                      <option value="off">{t("access_off")}</option>
                    </select>
                  </td>
                  <td>{formatTime(app.updated_at, lang)}</td>
                  <td>
                    <div className="row">
                      <Link className="button small" to={`/apps/${app.slug}/edit`}>
                        {t("edit")}
                      </Link>
                      {app.published_version && app.site_access !== "off" ? (
                        <>
                          <a className="button small" href={`/s/${app.slug}`} target="_blank" rel="noreferrer">
                            {t("open")}
                          </a>
                          <CopyButton text={`${location.origin}/s/${app.slug}`} label={t("shareLink")} />
                        </>
                      ) : null}
                      <AnalyticsLink slug={app.slug} />
                      <button type="button" className="button small" onClick={() => void exportDsl(app)}>
                        {t("export")}
                      </button>
                      <button type="button" className="button small danger" onClick={() => void remove(app)}>
                        {c("delete")}
                      </button>
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {dialog === "create" ? <CreateDialog onClose={() => setDialog(null)} /> : null}
      {dialog === "import" ? <ImportDialog onClose={() => setDialog(null)} /> : null}
    </div>
  );
}

export function CreateDialog({ onClose, initial }: { onClose: () => void; initial?: string }) {
  const t = useT(appsText);
  const c = useT(common);
  const templates = useAsync(() => api<{ data: Template[] }>("/v1/app-templates").then((r) => r.data), []);
  const [chosen, setChosen] = useState(initial ?? "blank-chat");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const create = async () => {
    setBusy(true);
    setError(null);
    try {
      const app = await api<AppSummary>("/v1/apps", { body: { template: chosen, ...(name.trim() ? { name: name.trim() } : {}) } });
      navigate(`/apps/${app.slug}/edit`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <Dialog title={t("create")} onClose={onClose} wide>
      <Loaded state={templates}>
        {(list) => (
          <fieldset className="template-grid">
            <legend>{t("template")}</legend>
            {list.map((template) => (
              <label key={template.id} className={`card template${chosen === template.id ? " chosen" : ""}`} data-testid={`template-${template.id}`}>
                <input type="radio" name="template" value={template.id} checked={chosen === template.id} onChange={() => setChosen(template.id)} />
                <strong>{template.name}</strong>
                <span className="tag">{t(`mode_${template.mode}` as "mode_chat")}</span>
                <span className="muted small">{template.description}</span>
              </label>
            ))}
          </fieldset>
        )}
      </Loaded>
      <label className="field">
        <span>{t("appName")}</span>
        <input value={name} onChange={(e) => setName(e.target.value)} maxLength={128} data-testid="app-name" />
      </label>
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {c("cancel")}
        </button>
        <button type="button" className="button primary" onClick={() => void create()} disabled={busy} data-testid="create-app-submit">
          {c("create")}
        </button>
      </div>
    </Dialog>
  );
}

function ImportDialog({ onClose }: { onClose: () => void }) {
  const t = useT(appsText);
  const c = useT(common);
  const [dsl, setDsl] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const app = await api<AppSummary>("/v1/apps/import", { raw: dsl, contentType: "application/yaml" });
      navigate(`/apps/${app.slug}/edit`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  return (
    <Dialog title={t("import")} onClose={onClose} wide>
      <p className="muted">{t("importHint")}</p>
      <input type="file" accept=".yaml,.yml,.json,application/json,application/yaml" aria-label={t("chooseFile")} onChange={(e) => void e.target.files?.[0]?.text().then(setDsl)} />
      <textarea rows={14} value={dsl} onChange={(e) => setDsl(e.target.value)} className="code" spellCheck={false} aria-label="DSL" />
      {error ? <ErrorNote error={error} /> : null}
      <div className="actions">
        <button type="button" className="button" onClick={onClose}>
          {c("cancel")}
        </button>
        <button type="button" className="button primary" onClick={() => void submit()} disabled={busy || !dsl.trim()}>
          {t("import")}
        </button>
      </div>
    </Dialog>
  );
}
