// The canvas node: title, type, an input handle on the left, its ways out on the right,
// compile problems, and its live status in a run. Memoized: a node re-renders only when its
// own data, selection or overlay changes.
import { Handle, Position, useUpdateNodeInternals, type NodeProps } from "@xyflow/react";
import { createContext, memo, useContext, useEffect, useState } from "react";
import { useT } from "../i18n";
import { ERROR_HANDLE, hasInput, sourceHandles } from "./graph";
import { handleLabel, STATUS_KEYS, text, typeIcon, useTypeLabel } from "./messages";
import { useNodeOverlay } from "./overlay";
import type { FlowNode, NodeRun, NodeTypeInfo } from "./types";

export const TypesContext = createContext<Map<string, NodeTypeInfo>>(new Map());

function Elapsed({ run }: { run: NodeRun }) {
  const [now, setNow] = useState(() => performance.now());
  const running = run.status === "running" || run.status === "retrying";
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(performance.now()), 100);
    return () => clearInterval(timer);
  }, [running]);
  const ms = running && run.started !== undefined ? now - run.started : run.elapsed_ms;
  if (ms === undefined) return null;
  return <span className="dl-node-ms">{ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`}</span>;
}

function DlNodeView({ id, data, selected }: NodeProps<FlowNode>) {
  const t = useT(text);
  const typeLabel = useTypeLabel();
  const types = useContext(TypesContext);
  const { problems, run } = useNodeOverlay(id);
  const handles = sourceHandles(data, types.get(data.kind));
  const handleKey = handles.map((h) => h.id ?? "").join("|");
  const updateNodeInternals = useUpdateNodeInternals();
  useEffect(() => {
    updateNodeInternals(id);
  }, [id, handleKey, updateNodeInternals]);

  const named = handles.some((h) => h.id !== null);
  const classes = ["dl-node", `dl-kind-${data.kind}`];
  if (selected) classes.push("is-selected");
  if (problems.length) classes.push("has-problems");
  if (run) classes.push(`run-${run.status}`);
  const statusLabel = run ? t(STATUS_KEYS[run.status]) : null;
  const title = data.title || id;

  return (
    <div
      className={classes.join(" ")}
      data-testid={`node-${id}`}
      title={problems.length ? problems.join("\n") : undefined}
    >
      {hasInput(data.kind) ? (
        <Handle type="target" position={Position.Left} className="dl-handle dl-handle-in" aria-label={t("handleIn")} />
      ) : null}
      <div className="dl-node-head">
        <span className="dl-node-icon" aria-hidden="true">
          {typeIcon(data.kind)}
        </span>
        <span className="dl-node-title">{title}</span>
        {problems.length ? (
          <span className="dl-node-badge bad" aria-label={t("problemsCount", { n: problems.length })}>
            {problems.length}
          </span>
        ) : null}
      </div>
      <div className="dl-node-sub">
        <code>{id}</code>
        <span>{typeLabel(data.kind)}</span>
      </div>
      {run ? (
        <div className={`dl-node-run status-${run.status}`} role="status">
          <span className="dl-node-dot" aria-hidden="true" />
          <span>{statusLabel}</span>
          {run.attempt ? <span className="muted">×{run.attempt + 1}</span> : null}
          <Elapsed run={run} />
        </div>
      ) : null}
      {problems.length ? (
        <ul className="dl-node-problems">
          {problems.slice(0, 2).map((p, i) => (
            <li key={i}>{p}</li>
          ))}
          {problems.length > 2 ? <li className="muted">{t("moreProblems", { n: problems.length - 2 })}</li> : null}
        </ul>
      ) : null}
      {named ? (
        <div className="dl-node-outs">
          {handles.map((h) => (
            <div key={h.id ?? ""} className={`dl-node-out${h.id === ERROR_HANDLE ? " is-error" : ""}`}>
              <span>{handleLabel(h.id, data.kind, t)}</span>
              <Handle
                type="source"
                position={Position.Right}
                id={h.id ?? undefined}
                className="dl-handle dl-handle-out"
                aria-label={t("handleOut", { name: h.label ?? "" })}
              />
            </div>
          ))}
        </div>
      ) : handles.length ? (
        <Handle type="source" position={Position.Right} className="dl-handle dl-handle-out" aria-label={t("handleOut", { name: "" })} />
      ) : null}
    </div>
  );
}

export const DlNode = memo(DlNodeView);
export const nodeTypes = { dl: DlNode };
