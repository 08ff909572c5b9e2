// Insight's own charts: stacked bars per day, and a run's node waterfall. Plain SVG and
// HTML like LineChart in ui.tsx; each has a text form for screen readers.
import type { ReactNode } from "react";

export interface Bars {
  name: string;
  values: number[];
  color: string;
}

/** Stacked bars, one per label (day); a legend names each stack. */
export function BarChart({
  labels,
  bars,
  height = 220,
  label,
  grouped = false,
  formatX = (x) => x,
  formatY = (y) => String(Math.round(y)),
}: {
  labels: string[];
  bars: Bars[];
  height?: number;
  label: string;
  /** Side by side instead of stacked. */
  grouped?: boolean;
  formatX?: (x: string) => string;
  formatY?: (y: number) => string;
}) {
  const width = 640;
  const pad = { left: 56, right: 16, top: 12, bottom: 36 };
  const totals = labels.map((_, i) => bars.reduce((sum, b) => sum + (b.values[i] ?? 0), 0));
  const top = Math.max(1, ...(grouped ? bars.flatMap((b) => b.values) : totals));
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(1, labels.length);
  const barW = Math.max(1, Math.min(28, slot * 0.7));
  const sy = (y: number) => pad.top + (1 - y / top) * plotH;
  const ticks = [0, 0.5, 1].map((f) => f * top);
  const every = Math.max(1, Math.ceil(labels.length / 6));
  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={label}>
        {ticks.map((y) => (
          <g key={`y${y}`}>
            <line x1={pad.left} x2={width - pad.right} y1={sy(y)} y2={sy(y)} className="grid" />
            <text x={pad.left - 6} y={sy(y) + 4} textAnchor="end" className="tick">
              {formatY(y)}
            </text>
          </g>
        ))}
        {labels.map((day, i) => {
          const x = pad.left + slot * i + (slot - barW) / 2;
          let base = 0;
          return (
            <g key={day}>
              {bars.map((b, j) => {
                const v = b.values[i] ?? 0;
                const y0 = sy(grouped ? 0 : base);
                if (!grouped) base += v;
                const y1 = sy(grouped ? v : base);
                const w = grouped ? barW / bars.length : barW;
                return v > 0 ? (
                  <rect key={b.name} x={grouped ? x + j * w : x} y={y1} width={w} height={Math.max(0, y0 - y1)} fill={b.color}>
                    <title>{`${formatX(day)} · ${b.name}: ${formatY(v)}`}</title>
                  </rect>
                ) : null;
              })}
              {i % every === 0 ? (
                <text x={x + barW / 2} y={height - pad.bottom + 16} textAnchor="middle" className="tick">
                  {formatX(day)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption className="legend">
        {bars.map((b) => (
          <span key={b.name}>
            <i style={{ background: b.color }} /> {b.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** Where a bar's duration goes: after the bar, inside its end, or before it. */
function timePlace(start: number, duration: number, scale: number, pct: (ms: number) => string) {
  const end = start + duration;
  if (end / scale <= 0.8) return { left: pct(end), paddingLeft: 6 };
  if (duration / scale >= 0.2) return { right: pct(scale - end), paddingRight: 6, color: "#fff" };
  return { right: pct(scale - start), paddingRight: 6 };
}

export interface Span {
  id: string;
  label: ReactNode;
  start: number;
  duration: number;
  status?: string | null;
  /** Read by screen readers (and shown as the bar's tooltip). */
  description: string;
  details?: ReactNode;
}

/** A waterfall: each row's bar is offset by its start and as wide as its duration. */
export function Waterfall({ spans, total, formatMs, caption }: { spans: Span[]; total: number; formatMs: (ms: number) => string; caption: string }) {
  const scale = Math.max(total, ...spans.map((s) => s.start + s.duration), 0.001);
  const pct = (ms: number) => `${Math.min(100, Math.max(0, (100 * ms) / scale))}%`;
  return (
    <div className="waterfall" data-testid="waterfall">
      <div className="waterfall-axis" aria-hidden="true">
        <span />
        <div className="waterfall-scale">
          <span>0</span>
          <span>{formatMs(scale / 2)}</span>
          <span>{formatMs(scale)}</span>
        </div>
      </div>
      <ol aria-label={caption}>
        {spans.map((span) => (
          <li key={span.id} className="waterfall-row" data-testid={`span-${span.id}`}>
            <div className="waterfall-label">{span.label}</div>
            <div className="waterfall-track">
              <div
                className={`waterfall-bar${span.status && span.status !== "succeeded" ? " bad" : ""}`}
                style={{ left: pct(span.start), width: `max(3px, ${pct(span.duration)})` }}
                title={span.description}
              />
              <span className="visually-hidden">{span.description}</span>
              <span
                className="waterfall-time"
                aria-hidden="true"
                style={timePlace(span.start, span.duration, scale, pct)}
              >
                {formatMs(span.duration)}
              </span>
            </div>
            {span.details ? <div className="waterfall-details">{span.details}</div> : null}
          </li>
        ))}
      </ol>
    </div>
  );
}
