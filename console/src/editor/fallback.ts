// The built-in node types, used only when GET /v1/builder/node-types cannot be reached: the
// palette still works, and configs are edited as JSON (there is no schema to build a form from).
import type { NodeTypeInfo } from "./types";

const MODEL = "smollm2-135m-instruct";

const DEFAULTS: [string, boolean, Record<string, unknown>][] = [
  ["start", false, { inputs: [] }],
  ["end", false, { outputs: [] }],
  ["answer", false, { text: "" }],
  ["llm", false, { model: MODEL, prompt: [{ role: "user", text: "{{ sys.query }}" }] }],
  ["template", false, { template: "" }],
  ["if_else", true, { cases: [{ id: "case1", logic: "and", conditions: [{ selector: "sys.query", operator: "contains", value: "" }] }] }],
  ["variable_aggregator", false, { selectors: [] }],
  ["question_classifier", true, { model: MODEL, query: "sys.query", classes: [{ id: "class1", description: "" }, { id: "class2", description: "" }] }],
  ["parameter_extractor", false, { model: MODEL, query: "sys.query", parameters: [{ name: "param1", type: "string" }] }],
  ["knowledge_retrieval", false, { knowledge_bases: [], query: "sys.query" }],
  ["http_request", false, { method: "GET", url: "https://" }],
  ["code", false, { code: "def main(**inputs):\n    return {}\n", inputs: [], outputs: {} }],
  ["tool", false, { tool: "current_time", arguments: {} }],
  ["agent", false, { model: MODEL, query: "sys.query", tools: ["current_time", "calculator"] }],
  ["assigner", false, { assignments: [{ variable: "name", operation: "set", value: "" }] }],
  ["iteration", false, { items: "", graph: { nodes: [{ id: "start", type: "start" }], edges: [] }, output: "" }],
  ["loop", false, { graph: { nodes: [{ id: "start", type: "start" }], edges: [] }, until: [] }],
];

export const FALLBACK_TYPES: NodeTypeInfo[] = DEFAULTS.map(([type, branching, default_config]) => ({
  type,
  branching,
  config_schema: null,
  default_config,
}));
