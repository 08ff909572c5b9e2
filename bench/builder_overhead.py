"""Builder engine overhead: danlu's app engine against graphon, the graph engine Dify runs.

What it measures
    The same two chains of trivial nodes, at 10 and at 50 nodes, on both engines:

    - **template chain**: start, then template nodes (Dify: ``template-transform``), each
      appending "." to the previous node's output, then end;
    - **llm chain**: start, then LLM nodes, each prompting an instantly answering mock model
      with the previous node's text (the model streams it back reversed, in two chunks, with
      usage), then end.

    A *run* here is from the app's config dict and the inputs to the outputs. For danlu that
    is ``parse_app`` + ``compile_app`` ("build") and ``run_to_end`` ("execute"); for graphon it
    is a variable pool, ``Graph.init`` with a node factory, a ``GraphEngine`` ("build") and
    draining ``engine.run()`` ("execute"). Per request, graphon builds every time (its nodes
    are bound to one run's state); danlu's app service keeps the compiled plan of each
    published version, so a request to a published app is "execute" only. The goal line
    compares those per-request costs; the table shows every part.

    For each engine and graph: the mean wall time per run over ``--runs`` sequential runs after
    ``--warmup`` untimed ones; the per-node overhead and the fixed part, estimated from the two
    sizes (per_node = (t50 - t10) / 40, fixed = t10 - 10 * per_node); and runs per second,
    sequential and with ``--concurrency`` runs in flight (danlu: tasks on one event loop;
    graphon: a thread pool, as its engine is synchronous and starts its own threads).

Fairness
    Both sides render templates with the same Jinja2 sandbox (graphon takes the renderer from
    its host; this host compiles the template on each render, while danlu's engine keeps
    compiled templates; Dify's real renderer calls a code sandbox over HTTP, far slower).
    Both mock models answer with the same chunks. Every run's answer is checked against the
    expected string on both sides.

graphon runs in its own virtual environment (its pins clash with danlu's: pydantic,
transformers, huggingface_hub, pandas), as a subprocess driven by ``GRAPHON_DRIVER`` below,
after danlu's side has finished, on the same machine. The environment is created on first use
(``pip install graphon==0.1.2``, about 1 GB) in the temporary directory; ``--graphon-python``
points at an existing interpreter instead.

The goal (from the builder issue): danlu's per-node overhead at least 10x below graphon's.

Run: ``python bench/builder_overhead.py [--runs 100] [--warmup 5] [--concurrency 8]
[--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import danlu
from danlu.builder.compiler import compile_app
from danlu.builder.dsl import parse_app
from danlu.builder.runtime import EngineServices, run_to_end
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest

GRAPHON_VERSION = "0.1.2"
DEFAULT_VENV = Path(tempfile.gettempdir()) / f"danlu-bench-graphon-{GRAPHON_VERSION}"
SIZES = (10, 50)  # nodes per graph, start and end included
SHAPES = ("template", "llm")
QUERY = "hello world"
GOAL = 10.0  # graphon per-node overhead / danlu per-node overhead

# --- the graphs ----------------------------------------------------------------------------


def expected_answer(shape: str, nodes: int) -> str:
    """What the end node must output: every template adds ".", every LLM reverses its input."""
    middle = nodes - 2
    if shape == "template":
        return QUERY + "." * middle
    return QUERY[::-1] if middle % 2 else QUERY


def danlu_spec(shape: str, nodes: int) -> dict[str, Any]:
    """A ``danlu.app/v1`` document: start, ``nodes - 2`` chained nodes, end."""
    graph: list[dict[str, Any]] = [
        {"id": "start", "type": "start", "config": {"inputs": [{"name": "query"}]}}
    ]
    previous = "start.query"
    for i in range(nodes - 2):
        node_id = f"n{i}"
        if shape == "template":
            config: dict[str, Any] = {"template": f"{{{{ {previous} }}}}."}
            output = "output"
        else:
            config = {
                "model": "instant",
                "prompt": [{"role": "user", "text": f"{{{{ {previous} }}}}"}],
            }
            output = "text"
        graph.append({"id": node_id, "type": shape, "config": config})
        previous = f"{node_id}.{output}"
    graph.append(
        {
            "id": "end",
            "type": "end",
            "config": {"outputs": [{"name": "answer", "value": f"{{{{ {previous} }}}}"}]},
        }
    )
    return {
        "schema": "danlu.app/v1",
        "app": {"name": f"{shape} chain of {nodes}", "mode": "workflow"},
        "graph": {"nodes": graph, "edges": _chain_edges([n["id"] for n in graph])},
    }


def dify_graph(shape: str, nodes: int) -> dict[str, Any]:
    """The same graph as a Dify graph config (``{"nodes": [{"id", "data"}], "edges"}``)."""
    graph: list[dict[str, Any]] = [
        {
            "id": "start",
            "data": {
                "type": "start",
                "title": "start",
                "variables": [
                    {"variable": "query", "label": "query", "type": "text-input", "required": True}
                ],
            },
        }
    ]
    previous = ["start", "query"]
    for i in range(nodes - 2):
        node_id = f"n{i}"
        if shape == "template":
            data: dict[str, Any] = {
                "type": "template-transform",
                "variables": [{"variable": "x", "value_selector": previous}],
                "template": "{{ x }}.",
            }
            output = "output"
        else:
            data = {
                "type": "llm",
                "model": {"provider": "bench", "name": "instant", "mode": "chat"},
                "prompt_template": [{"role": "user", "text": f"{{{{#{'.'.join(previous)}#}}}}"}],
                "context": {"enabled": False},
            }
            output = "text"
        graph.append({"id": node_id, "data": {"title": node_id, **data}})
        previous = [node_id, output]
    graph.append(
        {
            "id": "end",
            "data": {
                "type": "end",
                "title": "end",
                "outputs": [{"variable": "answer", "value_selector": previous}],
            },
        }
    )
    return {"nodes": graph, "edges": _chain_edges([n["id"] for n in graph])}


def _chain_edges(ids: Sequence[str]) -> list[dict[str, str]]:
    return [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]


# --- danlu's side --------------------------------------------------------------------------


class InstantModel(ChatModel):
    """Answers at once with the last user message reversed, in two chunks, then usage."""

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        text = request.messages[-1].text()[::-1]
        for part in (text[: len(text) // 2], text[len(text) // 2 :]):
            yield {"choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}
        yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield {
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }


class InstantProvider(Provider):
    type = "instant"
    Options = ProviderOptions

    async def load(self) -> Sequence[Model]:
        return [InstantModel("instant", owned_by="bench", provider=self.name)]


@dataclass
class Measurement:
    """One engine on one graph: per-run means in milliseconds, and throughput."""

    engine: str
    shape: str
    nodes: int
    runs: int
    build_ms: float  # config dict to a runnable plan / engine
    execute_ms: float  # running it to the end, every event collected
    total_ms: float
    median_total_ms: float
    sequential_rps: float
    concurrent_rps: float


async def _danlu_services(home: Path) -> EngineServices:
    settings = load_settings({"DANLU_HOME": str(home), "DANLU_EMBEDDED_MODELS": "0"})
    registry = ModelRegistry(
        {"instant": InstantProvider}, [ProviderConfig(name="bench", type="instant")], settings
    )
    await registry.start()
    return EngineServices(models=registry)


async def _danlu_run(
    services: EngineServices, spec: dict[str, Any], expected: str
) -> tuple[float, float]:
    """One run from the spec dict; (build, execute) seconds."""
    started = time.perf_counter()
    plan = compile_app(parse_app(spec))
    built = time.perf_counter()
    record, _ = await run_to_end(plan, services, {"query": QUERY})
    finished = time.perf_counter()
    if record.status != "succeeded" or record.outputs.get("answer") != expected:
        raise RuntimeError(f"danlu run went wrong: {record.status} {record.error} {record.outputs}")
    return built - started, finished - built


async def measure_danlu(
    shape: str, nodes: int, runs: int, warmup: int, concurrency: int, services: EngineServices
) -> Measurement:
    spec = danlu_spec(shape, nodes)
    expected = expected_answer(shape, nodes)
    for _ in range(warmup):
        await _danlu_run(services, spec, expected)
    timings = [await _danlu_run(services, spec, expected) for _ in range(runs)]

    gate = asyncio.Semaphore(concurrency)

    async def gated() -> None:
        async with gate:
            await _danlu_run(services, spec, expected)

    started = time.perf_counter()
    await asyncio.gather(*(gated() for _ in range(runs)))
    concurrent_seconds = time.perf_counter() - started
    return _summarise("danlu", shape, nodes, timings, runs / concurrent_seconds)


def _summarise(
    engine: str,
    shape: str,
    nodes: int,
    timings: Sequence[tuple[float, float]],
    concurrent_rps: float,
) -> Measurement:
    totals = [build + execute for build, execute in timings]
    return Measurement(
        engine=engine,
        shape=shape,
        nodes=nodes,
        runs=len(timings),
        build_ms=1000 * statistics.fmean(b for b, _ in timings),
        execute_ms=1000 * statistics.fmean(e for _, e in timings),
        total_ms=1000 * statistics.fmean(totals),
        median_total_ms=1000 * statistics.median(totals),
        sequential_rps=len(totals) / sum(totals),
        concurrent_rps=concurrent_rps,
    )


# --- graphon's side: a driver run by graphon's own interpreter ------------------------------

GRAPHON_DRIVER = r'''
"""Runs graphon on the graphs given as JSON on stdin; prints one JSON line of timings."""

import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from graphon.entities.graph_init_params import GraphInitParams
from graphon.graph.graph import Graph
from graphon.graph_engine.command_channels.in_memory_channel import InMemoryChannel
from graphon.graph_engine.graph_engine import GraphEngine
from graphon.graph_events.graph import GraphRunSucceededEvent
from graphon.model_runtime.entities.common_entities import I18nObject
from graphon.model_runtime.entities.llm_entities import (
    LLMResultChunk,
    LLMResultChunkDelta,
    LLMUsage,
)
from graphon.model_runtime.entities.message_entities import AssistantPromptMessage
from graphon.model_runtime.entities.model_entities import (
    AIModelEntity,
    FetchFrom,
    ModelPropertyKey,
    ModelType,
)
from graphon.nodes.end.end_node import EndNode
from graphon.nodes.llm.node import LLMNode
from graphon.nodes.start.start_node import StartNode
from graphon.nodes.template_transform.template_transform_node import TemplateTransformNode
from graphon.runtime.graph_runtime_state import GraphRuntimeState
from graphon.runtime.variable_pool import VariablePool
from graphon.template_rendering import Jinja2TemplateRenderer

# The same sandbox danlu renders with, compiled on every render as danlu does.
ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
SCHEMA = AIModelEntity(
    model="instant",
    label=I18nObject(en_US="instant"),
    model_type=ModelType.LLM,
    fetch_from=FetchFrom.CUSTOMIZABLE_MODEL,
    model_properties={ModelPropertyKey.MODE: "chat", ModelPropertyKey.CONTEXT_SIZE: 4096},
)
USAGE = LLMUsage.empty_usage().model_copy(
    update={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
)


class Renderer(Jinja2TemplateRenderer):
    def render_template(self, template, variables):
        return ENV.from_string(template).render(dict(variables))


class InstantLLM:
    """graphon's PreparedLLMProtocol: the last user message reversed, two chunks, usage."""

    provider = "bench"
    model_name = "instant"
    stop = None

    def __init__(self):
        self.parameters = {}

    def get_model_schema(self):
        return SCHEMA

    def get_llm_num_tokens(self, prompt_messages):
        return 3

    def is_structured_output_parse_error(self, error):
        return False

    def invoke_llm(self, *, prompt_messages, model_parameters, tools, stop, stream):
        text = str(prompt_messages[-1].content)[::-1]

        def chunks():
            for part in (text[: len(text) // 2], text[len(text) // 2 :]):
                message = AssistantPromptMessage(content=part)
                yield LLMResultChunk(
                    model="instant", delta=LLMResultChunkDelta(index=0, message=message)
                )
            yield LLMResultChunk(
                model="instant",
                delta=LLMResultChunkDelta(
                    index=0,
                    message=AssistantPromptMessage(content=""),
                    usage=USAGE,
                    finish_reason="stop",
                ),
            )

        return chunks()


class Serializer:
    def serialize(self, *, model_mode, prompt_messages):
        return [message.model_dump(mode="json") for message in prompt_messages]


class NodeFactory:
    """graphon's NodeFactory protocol: Dify-style node configs to node instances."""

    renderer = Renderer()

    def __init__(self, params, state):
        self.params = params
        self.state = state

    def create_node(self, config):
        kind = config["data"]["type"]
        common = dict(
            id=config["id"],
            config=config,
            graph_init_params=self.params,
            graph_runtime_state=self.state,
        )
        if kind == "start":
            return StartNode(**common)
        if kind == "end":
            return EndNode(**common)
        if kind == "template-transform":
            return TemplateTransformNode(**common, jinja2_template_renderer=self.renderer)
        if kind == "llm":
            return LLMNode(
                **common,
                model_instance=InstantLLM(),
                http_client=None,
                llm_file_saver=None,
                prompt_message_serializer=Serializer(),
            )
        raise ValueError(f"no node type {kind!r} in this bench")


def one_run(graph_config, query, expected):
    """One run from the config dict; (build, execute) seconds."""
    started = time.perf_counter()
    pool = VariablePool()
    pool.add(["start", "query"], query)
    state = GraphRuntimeState(variable_pool=pool, start_at=started)
    params = GraphInitParams(
        workflow_id="bench", graph_config=graph_config, run_context={}, call_depth=0
    )
    graph = Graph.init(
        graph_config=graph_config,
        node_factory=NodeFactory(params, state),
        root_node_id="start",
    )
    engine = GraphEngine(
        workflow_id="bench",
        graph=graph,
        graph_runtime_state=state,
        command_channel=InMemoryChannel(),
    )
    built = time.perf_counter()
    events = list(engine.run())
    finished = time.perf_counter()
    last = events[-1]
    if not isinstance(last, GraphRunSucceededEvent) or last.outputs.get("answer") != expected:
        raise RuntimeError(f"graphon run went wrong: {last!r}")
    return built - started, finished - built


def measure(job, graph):
    args = (graph["config"], job["query"], graph["expected"])
    for _ in range(job["warmup"]):
        one_run(*args)
    timings = [one_run(*args) for _ in range(job["runs"])]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=job["concurrency"]) as pool:
        for future in [pool.submit(one_run, *args) for _ in range(job["runs"])]:
            future.result()
    concurrent_seconds = time.perf_counter() - started
    return {"shape": graph["shape"], "nodes": graph["nodes"], "timings": timings,
            "concurrent_rps": job["runs"] / concurrent_seconds}


def main():
    job = json.load(sys.stdin)
    results = []
    for graph in job["graphs"]:
        results.append(measure(job, graph))
        print(f"  graphon {graph['shape']} x{graph['nodes']} done", file=sys.stderr, flush=True)
    print(json.dumps(results))


main()
'''


def graphon_python(venv: Path) -> Path:
    """An interpreter with graphon==GRAPHON_VERSION; creates the environment on first use."""
    python = venv / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import importlib.metadata as m; print(m.version('graphon'))",
    ]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == GRAPHON_VERSION:
            return python
    print(
        f"creating {venv} with graphon=={GRAPHON_VERSION} (once; about 1 GB, a few minutes): "
        "its dependency pins clash with danlu's, so it gets an environment of its own",
        file=sys.stderr,
        flush=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"graphon=={GRAPHON_VERSION}"],
        check=True,
    )
    subprocess.run(check, check=True, capture_output=True)
    return python


def measure_graphon(python: Path, runs: int, warmup: int, concurrency: int) -> list[Measurement]:
    job = {
        "runs": runs,
        "warmup": warmup,
        "concurrency": concurrency,
        "query": QUERY,
        "graphs": [
            {
                "shape": shape,
                "nodes": nodes,
                "config": dify_graph(shape, nodes),
                "expected": expected_answer(shape, nodes),
            }
            for shape in SHAPES
            for nodes in SIZES
        ],
    }
    with tempfile.NamedTemporaryFile("w", suffix="_graphon_driver.py", delete=False) as driver:
        driver.write(GRAPHON_DRIVER)
    try:
        done = subprocess.run(
            [str(python), driver.name],
            input=json.dumps(job),
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
    finally:
        os.unlink(driver.name)
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        _summarise("graphon", r["shape"], r["nodes"], r["timings"], r["concurrent_rps"])
        for r in results
    ]


# --- the report ----------------------------------------------------------------------------


@dataclass
class Fit:
    """Per-node and fixed parts of a run, from the two graph sizes."""

    per_node_ms: float
    fixed_ms: float


def fit(small: float, large: float) -> Fit:
    low, high = SIZES
    per_node = (large - small) / (high - low)
    return Fit(per_node, small - low * per_node)


def ratio(graphon: float, danlu_value: float) -> str:
    """graphon/danlu, or a dash where danlu's figure is not positive (a fixed part of ~0)."""
    if danlu_value <= 0:
        return "—"
    value = graphon / danlu_value
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def shape_table(
    shape: str, results: dict[tuple[str, str, int], Measurement], concurrency: int
) -> tuple[list[str], float]:
    """A markdown table for one shape (both engines, graphon/danlu); and the per-node ratio."""
    low, high = SIZES
    d = {n: results["danlu", shape, n] for n in SIZES}
    g = {n: results["graphon", shape, n] for n in SIZES}
    # label, danlu, graphon, whether graphon/danlu means anything (not for a fixed part of ~0)
    rows: list[tuple[str, float, float, bool]] = []
    for n in SIZES:
        rows += [
            (f"{n} nodes: build (ms)", d[n].build_ms, g[n].build_ms, True),
            (f"{n} nodes: execute (ms)", d[n].execute_ms, g[n].execute_ms, True),
            (f"{n} nodes: run = build + execute (ms)", d[n].total_ms, g[n].total_ms, True),
        ]
    d_fit, g_fit = fit(d[low].total_ms, d[high].total_ms), fit(g[low].total_ms, g[high].total_ms)
    d_exec = fit(d[low].execute_ms, d[high].execute_ms)
    g_exec = fit(g[low].execute_ms, g[high].execute_ms)
    rows += [
        ("**per-node overhead (ms)**", d_fit.per_node_ms, g_fit.per_node_ms, True),
        ("fixed part per run (ms)", d_fit.fixed_ms, g_fit.fixed_ms, False),
        ("per-node, execute only (ms)", d_exec.per_node_ms, g_exec.per_node_ms, True),
        ("fixed part, execute only (ms)", d_exec.fixed_ms, g_exec.fixed_ms, False),
    ]
    rows += [
        (f"{n} nodes: runs/s sequential", d[n].sequential_rps, g[n].sequential_rps, True)
        for n in SIZES
    ]
    rows += [
        (
            f"{n} nodes: runs/s, {concurrency} in flight",
            d[n].concurrent_rps,
            g[n].concurrent_rps,
            True,
        )
        for n in SIZES
    ]
    lines = ["| metric | danlu | graphon | graphon/danlu |", "|---|---:|---:|---:|"]
    for label, danlu_value, graphon_value, comparable in rows:
        shown = ratio(graphon_value, danlu_value) if comparable else "—"
        lines.append(f"| {label} | {_num(danlu_value)} | {_num(graphon_value)} | {shown} |")
    # Per request each product does different work: danlu serves a published app from a
    # compiled plan it keeps per version (execute only), graphon builds its graph every run.
    per_node_ratio = (
        g_fit.per_node_ms / d_exec.per_node_ms if d_exec.per_node_ms > 0 else float("inf")
    )
    return lines, per_node_ratio


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def machine_info(graphon: Path) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "danlu": danlu.__version__,
        "graphon": GRAPHON_VERSION,
        "graphon_python": str(graphon),
        "load_average_1m": os.getloadavg()[0],
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


async def measure_danlu_all(runs: int, warmup: int, concurrency: int) -> list[Measurement]:
    with tempfile.TemporaryDirectory(prefix="danlu-bench-") as home:
        services = await _danlu_services(Path(home))
        measured = []
        for shape in SHAPES:
            for nodes in SIZES:
                measured.append(
                    await measure_danlu(shape, nodes, runs, warmup, concurrency, services)
                )
                print(f"  danlu {shape} x{nodes} done", file=sys.stderr, flush=True)
        await services.models.aclose()
        return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="timed runs per engine and graph")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    parser.add_argument("--concurrency", type=int, default=8, help="runs in flight")
    parser.add_argument("--graphon-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument(
        "--graphon-python", type=Path, help="an interpreter that has graphon (skips the venv)"
    )
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    python = args.graphon_python or graphon_python(args.graphon_venv)
    machine = machine_info(python)
    print(
        f"danlu side ({args.runs} runs per graph after {args.warmup} warm-up)...", file=sys.stderr
    )
    measured = asyncio.run(measure_danlu_all(args.runs, args.warmup, args.concurrency))
    print("graphon side (a subprocess, after danlu's side)...", file=sys.stderr)
    measured += measure_graphon(python, args.runs, args.warmup, args.concurrency)
    results = {(m.engine, m.shape, m.nodes): m for m in measured}

    print(
        f"\nBuilder engine overhead: danlu {machine['danlu']} vs graphon {GRAPHON_VERSION}; "
        f"{args.runs} runs per engine and graph after {args.warmup} warm-up; "
        f"{machine['date']}\n{machine['cpu']}, {machine['cores']} cores, "
        f"Python {machine['python']}, load average {machine['load_average_1m']:.2f} at start"
    )
    verdicts = {}
    for shape in SHAPES:
        lines, per_node_ratio = shape_table(shape, results, args.concurrency)
        verdicts[shape] = per_node_ratio
        print(f"\n{shape} chain: start, {SIZES[0] - 2} or {SIZES[1] - 2} {shape} nodes, end\n")
        print("\n".join(lines))
    print()
    for shape, per_node_ratio in verdicts.items():
        met = "met" if per_node_ratio >= GOAL else "NOT met"
        print(
            f"goal graphon/danlu per-node overhead per request >= {GOAL:g} (graphon build + "
            f"execute vs danlu execute from its cached plan): {shape} chain "
            f"{per_node_ratio:.2f} -> {met}"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "measurements": [asdict(m) for m in measured],
                    "per_node_ratio": verdicts,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
