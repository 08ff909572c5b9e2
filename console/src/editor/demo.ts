// A large, valid workflow for performance checks: a start, chains of template and LLM nodes,
// and an end that reads the last node of each chain. Plain TypeScript with no imports, so
// browser tests (or `node --experimental-strip-types`) can import it directly.
//
//   import { demoWorkflow } from "./demo";
//   const dsl = demoWorkflow();            // 200 nodes: start + 198 + end
//   PUT /v1/apps/{slug} with JSON.stringify(dsl)  (or open /apps/{slug}/edit?demo=200)

export interface DemoOptions {
  /** Total number of nodes, start and end included (at least 3). */
  nodes?: number;
  /** How many parallel chains the middle nodes form. */
  chains?: number;
  /** Every n-th node of a chain is an LLM node (0: templates only, nothing calls a model). */
  llmEvery?: number;
  /** The model LLM nodes use. */
  model?: string;
}

export function demoWorkflow(options: DemoOptions | number = {}): {
  schema: string;
  app: { name: string; mode: "workflow"; description: string };
  graph: {
    nodes: { id: string; type: string; title: string; config: Record<string, unknown>; position: { x: number; y: number } }[];
    edges: { source: string; target: string }[];
  };
} {
  if (typeof options === "number") options = { nodes: options };
  const total = Math.max(3, Math.floor(options.nodes ?? 200));
  const middle = total - 2;
  const chains = Math.max(1, Math.min(middle, Math.floor(options.chains ?? 6)));
  const llmEvery = Math.max(0, Math.floor(options.llmEvery ?? 11));
  const model = options.model ?? "smollm2-135m-instruct";
  const spacingX = 300;
  const spacingY = 170;
  const perChain = Math.ceil(middle / chains);

  const nodes: {
    id: string;
    type: string;
    title: string;
    config: Record<string, unknown>;
    position: { x: number; y: number };
  }[] = [];
  const edges: { source: string; target: string }[] = [];
  const midY = ((chains - 1) * spacingY) / 2;
  nodes.push({
    id: "start",
    type: "start",
    title: "Start",
    config: { inputs: [{ name: "topic", type: "string", required: false, default: "danlu" }] },
    position: { x: 0, y: midY },
  });

  const lasts: string[] = [];
  let made = 0;
  for (let c = 0; c < chains && made < middle; c++) {
    let previous = "start";
    let previousOutput = "start.topic";
    for (let i = 0; i < perChain && made < middle; i++) {
      made++;
      const isLlm = llmEvery > 0 && (i + 1) % llmEvery === 0;
      const id = isLlm ? `llm_${c}_${i}` : `step_${c}_${i}`;
      const position = { x: spacingX * (i + 1), y: c * spacingY };
      if (isLlm) {
        nodes.push({
          id,
          type: "llm",
          title: `Model ${c + 1}.${i + 1}`,
          config: {
            model,
            prompt: [{ role: "user", text: `Say one word about {{ ${previousOutput} }}` }],
            max_tokens: 8,
            temperature: 0,
          },
          position,
        });
        previousOutput = `${id}.text`;
      } else {
        nodes.push({
          id,
          type: "template",
          title: `Step ${c + 1}.${i + 1}`,
          config: { template: `{{ ${previousOutput} }} ${c + 1}.${i + 1}` },
          position,
        });
        previousOutput = `${id}.output`;
      }
      edges.push({ source: previous, target: id });
      previous = id;
    }
    lasts.push(previousOutput);
    edges.push({ source: previous, target: "end" });
  }

  nodes.push({
    id: "end",
    type: "end",
    title: "End",
    config: { outputs: lasts.map((selector, i) => ({ name: `chain_${i + 1}`, value: `{{ ${selector} }}` })) },
    position: { x: spacingX * (perChain + 1), y: midY },
  });

  return {
    schema: "danlu.app/v1",
    app: { name: `Demo: ${total} nodes`, mode: "workflow", description: "A generated graph for checking the editor's speed." },
    graph: { nodes, edges },
  };
}

export default demoWorkflow;
