// Pure helpers over the graph: DSL <-> canvas, ids, handles, upstream variables, layout.
import dagre from "@dagrejs/dagre";
import type { DslEdge, DslNode, Dsl, ErrorStrategy, FlowEdge, FlowNode, Meta, NodeData, NodeTypeInfo } from "./types";

export const DEFAULT_NODE_WIDTH = 240;
export const DEFAULT_NODE_HEIGHT = 84;
export const ERROR_HANDLE = "error";
const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const RESERVED = new Set(["sys", "conv"]);

export function isIdentifier(value: string): boolean {
  return IDENT.test(value) && !RESERVED.has(value);
}

export function edgeKey(source: string, target: string, handle: string | null | undefined): string {
  return `${source}->${target}:${handle ?? ""}`;
}

/** An error strategy, or undefined when it is just the defaults (fail, no retries). */
export function normalizeErrors(errors: ErrorStrategy | undefined): ErrorStrategy | undefined {
  if (!errors) return undefined;
  const onError = errors.on_error ?? "fail";
  const attempts = errors.retry?.max_attempts ?? 1;
  const backoff = errors.retry?.backoff_seconds ?? 0.5;
  const defaults = errors.default_outputs ?? {};
  if (onError === "fail" && attempts === 1 && backoff === 0.5 && !Object.keys(defaults).length) return undefined;
  return errors;
}

export function toFlowNode(node: DslNode): FlowNode {
  const data: NodeData = { kind: node.type, title: node.title ?? "", config: node.config ?? {} };
  const errors = normalizeErrors(node.errors);
  if (errors) data.errors = errors;
  return {
    id: node.id,
    type: "dl",
    position: node.position ? { x: node.position.x, y: node.position.y } : { x: 0, y: 0 },
    data,
    // Known before the node is measured: fitting the view and culling off-screen nodes need it.
    initialWidth: DEFAULT_NODE_WIDTH,
    initialHeight: DEFAULT_NODE_HEIGHT,
    ariaLabel: `${node.title || node.id} (${node.type})`,
  };
}

export function toFlowEdge(edge: DslEdge, taken?: Set<string>): FlowEdge {
  let id = edgeKey(edge.source, edge.target, edge.handle);
  if (taken) {
    // A duplicate edge (the compiler names it) still needs its own canvas id.
    let n = 2;
    const base = id;
    while (taken.has(id)) id = `${base}#${n++}`;
    taken.add(id);
  }
  return { id, source: edge.source, target: edge.target, sourceHandle: edge.handle ?? null };
}

export function fromFlow(nodes: FlowNode[], edges: FlowEdge[], meta: Meta): Dsl {
  return {
    ...meta,
    graph: {
      nodes: nodes.map(toDslNode),
      edges: edges.map(toDslEdge),
    },
  };
}

export function toDslNode(node: FlowNode): DslNode {
  const out: DslNode = { id: node.id, type: node.data.kind, config: node.data.config };
  if (node.data.title) out.title = node.data.title;
  if (node.data.errors) out.errors = node.data.errors;
  out.position = { x: Math.round(node.position.x), y: Math.round(node.position.y) };
  return out;
}

export function toDslEdge(edge: FlowEdge): DslEdge {
  const out: DslEdge = { source: edge.source, target: edge.target };
  if (edge.sourceHandle) out.handle = edge.sourceHandle;
  return out;
}

/** The canvas's nodes and edges for a DSL document; nodes without a position are laid out. */
export function loadGraph(dsl: Dsl): { nodes: FlowNode[]; edges: FlowEdge[] } {
  const taken = new Set<string>();
  let nodes = (dsl.graph?.nodes ?? []).map(toFlowNode);
  const edges = (dsl.graph?.edges ?? []).map((e) => toFlowEdge(e, taken));
  const missing = new Set((dsl.graph?.nodes ?? []).filter((n) => !n.position).map((n) => n.id));
  if (missing.size) {
    const laid = layout(nodes, edges);
    nodes = nodes.map((n, i) => (missing.has(n.id) ? laid[i] : n));
  }
  return { nodes, edges };
}

/** A new id for a node of `type`: the type and the lowest free number (llm1, llm2, …). */
export function nextId(type: string, used: Set<string>): string {
  const base = /^[A-Za-z_]/.test(type) ? type.replace(/[^A-Za-z0-9_]/g, "_").slice(0, 56) : `n_${type}`;
  for (let n = 1; ; n++) {
    const id = `${base}${n}`;
    if (!used.has(id)) return id;
  }
}

export interface HandleSpec {
  id: string | null;
  label: string | null;
}

function idsOf(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list
    .map((item) => (item && typeof item === "object" ? (item as Record<string, unknown>).id : null))
    .filter((id): id is string => typeof id === "string" && id !== "");
}

/** The handles a node leaves through: one unnamed, or its branches; plus "error" when it branches on failure. */
export function sourceHandles(data: NodeData, info: NodeTypeInfo | undefined): HandleSpec[] {
  const handles: HandleSpec[] = [];
  if (data.kind === "if_else") {
    for (const id of idsOf(data.config.cases)) handles.push({ id, label: id });
    handles.push({ id: "false", label: "false" });
  } else if (data.kind === "question_classifier") {
    for (const id of idsOf(data.config.classes)) handles.push({ id, label: id });
  } else if (data.kind === "end") {
    // A workflow's end has no way out.
  } else if (info?.branching) {
    // A branching plugin type: its handles are not known here, so offer its config's ids.
    for (const id of idsOf(data.config.cases ?? data.config.classes ?? data.config.branches))
      handles.push({ id, label: id });
    if (!handles.length) handles.push({ id: null, label: null });
  } else {
    handles.push({ id: null, label: null });
  }
  if (data.errors?.on_error === "branch") handles.push({ id: ERROR_HANDLE, label: ERROR_HANDLE });
  return handles;
}

export function hasInput(kind: string): boolean {
  return kind !== "start";
}

/** Every node upstream of `id` (its ancestors along the edges). */
export function ancestors(id: string, edges: { source: string; target: string }[]): string[] {
  const incoming = new Map<string, string[]>();
  for (const e of edges) {
    const list = incoming.get(e.target);
    if (list) list.push(e.source);
    else incoming.set(e.target, [e.source]);
  }
  const seen = new Set<string>();
  const frontier = [id];
  while (frontier.length) {
    for (const source of incoming.get(frontier.pop()!) ?? []) {
      if (!seen.has(source) && source !== id) {
        seen.add(source);
        frontier.push(source);
      }
    }
  }
  return [...seen];
}

const SIMPLE_OUTPUTS: Record<string, Record<string, string>> = {
  answer: { text: "string" },
  template: { output: "string" },
  if_else: { case: "string" },
  http_request: { status_code: "integer", body: "string", json: "any", headers: "object" },
  question_classifier: { class: "string" },
  knowledge_retrieval: { passages: "array", context: "string" },
  iteration: { results: "array", count: "integer" },
  tool: { result: "any" },
  agent: { text: "string", steps: "array", iterations: "integer" },
};

function namesOf(list: unknown, typeKey = "type"): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    if (item && typeof item === "object") {
      const record = item as Record<string, unknown>;
      if (typeof record.name === "string" && record.name)
        out[record.name] = typeof record[typeKey] === "string" ? (record[typeKey] as string) : "any";
    }
  }
  return out;
}

/** A node's outputs as the editor can tell them without the server (the check's answer wins). */
export function localOutputs(data: NodeData): Record<string, string> {
  const config = data.config;
  let outputs: Record<string, string>;
  switch (data.kind) {
    case "start":
      outputs = namesOf(config.inputs);
      break;
    case "end":
      outputs = Object.fromEntries(Object.keys(namesOf(config.outputs)).map((n) => [n, "any"]));
      break;
    case "llm":
      outputs = { text: "string", finish_reason: "string" };
      if (config.output_schema) outputs.structured = "object";
      break;
    case "variable_aggregator":
      outputs = { output: typeof config.type === "string" ? config.type : "any" };
      break;
    case "code":
      outputs =
        config.outputs && typeof config.outputs === "object" && !Array.isArray(config.outputs)
          ? Object.fromEntries(Object.entries(config.outputs as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
          : {};
      break;
    case "parameter_extractor":
      outputs = namesOf(config.parameters);
      break;
    case "loop": {
      outputs = { rounds: "integer" };
      const state = config.state;
      if (state && typeof state === "object") for (const name of Object.keys(state)) outputs[name] = "any";
      break;
    }
    default:
      outputs = { ...(SIMPLE_OUTPUTS[data.kind] ?? {}) };
  }
  if (data.errors?.on_error === "branch") outputs.error = "string";
  return outputs;
}

export const SYSTEM_VARIABLES: Record<string, string> = {
  query: "string",
  user: "string",
  conversation_id: "string",
  run_id: "string",
  app_id: "string",
  timestamp: "integer",
  files: "array",
  history: "array",
};

/** Lay the graph out left to right with dagre; the nodes with their new positions. */
export function layout(nodes: FlowNode[], edges: FlowEdge[]): FlowNode[] {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 90, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const size = (n: FlowNode) => ({
    width: n.measured?.width ?? DEFAULT_NODE_WIDTH,
    height: n.measured?.height ?? DEFAULT_NODE_HEIGHT,
  });
  for (const n of nodes) g.setNode(n.id, size(n));
  const ids = new Set(nodes.map((n) => n.id));
  for (const e of edges) if (ids.has(e.source) && ids.has(e.target) && e.source !== e.target) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return nodes.map((n) => {
    const placed = g.node(n.id) as { x: number; y: number } | undefined;
    if (!placed) return n;
    const { width, height } = size(n);
    return { ...n, position: { x: Math.round(placed.x - width / 2), y: Math.round(placed.y - height / 2) } };
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Rewrite references `old.output` to `new.output` in every string of a config. */
export function renameReferences(value: unknown, renames: Map<string, string>): unknown {
  if (!renames.size) return value;
  const pattern = new RegExp(
    `(^|[^A-Za-z0-9_.])(${[...renames.keys()].map(escapeRegExp).join("|")})(?=\\.[A-Za-z_])`,
    "g",
  );
  const visit = (v: unknown): unknown => {
    if (typeof v === "string") return v.replace(pattern, (_m, pre: string, id: string) => pre + (renames.get(id) ?? id));
    if (Array.isArray(v)) return v.map(visit);
    if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, visit(x)]));
    return v;
  };
  return visit(value);
}

/** Deep structural copy for plain JSON values. */
export function clone<V>(value: V): V {
  return value === undefined ? value : (JSON.parse(JSON.stringify(value)) as V);
}
