// The dashboard an app and a workspace share: a date range with the previous period to
// compare with, metric tiles with their formulas, trend charts, the retention heat map and
// CSV downloads. `base` is the API prefix: /v1/apps/{app}/insight or /v1/workspaces/{ws}/insight.
import { useId, useState, type ReactNode } from "react";
import { api, downloadFrom } from "../api";
import { useLang, useT, type Lang } from "../i18n";
import { insightText, type InsightKey } from "../i18n/insight";
import { BarChart } from "./insight-charts";
import { ErrorNote, LineChart, Loaded, useAsync } from "./ui";
import "./insight-styles.css";

export interface Metric {
  value: number | null;
  formula: string;
  unit: string;
  inputs?: Record<string, unknown>;
}

export interface AppTotals {
  app_id: string;
  slug: string | null;
  name: string | null;
  deleted: boolean;
  runs: number;
  failed_runs: number;
  messages: number;
  cost: number;
  active_users: number;
}

export interface Overview {
  tz: string;
  from: string;
  to: string;
  metrics: Record<string, Metric>;
  apps?: AppTotals[];
}

interface SeriesPoint {
  day: string;
  value: number | null;
  p50?: number | null;
  p95?: number | null;
}

interface Series {
  metric: string;
  formula: string;
  unit: string;
  data: SeriesPoint[];
}

interface Retention {
  grain: "day" | "week";
  periods: number;
  formula: { classic: string; unbounded: string };
  average: { classic: (number | null)[]; unbounded: (number | null)[] };
  cohorts: {
    cohort: string;
    size: number;
    classic: (number | null)[];
    unbounded: (number | null)[];
    classic_users: (number | null)[];
    unbounded_users: (number | null)[];
  }[];
}

export interface Win {
  from: string;
  to: string;
  tz: string;
}

// --- days and numbers ------------------------------------------------------------------

const DAY_MS = 86_400_000;

export function addDays(day: string, n: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS);
}

function todayIn(tz: string | undefined): string {
  try {
    return new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  } catch {
    return new Date().toISOString().slice(0, 10);
  }
}

export function locale(lang: Lang): string {
  return lang === "zh" ? "zh-CN" : "en";
}

export function formatCount(value: number, lang: Lang, digits = 2): string {
  return new Intl.NumberFormat(locale(lang), { maximumFractionDigits: digits }).format(value);
}

/** Micro-yuan as yuan, exactly (cost is a whole number of micro-yuan). */
export function formatYuan(microYuan: number, lang: Lang): string {
  return "¥" + new Intl.NumberFormat(locale(lang), { minimumFractionDigits: 2, maximumFractionDigits: 7 }).format(microYuan / 1_000_000);
}

/** Micro-yuan as a short yuan amount, for chart ticks. */
function compactYuan(microYuan: number, lang: Lang): string {
  return new Intl.NumberFormat(locale(lang), { maximumSignificantDigits: 2, maximumFractionDigits: 8 }).format(microYuan / 1_000_000);
}

export function formatMs(ms: number): string {
  if (ms === 0) return "0 ms";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 1) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

export function formatDay(day: string, lang: Lang): string {
  return new Date(`${day}T00:00:00Z`).toLocaleDateString(locale(lang), { month: "short", day: "numeric", timeZone: "UTC" });
}

const PERCENT = new Set(["stickiness", "churn", "error_rate"]);
/** For these, a rise is bad news; for cost it is neither. */
const LOWER_IS_BETTER = new Set(["churn", "error_rate", "failed_runs", "dislikes", "latency_p50", "latency_p95", "ttft_p50", "ttft_p95"]);
const NEUTRAL = new Set(["cost", "cost_per_user", "cost_per_conversation", "input_tokens", "output_tokens"]);

export function formatMetric(name: string, value: number | null | undefined, unit: string, lang: Lang): string {
  if (value === null || value === undefined) return "—";
  if (PERCENT.has(name)) return `${formatCount(value * 100, lang, 1)}%`;
  if (unit === "micro-yuan") return formatYuan(value, lang);
  if (unit === "ms") return formatMs(value);
  return formatCount(value, lang);
}

/** Save what a GET returns (with the session's bearer token) as a file. */

export function CsvButton({ path, name, label, testId }: { path: string; name: string; label?: string; testId?: string }) {
  const t = useT(insightText);
  const [error, setError] = useState<unknown>(null);
  return (
    <>
      <button
        type="button"
        className="button small"
        data-testid={testId}
        onClick={() => {
          setError(null);
          downloadFrom(path, name).catch(setError);
        }}
      >
        <span aria-hidden="true">⤓</span> {label ?? t("downloadCsv")}
      </button>
      {error ? <ErrorNote error={error} /> : null}
    </>
  );
}

// --- formulas --------------------------------------------------------------------------

/** A formula's text: the API's in English, the translation in Chinese. */
export function useFormula(): (key: string, fromApi?: string) => string {
  const t = useT(insightText);
  const { lang } = useLang();
  const table = insightText.en as Record<string, string>;
  return (key, fromApi) => {
    if (lang === "en" && fromApi) return fromApi;
    return key in table ? t(key as InsightKey) : (fromApi ?? "");
  };
}

function Inputs({ inputs }: { inputs?: Record<string, unknown> }) {
  const t = useT(insightText);
  const entries = Object.entries(inputs ?? {});
  if (!entries.length) return null;
  return (
    <div className="formula-inputs">
      {t("inputs")}:{" "}
      {entries.map(([key, value], i) => (
        <span key={key}>
          {i ? " · " : null}
          <code>{key}</code> = {Array.isArray(value) ? value.join(" … ") : String(value)}
        </span>
      ))}
    </div>
  );
}

/** The ƒ button that shows or hides a formula (the text is FormulaText, with the same id). */
function FormulaButton({ id, label, text, open, onToggle }: { id: string; label: string; text: string; open: boolean; onToggle: () => void }) {
  const t = useT(insightText);
  return (
    <button type="button" className="formula-toggle" aria-expanded={open} aria-controls={id} aria-label={t("formulaOf", { metric: label })} title={text} onClick={onToggle}>
      ƒ
    </button>
  );
}

/** A formula, shown when open; hidden formulas stay readable to screen readers. */
function FormulaText({ id, text, inputs, open }: { id: string; text: string; inputs?: Record<string, unknown>; open: boolean }) {
  const t = useT(insightText);
  return (
    <div id={id} className={open ? "formula" : "visually-hidden"} data-testid="formula">
      <span className="visually-hidden">{t("formula")}: </span>
      {text}
      {open ? <Inputs inputs={inputs} /> : null}
    </div>
  );
}

// --- the range picker -------------------------------------------------------------------

export type Range = { days: 7 | 30 | 90 } | { from: string; to: string };

function RangePicker({ range, onChange, today }: { range: Range; onChange: (r: Range) => void; today: string }) {
  const t = useT(insightText);
  const custom = "from" in range;
  const [open, setOpen] = useState(custom);
  const [from, setFrom] = useState(custom ? range.from : addDays(today, -29));
  const [to, setTo] = useState(custom ? range.to : today);
  const valid = !!from && !!to && from <= to && daysBetween(from, to) < 366;
  const presets: [7 | 30 | 90, InsightKey][] = [
    [7, "last7"],
    [30, "last30"],
    [90, "last90"],
  ];
  return (
    <div className="range-picker" role="group" aria-label={t("range")}>
      {presets.map(([days, key]) => {
        const on = !custom && !open && "days" in range && range.days === days;
        return (
          <button
            key={days}
            type="button"
            className={`button small${on ? " primary" : ""}`}
            aria-pressed={on}
            onClick={() => {
              setOpen(false);
              onChange({ days });
            }}
          >
            {t(key)}
          </button>
        );
      })}
      <button type="button" className={`button small${open ? " primary" : ""}`} aria-pressed={open} onClick={() => setOpen(true)}>
        {t("custom")}
      </button>
      {open ? (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            if (valid) onChange({ from, to });
          }}
        >
          <label className="row">
            {t("from")} <input type="date" value={from} max={to || undefined} onChange={(e) => setFrom(e.target.value)} data-testid="range-from" />
          </label>
          <label className="row">
            {t("to")} <input type="date" value={to} min={from || undefined} onChange={(e) => setTo(e.target.value)} data-testid="range-to" />
          </label>
          <button type="submit" className="button small" disabled={!valid}>
            {t("apply")}
          </button>
          {!valid ? <span className="muted small">{t("badRange")}</span> : null}
        </form>
      ) : null}
    </div>
  );
}

// --- tiles -------------------------------------------------------------------------------

const GROUPS: [InsightKey, string[]][] = [
  ["groupUsers", ["dau", "wau", "mau", "stickiness", "active_users", "new_users", "returning_users", "churn"]],
  ["groupEngagement", ["runs", "messages", "sessions", "messages_per_session"]],
  ["groupFeedback", ["satisfaction", "likes", "dislikes", "comments"]],
  ["groupCost", ["cost", "cost_per_user", "cost_per_conversation", "input_tokens", "output_tokens"]],
  ["groupPerformance", ["latency_p50", "latency_p95", "ttft_p50", "ttft_p95", "error_rate"]],
];

function Delta({ name, metric, previous }: { name: string; metric: Metric; previous: Metric | undefined }) {
  const t = useT(insightText);
  const { lang } = useLang();
  if (!previous) return null;
  const now = metric.value;
  const before = previous.value;
  const shownBefore = formatMetric(name, before, previous.unit, lang);
  if (now === null || before === null) {
    return <div className="delta muted">{t("previousValue", { value: shownBefore })}</div>;
  }
  const diff = now - before;
  let text: string;
  if (diff === 0) text = t("deltaSame");
  else if (PERCENT.has(name)) text = `${diff > 0 ? "+" : "−"}${t("pp", { n: formatCount(Math.abs(diff) * 100, lang, 1) })}`;
  else if (before === 0) text = t("deltaNew");
  else text = `${diff > 0 ? "+" : "−"}${formatCount(Math.abs((100 * diff) / before), lang, 1)}%`;
  const arrow = diff > 0 ? "▲" : diff < 0 ? "▼" : "▬";
  const tone = diff === 0 || NEUTRAL.has(name) ? "" : (diff > 0) !== LOWER_IS_BETTER.has(name) ? " good" : " bad";
  const spoken = diff === 0 ? t("deltaSame") : t(diff > 0 ? "deltaUp" : "deltaDown", { delta: text.replace(/^[+−]/, "") });
  return (
    <div className={`delta${tone}`} data-testid="delta">
      <span aria-hidden="true">
        {arrow} {text}
      </span>
      <span className="visually-hidden">{spoken}</span>
      <span className="muted"> · {t("previousValue", { value: shownBefore })}</span>
    </div>
  );
}

function Tile({ name, metric, previous, showFormula }: { name: string; metric: Metric; previous?: Metric; showFormula: boolean }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const formula = useFormula();
  const id = useId();
  const [open, setOpen] = useState(false);
  const label = t(`m_${name}` as InsightKey);
  const text = formula(`f_${name}`, metric.formula);
  const unit = metric.unit === "micro-yuan" && metric.value !== null ? t("unitMicroYuan", { n: formatCount(metric.value, lang, 1) }) : name === "satisfaction" ? t("unitSatisfaction") : null;
  return (
    <div className="card metric" data-testid={`metric-${name}`} data-value={metric.value ?? ""}>
      <div className="metric-head tile-head">
        <span className="metric-label">{label}</span>
        <FormulaButton id={id} label={label} text={text} open={open || showFormula} onToggle={() => setOpen((o) => !o)} />
      </div>
      <b className="metric-value" title={metric.value === null ? t("noValueHint") : undefined} aria-describedby={id}>
        {formatMetric(name, metric.value, metric.unit, lang)}
      </b>
      {unit ? <span className="metric-unit">{unit}</span> : null}
      <Delta name={name} metric={metric} previous={previous} />
      <FormulaText id={id} text={text} inputs={metric.inputs} open={open || showFormula} />
    </div>
  );
}

function Tiles({ current, previous, showFormulas }: { current: Overview; previous: Overview | null; showFormulas: boolean }) {
  const t = useT(insightText);
  return (
    <div className="metric-groups">
      {GROUPS.map(([group, names]) => (
        <section key={group} aria-label={t(group)}>
          <h2>{t(group)}</h2>
          <div className="metric-grid">
            {names
              .filter((name) => current.metrics[name])
              .map((name) => (
                <Tile key={name} name={name} metric={current.metrics[name]} previous={previous?.metrics[name]} showFormula={showFormulas} />
              ))}
          </div>
        </section>
      ))}
    </div>
  );
}

// --- charts ------------------------------------------------------------------------------

const COLORS = { dau: "#b4472c", wau: "#2f6db5", mau: "#3b8f5a", p95: "#8a5cc2", newUsers: "#b4472c", returning: "#2f6db5" };

function ChartCard({ title, formula, children, csv, testId }: { title: string; formula: string; children: ReactNode; csv: { path: string; name: string; label: string }[]; testId: string }) {
  const [open, setOpen] = useState(false);
  const id = useId();
  return (
    <div className="card chart-card" data-testid={testId}>
      <div className="metric-head">
        <h3>{title}</h3>
        <FormulaButton id={id} label={title} text={formula} open={open} onToggle={() => setOpen((o) => !o)} />
      </div>
      <FormulaText id={id} text={formula} open={open} />
      {children}
      <div className="row chart-downloads">
        {csv.map((c) => (
          <CsvButton key={c.path} path={c.path} name={c.name} label={c.label} />
        ))}
      </div>
    </div>
  );
}

function points(series: Series, pick: (p: SeriesPoint) => number | null | undefined): [number, number][] {
  return series.data.flatMap((p) => {
    const v = pick(p);
    return v === null || v === undefined ? [] : [[Date.parse(`${p.day}T00:00:00Z`), v] as [number, number]];
  });
}

function Trends({ base, win }: { base: string; win: Win }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const formula = useFormula();
  const query = `from=${win.from}&to=${win.to}`;
  const names = ["dau", "wau", "mau", "new_users", "returning_users", "cost", "latency", "satisfaction"] as const;
  const all = useAsync(
    () => Promise.all(names.map((m) => api<Series>(`${base}/series?metric=${m}&${query}`))).then((list) => Object.fromEntries(list.map((s, i) => [names[i], s])) as Record<(typeof names)[number], Series>),
    [base, query],
  );
  const csv = (metric: string, label: string) => ({ path: `${base}/series?metric=${metric}&${query}&format=csv`, name: `${metric}-${win.from}-${win.to}.csv`, label: `CSV · ${label}` });
  const formatX = (x: number) => new Date(x).toLocaleDateString(locale(lang), { month: "short", day: "numeric", timeZone: "UTC" });
  return (
    <section aria-label={t("charts")}>
      <h2>{t("charts")}</h2>
      <Loaded state={all}>
        {(s) => (
          <div className="grid-2">
            <ChartCard
              testId="chart-active"
              title={t("chartActive")}
              formula={[formula("f_dau", s.dau.formula), formula("f_wau", s.wau.formula), formula("f_mau", s.mau.formula)].join("; ")}
              csv={[csv("dau", "DAU"), csv("wau", "WAU"), csv("mau", "MAU")]}
            >
              <LineChart
                yLabel={t("chartActive")}
                series={[
                  { name: "DAU", points: points(s.dau, (p) => p.value), color: COLORS.dau },
                  { name: "WAU", points: points(s.wau, (p) => p.value), color: COLORS.wau },
                  { name: "MAU", points: points(s.mau, (p) => p.value), color: COLORS.mau },
                ]}
                formatX={formatX}
                formatY={(y) => formatCount(y, lang, 1)}
              />
            </ChartCard>
            <ChartCard
              testId="chart-new-returning"
              title={t("chartNewReturning")}
              formula={`${t("m_new_users")}: ${formula("s_new_users", s.new_users.formula)}; ${t("m_returning_users")}: ${formula("s_returning_users", s.returning_users.formula)}`}
              csv={[csv("new_users", t("m_new_users")), csv("returning_users", t("m_returning_users"))]}
            >
              <BarChart
                label={t("chartNewReturning")}
                labels={s.new_users.data.map((p) => p.day)}
                bars={[
                  { name: t("m_new_users"), values: s.new_users.data.map((p) => p.value ?? 0), color: COLORS.newUsers },
                  { name: t("m_returning_users"), values: s.returning_users.data.map((p) => p.value ?? 0), color: COLORS.returning },
                ]}
                formatX={(d) => formatDay(d, lang)}
                formatY={(y) => formatCount(y, lang, 1)}
              />
            </ChartCard>
            <ChartCard testId="chart-cost" title={t("chartCost")} formula={formula("s_cost", s.cost.formula)} csv={[csv("cost", t("m_cost"))]}>
              <LineChart
                yLabel={t("chartCost")}
                series={[{ name: t("m_cost"), points: points(s.cost, (p) => p.value), color: COLORS.dau }]}
                formatX={formatX}
                formatY={(y) => compactYuan(y, lang)}
              />
            </ChartCard>
            <ChartCard testId="chart-latency" title={t("chartLatency")} formula={formula("s_latency", s.latency.formula)} csv={[csv("latency", t("latency"))]}>
              <BarChart
                label={t("chartLatency")}
                grouped
                labels={s.latency.data.map((p) => p.day)}
                bars={[
                  { name: "p50", values: s.latency.data.map((p) => p.p50 ?? 0), color: COLORS.wau },
                  { name: "p95", values: s.latency.data.map((p) => p.p95 ?? 0), color: COLORS.p95 },
                ]}
                formatX={(d) => formatDay(d, lang)}
                formatY={(y) => formatMs(y)}
              />
            </ChartCard>
            <ChartCard testId="chart-satisfaction" title={t("chartSatisfaction")} formula={formula("s_satisfaction", s.satisfaction.formula)} csv={[csv("satisfaction", t("m_satisfaction"))]}>
              <BarChart
                label={t("chartSatisfaction")}
                labels={s.satisfaction.data.map((p) => p.day)}
                bars={[{ name: t("unitSatisfaction"), values: s.satisfaction.data.map((p) => p.value ?? 0), color: COLORS.mau }]}
                formatX={(d) => formatDay(d, lang)}
                formatY={(y) => formatCount(y, lang, 0)}
              />
            </ChartCard>
          </div>
        )}
      </Loaded>
    </section>
  );
}

// --- retention ---------------------------------------------------------------------------

function heat(value: number): { background: string; color: string } {
  const alpha = 0.1 + 0.85 * Math.max(0, Math.min(1, value));
  return { background: `rgba(180, 71, 44, ${alpha.toFixed(3)})`, color: alpha > 0.55 ? "#fff" : "var(--ink)" };
}

function RetentionTable({ base, win }: { base: string; win: Win }) {
  const t = useT(insightText);
  const { lang } = useLang();
  const formula = useFormula();
  const [grain, setGrain] = useState<"day" | "week">("day");
  const [kind, setKind] = useState<"classic" | "unbounded">("classic");
  const [showEmpty, setShowEmpty] = useState(false);
  const [open, setOpen] = useState(false);
  const span = daysBetween(win.from, win.to) + 1;
  const periods = grain === "day" ? Math.min(30, Math.max(1, span - 1)) : Math.min(12, Math.max(1, Math.ceil(span / 7)));
  const path = `${base}/retention?grain=${grain}&days=${periods}&from=${win.from}&to=${win.to}`;
  const table = useAsync(() => api<Retention>(path), [path]);
  const formulaId = useId();
  const formulaKey = (`f_retention_${kind}${grain === "week" ? "_week" : ""}`) as InsightKey;
  const retentionFormula = formula(formulaKey, table.value?.grain === grain ? table.value.formula[kind] : undefined);
  const period = (n: number) => t(grain === "day" ? "dayN" : "weekN", { n });
  const pct = (v: number) => `${formatCount(v * 100, lang, 0)}%`;
  return (
    <section aria-label={t("retention")} className="card retention">
      <div className="metric-head">
        <h2>{t("retention")}</h2>
        <FormulaButton id={formulaId} label={t("retention")} text={retentionFormula} open={open} onToggle={() => setOpen((o) => !o)} />
        <span className="spacer" />
        <div className="tabs compact" role="group" aria-label={t("grain")}>
          <button type="button" aria-pressed={grain === "day"} aria-selected={grain === "day"} onClick={() => setGrain("day")}>
            {t("byDay")}
          </button>
          <button type="button" aria-pressed={grain === "week"} aria-selected={grain === "week"} onClick={() => setGrain("week")}>
            {t("byWeek")}
          </button>
        </div>
        <div className="tabs compact" role="group" aria-label={t("kind")}>
          <button type="button" aria-pressed={kind === "classic"} aria-selected={kind === "classic"} onClick={() => setKind("classic")}>
            {t("classic")}
          </button>
          <button type="button" aria-pressed={kind === "unbounded"} aria-selected={kind === "unbounded"} onClick={() => setKind("unbounded")}>
            {t("unbounded")}
          </button>
        </div>
        <label className="row small">
          <input type="checkbox" checked={showEmpty} onChange={(e) => setShowEmpty(e.target.checked)} /> {t("showEmpty")}
        </label>
        <CsvButton path={`${path}&format=csv`} name={`retention-${grain}-${win.to}.csv`} testId="retention-csv" />
      </div>
      <FormulaText id={formulaId} text={retentionFormula} open={open} />
      <Loaded state={table}>
        {(r) => {
          const rows = r.cohorts.filter((c) => showEmpty || c.size > 0);
          if (!rows.length && !showEmpty) return <div className="empty">{t("noCohorts")}</div>;
          const columns = Array.from({ length: r.periods + 1 }, (_, n) => n);
          return (
            <div className="table-scroll">
              <table className="table heatmap" data-testid="retention-table">
                <caption className="visually-hidden">
                  {t("retentionCaption", { kind: t(kind), grain: t(grain === "day" ? "grainDay" : "grainWeek"), when: t(kind === "classic" ? "whenClassic" : "whenUnbounded") })} {t("emptyCells")}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">{t("cohort")}</th>
                    <th scope="col">{t("cohortSize")}</th>
                    {columns.map((n) => (
                      <th scope="col" key={n}>
                        {period(n)}
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((c) => (
                    <tr key={c.cohort} data-testid={`cohort-${c.cohort}`}>
                      <th scope="row">{c.cohort}</th>
                      <td>{formatCount(c.size, lang)}</td>
                      {columns.map((n) => {
                        const v = c[kind][n];
                        const users = (kind === "classic" ? c.classic_users : c.unbounded_users)[n];
                        if (v === null || v === undefined) {
                          const future = users === null;
                          return (
                            <td key={n} className={future ? "cell-na" : "cell-zero"} title={future ? t("notYet") : undefined}>
                              {future ? null : "—"}
                            </td>
                          );
                        }
                        return (
                          <td key={n} style={heat(v)} title={t("cellTitle", { users: users ?? 0, size: c.size })} data-testid={`cell-${c.cohort}-${n}`}>
                            {pct(v)}
                          </td>
                        );
                      })}
                    </tr>
                  ))}
                  <tr className="average">
                    <th scope="row" colSpan={2}>
                      {t("average")}
                    </th>
                    {columns.map((n) => {
                      const v = r.average[kind][n];
                      return v === null || v === undefined ? (
                        <td key={n} className="cell-na" />
                      ) : (
                        <td key={n} style={heat(v)}>
                          {pct(v)}
                        </td>
                      );
                    })}
                  </tr>
                </tbody>
              </table>
            </div>
          );
        }}
      </Loaded>
    </section>
  );
}

// --- the dashboard ------------------------------------------------------------------------

export function Dashboard({ base, csvName, after }: { base: string; csvName: string; after?: (current: Overview, win: Win) => ReactNode }) {
  const t = useT(insightText);
  const [range, setRange] = useState<Range>({ days: 30 });
  const [compare, setCompare] = useState(true);
  const [showFormulas, setShowFormulas] = useState(false);
  const [today, setToday] = useState<string | null>(null);
  const rangeKey = "days" in range ? `d${range.days}` : `${range.from}_${range.to}`;

  const overview = useAsync(async () => {
    let query = "";
    if ("from" in range) query = `from=${range.from}&to=${range.to}`;
    else if (range.days !== 30 || today) {
      const last = today ?? todayIn(undefined);
      query = `from=${addDays(last, -(range.days - 1))}&to=${last}`;
    }
    const current = await api<Overview>(`${base}/overview${query ? `?${query}` : ""}`);
    if (!query) setToday(current.to); // the server's default window ends today, in the workspace's zone
    let previous: Overview | null = null;
    if (compare) {
      const length = daysBetween(current.from, current.to) + 1;
      previous = await api<Overview>(`${base}/overview?from=${addDays(current.from, -length)}&to=${addDays(current.from, -1)}`);
    }
    return { current, previous };
  }, [base, rangeKey, compare]);

  const current = overview.value?.current;
  const win: Win | null = current ? { from: current.from, to: current.to, tz: current.tz } : null;
  const length = win ? daysBetween(win.from, win.to) + 1 : 0;

  return (
    <div className="stack insight">
      <div className="insight-toolbar">
        <RangePicker range={range} onChange={setRange} today={today ?? todayIn(current?.tz)} />
        <span className="spacer" />
        <label className="row small">
          <input type="checkbox" checked={compare} onChange={(e) => setCompare(e.target.checked)} /> {t("compare")}
        </label>
        <label className="row small">
          <input type="checkbox" checked={showFormulas} onChange={(e) => setShowFormulas(e.target.checked)} data-testid="show-formulas" /> {t("showFormulas")}
        </label>
        {win ? <CsvButton path={`${base}/overview?from=${win.from}&to=${win.to}&format=csv`} name={`${csvName}-overview-${win.from}-${win.to}.csv`} label={t("downloadOverview")} testId="overview-csv" /> : null}
      </div>
      {win ? (
        <p className="muted small window-note" data-testid="window">
          <strong>{t("window", { from: win.from, to: win.to })}</strong>
          {compare ? ` · ${t("previousPeriod", { from: addDays(win.from, -length), to: addDays(win.from, -1) })}` : null} · {t("timezone", { tz: win.tz })}
        </p>
      ) : null}
      <Loaded state={overview}>
        {({ current: now, previous }) => (
          <>
            <Tiles current={now} previous={previous} showFormulas={showFormulas} />
            {after ? after(now, { from: now.from, to: now.to, tz: now.tz }) : null}
            <Trends base={base} win={{ from: now.from, to: now.to, tz: now.tz }} />
            <RetentionTable base={base} win={{ from: now.from, to: now.to, tz: now.tz }} />
          </>
        )}
      </Loaded>
    </div>
  );
}
