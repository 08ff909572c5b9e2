// The side panel for the selected node: title and id, its config form, error handling, its
// connections (a keyboard way to wire the graph), and what it did in the last run.
import { memo, useEffect, useId, useState, type KeyboardEvent } from "react";
import { useT } from "../i18n";
import { ERROR_HANDLE, hasInput, isIdentifier, sourceHandles } from "./graph";
import { handleLabel, text, typeIcon, useTypeLabel } from "./messages";
import { useNodeOverlay } from "./overlay";
import { JsonEditor, SchemaForm } from "./schema-form";
import { RunDetails } from "./run-panel";
import type { ErrorStrategy, FlowEdge, NodeData, NodeTypeInfo } from "./types";

/** A docstring's first paragraph without reStructuredText markup. */
function plainDoc(doc: string): string {
  return doc
    .replace(/\s*\(see :\w+:`[^`]+`\)/g, "")
    .replace(/:\w+:`~?([^`]+)`/g, "$1")
    .replace(/``([^`]+)``/g, "$1");
}

export interface NodeActions {
  setConfig: (id: string, config: Record<string, unknown>, key: string) => void;
  setTitle: (id: string, title: string) => void;
  setErrors: (id: string, errors: ErrorStrategy | undefined, key: string) => void;
  /** Rename a node; an error message, or null when done. */
  rename: (id: string, next: string) => string | null;
  connect: (source: string, handle: string | null, target: string) => void;
  disconnect: (edgeId: string) => void;
  remove: (id: string) => void;
  focus: (id: string) => void;
  deselect: () => void;
}

function IdField({ id, rename }: { id: string; rename: (next: string) => string | null }) {
  const t = useT(text);
  const inputId = useId();
  const [draft, setDraft] = useState(id);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setDraft(id);
    setError(null);
  }, [id]);
  const apply = () => {
    const next = draft.trim();
    if (next === id) return setError(null);
    if (!isIdentifier(next)) return setError(t("badId"));
    const problem = rename(next);
    setError(problem);
  };
  return (
    <div className="field dl-field">
      <label htmlFor={inputId}>
        <span className="dl-field-label">{t("nodeId")}</span> <span className="hint">{t("nodeIdHint")}</span>
      </label>
      <input
        id={inputId}
        className="mono"
        value={draft}
        spellCheck={false}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? `${inputId}-error` : undefined}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={apply}
        onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
          if (e.key === "Enter") apply();
          if (e.key === "Escape") {
            setDraft(id);
            setError(null);
          }
        }}
      />
      {error ? (
        <span id={`${inputId}-error`} className="dl-field-error" role="alert">
          {error}
        </span>
      ) : null}
    </div>
  );
}

function ErrorHandling({ node, actions }: { node: PanelNode; actions: NodeActions }) {
  const t = useT(text);
  const base = useId();
  const errors = node.data.errors ?? {};
  const set = (patch: ErrorStrategy, key: string) => {
    const next: ErrorStrategy = { ...errors, ...patch };
    if (next.on_error === "fail" || next.on_error === undefined) delete next.on_error;
    if (next.on_error !== "default") delete next.default_outputs;
    const empty = !next.on_error && !next.default_outputs && !(next.retry && (next.retry.max_attempts ?? 1) > 1);
    actions.setErrors(node.id, empty ? undefined : next, key);
  };
  const retry = errors.retry ?? {};
  return (
    <details className="dl-section" open={!!node.data.errors}>
      <summary>{t("errorHandling")}</summary>
      <div className="dl-fields">
        <div className="field dl-field">
          <label htmlFor={`${base}-on`}>
            <span className="dl-field-label">{t("onError")}</span>
          </label>
          <select id={`${base}-on`} value={errors.on_error ?? "fail"} onChange={(e) => set({ on_error: e.target.value as ErrorStrategy["on_error"] }, "errors.on_error")}>
            <option value="fail">{t("onErrorFail")}</option>
            <option value="default">{t("onErrorDefault")}</option>
            <option value="branch">{t("onErrorBranch")}</option>
          </select>
        </div>
        {errors.on_error === "default" ? (
          <div className="field dl-field">
            <label htmlFor={`${base}-defaults`}>
              <span className="dl-field-label">{t("defaultOutputs")}</span> <span className="hint">{t("jsonHint")}</span>
            </label>
            <JsonEditor id={`${base}-defaults`} value={errors.default_outputs ?? {}} onChange={(v) => set({ default_outputs: (v ?? {}) as Record<string, unknown> }, "errors.default")} rows={3} />
          </div>
        ) : null}
        <div className="dl-inline-fields">
          <div className="field dl-field">
            <label htmlFor={`${base}-attempts`}>
              <span className="dl-field-label">{t("maxAttempts")}</span> <span className="hint">1 – 10</span>
            </label>
            <input
              id={`${base}-attempts`}
              type="number"
              min={1}
              max={10}
              step={1}
              value={retry.max_attempts ?? 1}
              onChange={(e) => {
                const n = Math.min(10, Math.max(1, Math.round(Number(e.target.value) || 1)));
                set({ retry: { ...retry, max_attempts: n } }, "errors.retry");
              }}
            />
          </div>
          <div className="field dl-field">
            <label htmlFor={`${base}-backoff`}>
              <span className="dl-field-label">{t("backoff")}</span> <span className="hint">0 – 60</span>
            </label>
            <input
              id={`${base}-backoff`}
              type="number"
              min={0}
              max={60}
              step="any"
              value={retry.backoff_seconds ?? 0.5}
              onChange={(e) => {
                const n = Math.min(60, Math.max(0, Number(e.target.value) || 0));
                set({ retry: { ...retry, backoff_seconds: n } }, "errors.retry");
              }}
            />
          </div>
        </div>
      </div>
    </details>
  );
}

function Connections({
  node,
  info,
  edges,
  nodeIds,
  actions,
}: {
  node: PanelNode;
  info: NodeTypeInfo | undefined;
  edges: FlowEdge[];
  nodeIds: string[];
  actions: NodeActions;
}) {
  const t = useT(text);
  const base = useId();
  const handles = sourceHandles(node.data, info);
  const outgoing = edges.filter((e) => e.source === node.id);
  const incoming = edges.filter((e) => e.target === node.id);
  const targets = nodeIds.filter((id) => id !== node.id);
  return (
    <details className="dl-section" open>
      <summary>{t("connections")}</summary>
      {hasInput(node.data.kind) ? (
        <div className="dl-conn">
          <div className="dl-conn-head">{t("comesFrom")}</div>
          {incoming.length === 0 ? <p className="muted small">{t("noIncoming")}</p> : null}
          <ul className="dl-conn-list">
            {incoming.map((e) => (
              <li key={e.id}>
                <button type="button" className="link" onClick={() => actions.focus(e.source)}>
                  {e.source}
                </button>
                {e.sourceHandle ? <span className="tag">{handleLabel(e.sourceHandle, "", t)}</span> : null}
                <button type="button" className="button small dl-icon-button" aria-label={t("disconnect", { from: e.source, to: e.target })} onClick={() => actions.disconnect(e.id)}>
                  ✕
                </button>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {handles.map((h) => {
        const mine = outgoing.filter((e) => (e.sourceHandle ?? null) === h.id);
        const label = h.id === null ? t("goesTo") : `${t("goesTo")} · ${handleLabel(h.id, node.data.kind, t)}`;
        const selectId = `${base}-${h.id ?? "default"}`;
        return (
          <div key={h.id ?? ""} className={`dl-conn${h.id === ERROR_HANDLE ? " is-error" : ""}`}>
            <div className="dl-conn-head">{label}</div>
            <ul className="dl-conn-list">
              {mine.map((e) => (
                <li key={e.id}>
                  <button type="button" className="link" onClick={() => actions.focus(e.target)}>
                    {e.target}
                  </button>
                  <button type="button" className="button small dl-icon-button" aria-label={t("disconnect", { from: e.source, to: e.target })} onClick={() => actions.disconnect(e.id)}>
                    ✕
                  </button>
                </li>
              ))}
            </ul>
            <label className="visually-hidden" htmlFor={selectId}>
              {t("connectTo")} ({label})
            </label>
            <select
              id={selectId}
              value=""
              onChange={(e) => {
                if (e.target.value) actions.connect(node.id, h.id, e.target.value);
              }}
            >
              <option value="">{t("connectTo")}</option>
              {targets
                .filter((id) => !mine.some((e) => e.target === id))
                .map((id) => (
                  <option key={id} value={id}>
                    {id}
                  </option>
                ))}
            </select>
          </div>
        );
      })}
    </details>
  );
}

/** The panel needs a node's id and data, not its position: dragging it does not re-render the form. */
interface PanelNode {
  id: string;
  data: NodeData;
}

function NodePanelView({
  id,
  data,
  info,
  edges,
  nodeIds,
  actions,
}: {
  id: string;
  data: NodeData;
  info: NodeTypeInfo | undefined;
  edges: FlowEdge[];
  nodeIds: string[];
  actions: NodeActions;
}) {
  const node: PanelNode = { id, data };
  const t = useT(text);
  const typeLabel = useTypeLabel();
  const titleId = useId();
  const { problems, run } = useNodeOverlay(node.id);
  const schema = info?.config_schema;
  return (
    <div className="dl-node-panel" data-testid="node-panel" aria-label={t("nodePanel")}>
      <div className="dl-panel-head">
        <span className="dl-node-icon" aria-hidden="true">
          {typeIcon(node.data.kind)}
        </span>
        <h2>{node.data.title || node.id}</h2>
        <span className="tag">{typeLabel(node.data.kind)}</span>
        <span className="spacer" />
        <button type="button" className="button small danger" onClick={() => actions.remove(node.id)}>
          {t("deleteNode")}
        </button>
        <button type="button" className="button small dl-icon-button" aria-label={t("closePanel")} onClick={actions.deselect}>
          ✕
        </button>
      </div>
      {info?.doc ? <p className="muted small dl-node-doc">{plainDoc(info.doc)}</p> : null}
      {problems.length ? (
        <div className="error-note dl-node-panel-problems" role="alert">
          <strong>{t("nodeProblems")}</strong>
          <ul>
            {problems.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ul>
        </div>
      ) : null}
      <div className="dl-fields">
        <div className="field dl-field">
          <label htmlFor={titleId}>
            <span className="dl-field-label">{t("nodeTitle")}</span>
          </label>
          <input id={titleId} value={node.data.title} placeholder={node.id} onChange={(e) => actions.setTitle(node.id, e.target.value)} />
        </div>
        <IdField id={node.id} rename={(next) => actions.rename(node.id, next)} />
      </div>
      <details className="dl-section" open>
        <summary>{t("settings")}</summary>
        {schema && schema.properties ? (
          Object.keys(schema.properties).length ? (
            <SchemaForm schema={schema} value={node.data.config} nodeId={node.id} onChange={(next, key) => actions.setConfig(node.id, next, `config.${key}`)} />
          ) : (
            <p className="muted small">{t("noSettings")}</p>
          )
        ) : (
          <div className="field dl-field">
            <span className="hint">{t("noSchema")}</span>
            <JsonEditor id={`${titleId}-config`} label={t("settings")} value={node.data.config} onChange={(v) => actions.setConfig(node.id, (v ?? {}) as Record<string, unknown>, "config")} rows={8} />
          </div>
        )}
      </details>
      <ErrorHandling node={node} actions={actions} />
      <Connections node={node} info={info} edges={edges} nodeIds={nodeIds} actions={actions} />
      <details className="dl-section" open={!!run}>
        <summary>{t("lastRun")}</summary>
        {run ? <RunDetails run={run} /> : <p className="muted small">{t("notRunYet")}</p>}
      </details>
    </div>
  );
}

export const NodePanel = memo(NodePanelView);
