// The signed-in user's workspace at a glance: every app's end users counted once, the same
// dashboard as an app's, each app's totals (deleted apps too) and the workspace's time zone.
import { useMemo, useState } from "react";
import { api } from "../api";
import { CsvButton, Dashboard, formatCount, formatYuan, type AppTotals, type Win } from "../components/insight-dashboard";
import { ErrorNote, Loaded, useAsync } from "../components/ui";
import { useLang, useT } from "../i18n";
import { common } from "../i18n/common";
import { insightText } from "../i18n/insight";
import { Link, navigate, useLocation } from "../router";
import { useSession } from "../session";

interface Settings {
  workspace: string;
  timezone: string;
  default: string;
}

function AppsTable({ apps, base, win }: { apps: AppTotals[]; base: string; win: Win }) {
  const t = useT(insightText);
  const { lang } = useLang();
  return (
    <section aria-label={t("perApp")}>
      <div className="page-head">
        <h2>{t("perApp")}</h2>
        <span className="spacer" />
        <CsvButton path={`${base}/overview?from=${win.from}&to=${win.to}&format=apps.csv`} name={`apps-${win.from}-${win.to}.csv`} testId="apps-csv" />
      </div>
      {apps.length === 0 ? (
        <div className="empty">{t("noApps")}</div>
      ) : (
        <table className="table" data-testid="apps-table">
          <thead>
            <tr>
              <th>{t("appName")}</th>
              <th>{t("activeUsers")}</th>
              <th>{t("runs")}</th>
              <th>{t("failed")}</th>
              <th>{t("messages")}</th>
              <th>{t("cost")}</th>
            </tr>
          </thead>
          <tbody>
            {apps.map((app) => (
              <tr key={app.app_id}>
                <td>
                  {app.deleted || !app.slug ? (
                    <>
                      <span className="deleted-app">{app.name ?? app.app_id}</span> <span className="tag bad">{t("deleted")}</span>
                    </>
                  ) : (
                    <Link to={`/apps/${app.slug}/insight`}>{app.name ?? app.slug}</Link>
                  )}
                  <div className="muted small">
                    <code>{app.slug ?? app.app_id}</code>
                  </div>
                </td>
                <td>{formatCount(app.active_users, lang)}</td>
                <td>{formatCount(app.runs, lang)}</td>
                <td>{formatCount(app.failed_runs, lang)}</td>
                <td>{formatCount(app.messages, lang)}</td>
                <td>{formatYuan(app.cost, lang)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function TimezoneSetting({ slug, canManage, onChanged }: { slug: string; canManage: boolean; onChanged: () => void }) {
  const t = useT(insightText);
  const c = useT(common);
  const settings = useAsync(() => api<Settings>(`/v1/workspaces/${slug}/insight/settings`), [slug]);
  const [value, setValue] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const zones = useMemo(() => {
    try {
      return Intl.supportedValuesOf("timeZone");
    } catch {
      return [];
    }
  }, []);
  const save = async (zone: string) => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      settings.set(await api<Settings>(`/v1/workspaces/${slug}/insight/settings`, { method: "PUT", body: { timezone: zone } }));
      setSaved(true);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <details className="card" data-testid="tz-setting">
      <summary>
        <strong>{t("settings")}</strong>{" "}
        <span className="muted">{settings.value ? t("timezone", { tz: settings.value.timezone }) : null}</span>
      </summary>
      <Loaded state={settings}>
        {(s) =>
          canManage ? (
            <form
              className="tz-form"
              onSubmit={(e) => {
                e.preventDefault();
                void save((value ?? s.timezone).trim());
              }}
            >
              <label className="field">
                <span>
                  {t("settings")} <span className="hint">{t("settingsHint")}</span>
                </span>
                <input list="insight-zones" value={value ?? s.timezone} onChange={(e) => setValue(e.target.value)} data-testid="tz-input" />
                <datalist id="insight-zones">
                  {zones.map((zone) => (
                    <option key={zone} value={zone} />
                  ))}
                </datalist>
              </label>
              <button type="submit" className="button primary" disabled={busy || !(value ?? s.timezone).trim()}>
                {c("save")}
              </button>
              {saved ? (
                <span className="tag ok" role="status">
                  {t("tzSaved")}
                </span>
              ) : null}
            </form>
          ) : (
            <p className="muted small">
              {t("settingsHint")} {t("settingsOnlyAdmins")}
            </p>
          )
        }
      </Loaded>
      {error ? <ErrorNote error={error} /> : null}
    </details>
  );
}

export default function InsightWorkspace() {
  const t = useT(insightText);
  const { me } = useSession();
  const { query } = useLocation();
  const [round, setRound] = useState(0);
  if (!me) return null;
  const slug = query.get("workspace") ?? me.workspace;
  const role = me.workspaces.find((w) => w.slug === slug)?.role;
  const canManage = me.is_admin || role === "owner" || role === "admin";
  const base = `/v1/workspaces/${slug}/insight`;
  return (
    <div className="page">
      <div className="page-head">
        <h1>{t("workspaceTitle", { workspace: slug })}</h1>
        <span className="spacer" />
        {me.workspaces.length > 1 ? (
          <label className="row">
            {t("chooseWorkspace")}
            <select value={slug} onChange={(e) => navigate(`/insight?workspace=${encodeURIComponent(e.target.value)}`)}>
              {me.workspaces.map((w) => (
                <option key={w.slug} value={w.slug}>
                  {w.slug}
                </option>
              ))}
            </select>
          </label>
        ) : null}
      </div>
      <p className="muted">{t("intro")}</p>
      <div className="stack">
        <TimezoneSetting key={slug} slug={slug} canManage={canManage} onChanged={() => setRound((r) => r + 1)} />
        <Dashboard key={`${slug}-${round}`} base={base} csvName={slug} after={(overview, win) => <AppsTable apps={overview.apps ?? []} base={base} win={win} />} />
      </div>
    </div>
  );
}
