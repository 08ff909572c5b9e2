// The shapes the editor works with: the app DSL (danlu.app/v1), the builder API's answers,
// and the React Flow nodes and edges the canvas draws.
import type { Edge, Node } from "@xyflow/react";

export type Mode = "workflow" | "chat" | "agent";

export interface ErrorStrategy {
  on_error?: "fail" | "default" | "branch";
  default_outputs?: Record<string, unknown>;
  retry?: { max_attempts?: number; backoff_seconds?: number };
}

export interface DslNode {
  id: string;
  type: string;
  title?: string;
  config: Record<string, unknown>;
  errors?: ErrorStrategy;
  position?: { x: number; y: number } | null;
}

export interface DslEdge {
  source: string;
  target: string;
  handle?: string | null;
}

export interface AppMeta {
  name: string;
  mode: Mode;
  description?: string;
  icon?: string | null;
}

export interface VariableDecl {
  name: string;
  type?: string;
  default?: unknown;
}

export interface Dsl {
  schema: string;
  app: AppMeta;
  graph: { nodes: DslNode[]; edges: DslEdge[] };
  limits?: Record<string, number>;
  variables?: VariableDecl[];
}

/** Everything in the DSL except the graph: kept beside the canvas's nodes and edges. */
export type Meta = Omit<Dsl, "graph">;

export interface AppInfo {
  id: string;
  slug: string;
  name: string;
  mode: Mode;
  description?: string;
  published_version: number | null;
  model: string | null;
  draft: Dsl;
}

/** A (pydantic-generated) JSON schema, loosely typed: the form reads what it understands. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  pattern?: string;
  format?: string;
}

export interface NodeTypeInfo {
  type: string;
  branching: boolean;
  config_schema: JsonSchema | null;
  /** Null when the config has required fields without defaults. */
  default_config: Record<string, unknown> | null;
  doc?: string;
}

export interface CheckProblem {
  where: string;
  node: string | null;
  edge: { source: string; target: string; handle?: string | null } | null;
  message: string;
}

export interface CheckResult {
  ok: boolean;
  problems: CheckProblem[];
  outputs: Record<string, Record<string, string>>;
  upstream: Record<string, string[]>;
  system: Record<string, string>;
  conversation: Record<string, string>;
}

/** What a canvas node carries: the DSL node without its id and position. */
export type NodeData = {
  kind: string;
  title: string;
  config: Record<string, unknown>;
  errors?: ErrorStrategy;
};

export type FlowNode = Node<NodeData, "dl">;
export type FlowEdge = Edge;

export type NodeRunStatus = "running" | "succeeded" | "failed" | "skipped" | "error_branch" | "retrying";

export interface NodeRun {
  status: NodeRunStatus;
  type?: string;
  started?: number;
  elapsed_ms?: number;
  outputs?: Record<string, unknown>;
  error?: string;
  attempt?: number;
  /** Streamed LLM text while the node runs. */
  text?: string;
}

export interface RunEventData {
  event: string;
  node_id?: string;
  type?: string;
  status?: string;
  outputs?: Record<string, unknown>;
  elapsed_ms?: number;
  error?: string | null;
  attempt?: number;
  text?: string;
  run_id?: string;
  conversation_id?: string;
  usage?: Record<string, number>;
  index?: number;
}
