// Small building blocks every page uses: loading, error and empty states, dialogs, charts.
import DOMPurify from "dompurify";
import { marked } from "marked";
import { useCallback, useEffect, useId, useRef, useState, type ReactNode } from "react";
import { ApiError, copyText } from "../api";
import { common } from "../i18n/common";
import { useT } from "../i18n";

export interface Async<V> {
  value: V | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
  set: (value: V) => void;
}

/** Load something; reload when `deps` change or on demand. */
export function useAsync<V>(load: () => Promise<V>, deps: unknown[]): Async<V> {
  const [value, setValue] = useState<V>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load().then(
      (v) => {
        if (!live) return;
        setValue(v);
        setError(undefined);
        setLoading(false);
      },
      (e: Error) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, round]);
  const reload = useCallback(() => setRound((r) => r + 1), []);
  return { value, error, loading, reload, set: setValue };
}

export function Spinner({ label }: { label?: string }) {
  const t = useT(common);
  return (
    <div className="spinner" role="status" aria-live="polite">
      <span className="spinner-dot" aria-hidden="true" />
      {label ?? t("loading")}
    </div>
  );
}

export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const t = useT(common);
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="error-note" role="alert">
      <strong>{t("errorTitle")}</strong>
      <span>{message}</span>
      {error instanceof ApiError && error.param ? <code>{error.param}</code> : null}
      {onRetry ? (
        <button type="button" className="link" onClick={onRetry}>
          {t("retry")}
        </button>
      ) : null}
    </div>
  );
}

/** Renders loading, error and empty states, or the children with the value. */
export function Loaded<V>({
  state,
  empty,
  isEmpty,
  children,
}: {
  state: Async<V>;
  empty?: ReactNode;
  isEmpty?: (value: V) => boolean;
  children: (value: V) => ReactNode;
}) {
  const t = useT(common);
  if (state.error) return <ErrorNote error={state.error} onRetry={state.reload} />;
  if (state.value === undefined) return <Spinner />;
  if (isEmpty?.(state.value)) return <div className="empty">{empty ?? t("empty")}</div>;
  return <>{children(state.value)}</>;
}

export function CopyButton({ text, label }: { text: string; label?: string }) {
  const t = useT(common);
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="button small"
      onClick={() => {
        void copyText(text).then(() => {
          setDone(true);
          setTimeout(() => setDone(false), 1500);
        });
      }}
    >
      {done ? t("copied") : (label ?? t("copy"))}
    </button>
  );
}

/** A modal dialog: focus moves in, Escape closes, focus returns after. */
export function Dialog({
  title,
  onClose,
  children,
  wide,
}: {
  title: string;
  onClose: () => void;
  children: ReactNode;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const titleId = useId();
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, select, textarea, button");
    first?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      previous?.focus();
    };
  }, [onClose]);
  return (
    <div className="dialog-backdrop" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`dialog${wide ? " wide" : ""}`} role="dialog" aria-modal="true" aria-labelledby={titleId} ref={ref}>
        <h2 id={titleId}>{title}</h2>
        {children}
      </div>
    </div>
  );
}

/** Markdown to HTML with scripts, handlers and javascript: links removed. */
export function Markdown({ source }: { source: string }) {
  const html = DOMPurify.sanitize(marked.parse(source, { async: false }) as string, {
    USE_PROFILES: { html: true },
  });
  return <div className="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}

export interface Series {
  name: string;
  points: [number, number][];
  color?: string;
}

const PALETTE = ["#b4472c", "#2f6db5", "#3b8f5a", "#8a5cc2", "#c28a1e"];

/** A line chart in plain SVG: axes with a few ticks, one path per series, a legend. */
export function LineChart({
  series,
  height = 220,
  xLabel,
  yLabel,
  formatX = (x) => String(x),
  formatY = (y) => (Math.abs(y) >= 100 ? y.toFixed(0) : y.toPrecision(3)),
}: {
  series: Series[];
  height?: number;
  xLabel?: string;
  yLabel?: string;
  formatX?: (x: number) => string;
  formatY?: (y: number) => string;
}) {
  const width = 640;
  const pad = { left: 56, right: 16, top: 12, bottom: 36 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return <div className="chart-empty" />;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0 || 1)) * (width - pad.left - pad.right);
  const sy = (y: number) => pad.top + (1 - (y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const ticks = (a: number, b: number) => [0, 0.25, 0.5, 0.75, 1].map((f) => a + f * (b - a));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={yLabel ?? "chart"}>
        {ticks(y0, y1).map((y) => (
          <g key={`y${y}`}>
            <line x1={pad.left} x2={width - pad.right} y1={sy(y)} y2={sy(y)} className="grid" />
            <text x={pad.left - 6} y={sy(y) + 4} textAnchor="end" className="tick">
              {formatY(y)}
            </text>
          </g>
        ))}
        {ticks(x0, x1).map((x) => (
          <text key={`x${x}`} x={sx(x)} y={height - pad.bottom + 16} textAnchor="middle" className="tick">
            {formatX(x)}
          </text>
        ))}
        {xLabel ? (
          <text x={(width + pad.left) / 2} y={height - 4} textAnchor="middle" className="axis-label">
            {xLabel}
          </text>
        ) : null}
        {series.map((s, i) => (
          <path
            key={s.name}
            d={s.points.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("")}
            fill="none"
            stroke={s.color ?? PALETTE[i % PALETTE.length]}
            strokeWidth={2}
          />
        ))}
      </svg>
      {series.length > 1 || yLabel ? (
        <figcaption className="legend">
          {yLabel ? <span className="axis-label">{yLabel}</span> : null}
          {series.length > 1
            ? series.map((s, i) => (
                <span key={s.name}>
                  <i style={{ background: s.color ?? PALETTE[i % PALETTE.length] }} /> {s.name}
                </span>
              ))
            : null}
        </figcaption>
      ) : null}
    </figure>
  );
}

export function formatTime(iso: string | null | undefined, lang: string): string {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en", {
    dateStyle: "medium",
    timeStyle: "short",
  });
}
