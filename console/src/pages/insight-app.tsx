// One app's insight: the dashboard (numbers with formulas, trends, retention, CSV), its
// conversation logs and run traces, and the answers kept as saved replies or training data.
import { useState } from "react";
import { api } from "../api";
import { Dashboard } from "../components/insight-dashboard";
import { Annotations, Logs } from "../components/insight-logs";
import { Loaded, useAsync } from "../components/ui";
import { useT } from "../i18n";
import { insightText } from "../i18n/insight";
import { Link, navigate, useLocation } from "../router";

type Tab = "dashboard" | "logs" | "annotations";
const TABS: { id: Tab; key: "tabDashboard" | "tabLogs" | "tabAnnotations" }[] = [
  { id: "dashboard", key: "tabDashboard" },
  { id: "logs", key: "tabLogs" },
  { id: "annotations", key: "tabAnnotations" },
];

interface AppInfo {
  slug: string;
  name: string;
  published_version: number | null;
}

export default function InsightApp({ params }: { params: Record<string, string> }) {
  const t = useT(insightText);
  const slug = params.slug;
  const { path, query } = useLocation();
  const wanted = query.get("tab");
  const [tab, setTabState] = useState<Tab>(wanted === "logs" || wanted === "annotations" ? wanted : "dashboard");
  const setTab = (next: Tab) => {
    setTabState(next);
    navigate(next === "dashboard" ? path : `${path}?tab=${next}`, true);
  };
  const app = useAsync(() => api<AppInfo>(`/v1/apps/${slug}`), [slug]);
  return (
    <div className="page">
      <Loaded state={app}>
        {(info) => (
          <>
            <div className="page-head">
              <Link to="/apps" className="muted">
                {t("apps")}
              </Link>
              <span className="muted">/</span>
              <h1>{info.name}</h1>
              <span className="tag accent">{t("appTitle")}</span>
              <span className="spacer" />
              <Link className="button small" to={`/apps/${slug}/edit`}>
                {t("editApp")}
              </Link>
            </div>
            <div className="tabs app-tabs" role="tablist" aria-label={t("appTitle")}>
              {TABS.map(({ id, key }) => (
                <button key={id} type="button" role="tab" id={`tab-${id}`} aria-controls={`panel-${id}`} aria-selected={tab === id} onClick={() => setTab(id)}>
                  {t(key)}
                </button>
              ))}
            </div>
            <div role="tabpanel" id="panel-dashboard" aria-labelledby="tab-dashboard" hidden={tab !== "dashboard"}>
              <Dashboard base={`/v1/apps/${slug}/insight`} csvName={slug} />
            </div>
            <div role="tabpanel" id="panel-logs" aria-labelledby="tab-logs" hidden={tab !== "logs"}>
              <Logs slug={slug} />
            </div>
            {tab === "annotations" ? (
              <div role="tabpanel" id="panel-annotations" aria-labelledby="tab-annotations">
                <Annotations slug={slug} />
              </div>
            ) : null}
          </>
        )}
      </Loaded>
    </div>
  );
}
