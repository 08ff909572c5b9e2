"""The builder engine: DSL, compiler and runtime, with models served by a real gateway registry."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from danlu.builder.compiler import CompileError, compile_app
from danlu.builder.dsl import parse_app
from danlu.builder.runtime import EngineServices, run_app, run_to_end
from danlu.core.errors import InvalidRequest
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest


class InstantModel(ChatModel):
    """Answers at once with the last user message, reversed (an upstream stand-in)."""

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        text = request.messages[-1].text()[::-1]
        if request.response_format:
            text = '{"name": "tea", "price": 3}'
        if "SLOW" in text[::-1]:
            await asyncio.sleep(0.5)
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
        return [InstantModel("instant", owned_by="tests", provider=self.name)]


@pytest.fixture
def services(tmp_path: Path) -> EngineServices:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    registry = ModelRegistry(
        {"instant": InstantProvider}, [ProviderConfig(name="i", type="instant")], settings
    )
    asyncio.run(registry.start())
    return EngineServices(models=registry)


def app(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | tuple[str, str, str]], **extra: Any
) -> dict[str, Any]:
    return {
        "schema": "danlu.app/v1",
        "app": {"name": "test", "mode": "workflow"},
        "graph": {
            "nodes": copy.deepcopy(nodes),
            "edges": [
                {"source": e[0], "target": e[1], **({"handle": e[2]} if len(e) > 2 else {})}
                for e in edges
            ],
        },
        **extra,
    }


START = {
    "id": "start",
    "type": "start",
    "config": {
        "inputs": [
            {"name": "query", "type": "string"},
            {"name": "count", "type": "integer", "required": False, "default": 1},
        ]
    },
}


def end(**outputs: str) -> dict[str, Any]:
    return {
        "id": "end",
        "type": "end",
        "config": {"outputs": [{"name": k, "value": v} for k, v in outputs.items()]},
    }


def run(services: EngineServices, spec: dict[str, Any], inputs: dict[str, Any]) -> Any:
    return asyncio.run(run_to_end(compile_app(parse_app(spec)), services, inputs))


def test_linear_workflow_with_llm_and_template(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "llm",
                "type": "llm",
                "config": {
                    "model": "instant",
                    "prompt": [{"role": "user", "text": "{{ start.query }}"}],
                },
            },
            {"id": "fmt", "type": "template", "config": {"template": "<{{ llm.text | upper }}>"}},
            end(answer="{{ fmt.output }}"),
        ],
        [("start", "llm"), ("llm", "fmt"), ("fmt", "end")],
    )
    record, events = run(services, spec, {"query": "abc"})
    assert record.status == "succeeded", record.error
    assert record.outputs == {"answer": "<CBA>"}
    kinds = [e.event for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert [e.data["text"] for e in events if e.event == "text_chunk"] == ["c", "ba"]
    assert record.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert all(n["elapsed_ms"] >= 0 for n in record.nodes)


def test_if_else_branches_and_aggregator(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "check",
                "type": "if_else",
                "config": {
                    "cases": [
                        {
                            "id": "many",
                            "conditions": [
                                {"selector": "start.count", "operator": "gt", "value": 2}
                            ],
                        }
                    ]
                },
            },
            {"id": "a", "type": "template", "config": {"template": "many {{ start.count }}"}},
            {"id": "b", "type": "template", "config": {"template": "few"}},
            {
                "id": "join",
                "type": "variable_aggregator",
                "config": {"selectors": ["a.output", "b.output"]},
            },
            end(result="{{ join.output }}"),
        ],
        [
            ("start", "check"),
            ("check", "a", "many"),
            ("check", "b", "false"),
            ("a", "join"),
            ("b", "join"),
            ("join", "end"),
        ],
    )
    assert run(services, spec, {"query": "x", "count": 5})[0].outputs == {"result": "many 5"}
    record, events = run(services, spec, {"query": "x"})
    assert record.outputs == {"result": "few"}
    assert {e.data["node_id"] for e in events if e.event == "node_skipped"} == {"a"}


def test_parallel_branches_overlap(services: EngineServices) -> None:
    llm = {
        "type": "llm",
        "config": {
            "model": "instant",
            "prompt": [{"role": "user", "text": "SLOW {{ start.query }}"}],
        },
    }
    spec = app(
        [
            START,
            {"id": "left", **llm},
            {"id": "right", **llm},
            end(both="{{ left.text }}|{{ right.text }}"),
        ],
        [("start", "left"), ("start", "right"), ("left", "end"), ("right", "end")],
    )
    record, _ = run(services, spec, {"query": "q"})
    assert record.status == "succeeded"
    # Two 0.5 s calls side by side, not one after the other.
    assert record.elapsed_ms < 900, record.elapsed_ms


def test_structured_output(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "extract",
                "type": "llm",
                "config": {
                    "model": "instant",
                    "prompt": [{"role": "user", "text": "{{ start.query }}"}],
                    "output_schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
            end(name="{{ extract.structured.name }}"),
        ],
        [("start", "extract"), ("extract", "end")],
    )
    assert run(services, spec, {"query": "tea please"})[0].outputs == {"name": "tea"}


def test_error_strategies(services: EngineServices) -> None:
    failing = {
        "id": "bad",
        "type": "llm",
        "config": {"model": "no-such-model", "prompt": [{"role": "user", "text": "x"}]},
    }
    spec = app([START, failing, end(out="{{ bad.text }}")], [("start", "bad"), ("bad", "end")])
    record, _ = run(services, spec, {"query": "x"})
    assert (
        record.status == "failed"
        and "bad" in (record.error or "")
        and "no-such-model" in (record.error or "")
    )

    defaulted = dict(
        failing,
        errors={
            "on_error": "default",
            "default_outputs": {"text": "fallback"},
            "retry": {"max_attempts": 2, "backoff_seconds": 0},
        },
    )
    spec = app([START, defaulted, end(out="{{ bad.text }}")], [("start", "bad"), ("bad", "end")])
    record, events = run(services, spec, {"query": "x"})
    assert record.outputs == {"out": "fallback"}
    assert [e.event for e in events].count("node_retry") == 1

    branched = dict(failing, errors={"on_error": "branch"})
    spec = app(
        [
            START,
            branched,
            {"id": "ok", "type": "template", "config": {"template": "fine"}},
            {"id": "oops", "type": "template", "config": {"template": "caught: {{ bad.error }}"}},
            {
                "id": "join",
                "type": "variable_aggregator",
                "config": {"selectors": ["ok.output", "oops.output"]},
            },
            end(out="{{ join.output }}"),
        ],
        [
            ("start", "bad"),
            ("bad", "ok"),
            ("bad", "oops", "error"),
            ("ok", "join"),
            ("oops", "join"),
            ("join", "end"),
        ],
    )
    record, _ = run(services, spec, {"query": "x"})
    assert record.outputs["out"].startswith("caught:") and "no-such-model" in record.outputs["out"]


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (
            lambda s: s["graph"]["nodes"].append({"id": "x", "type": "teleport"}),
            "unknown node type",
        ),
        (lambda s: s["graph"]["edges"].append({"source": "start", "target": "ghost"}), "dangling"),
        (
            lambda s: s["graph"]["edges"].append({"source": "start", "target": "end"}),
            "duplicate edge",
        ),
        (
            lambda s: s["graph"]["edges"].append({"source": "end", "target": "start"}),
            "start node cannot",
        ),
        (
            lambda s: s["graph"]["nodes"].append(
                {"id": "lonely", "type": "template", "config": {"template": "hi"}}
            ),
            "unreachable",
        ),
        (
            lambda s: s["graph"]["nodes"][1]["config"]["outputs"].append(
                {"name": "y", "value": "{{ start.nope }}"}
            ),
            "start has no output 'nope'",
        ),
        (
            lambda s: s["graph"]["nodes"][1]["config"]["outputs"].append(
                {"name": "y", "value": "{{ sys.weather }}"}
            ),
            "no such system variable",
        ),
        (
            lambda s: s["graph"]["nodes"][1]["config"]["outputs"].append(
                {"name": "y", "value": "{{ start.query"}
            ),
            "template error",
        ),
        (
            lambda s: s["graph"]["nodes"].append({"id": "start2", "type": "start"}),
            "exactly one start",
        ),
        (lambda s: s["graph"]["nodes"][0]["config"].update(inputs="nope"), "config inputs"),
    ],
)
def test_compile_errors_name_the_culprit(mutate: Any, says: str) -> None:
    spec = app([START, end(out="{{ start.query }}")], [("start", "end")])
    mutate(spec)
    with pytest.raises(CompileError) as error:
        compile_app(parse_app(spec))
    assert says in error.value.message, error.value.message


def test_cycles_and_downstream_references_are_refused() -> None:
    nodes = [
        START,
        {"id": "a", "type": "template", "config": {"template": "{{ b.output }}"}},
        {"id": "b", "type": "template", "config": {"template": "x"}},
        end(out="{{ a.output }}"),
    ]
    with pytest.raises(CompileError, match="cycle"):
        compile_app(parse_app(app(nodes, [("start", "a"), ("a", "b"), ("b", "a"), ("a", "end")])))
    with pytest.raises(CompileError, match="not upstream"):
        compile_app(
            parse_app(app(nodes, [("start", "a"), ("start", "b"), ("a", "end"), ("b", "end")]))
        )


def test_type_mismatch_is_a_compile_error() -> None:
    spec = app(
        [
            START,
            {
                "id": "check",
                "type": "if_else",
                "config": {
                    "cases": [
                        {
                            "id": "big",
                            "conditions": [
                                {"selector": "start.query", "operator": "gt", "value": 3}
                            ],
                        }
                    ]
                },
            },
            end(out="x"),
        ],
        [("start", "check"), ("check", "end", "big"), ("check", "end", "false")],
    )
    with pytest.raises(CompileError, match=r"start\.query is a string, but check needs a number"):
        compile_app(parse_app(spec))


def test_inputs_are_checked_before_running(services: EngineServices) -> None:
    plan = compile_app(parse_app(app([START, end(out="{{ start.query }}")], [("start", "end")])))

    async def first(inputs: dict[str, Any]) -> Any:
        return await anext(run_app(plan, services, inputs))

    with pytest.raises(InvalidRequest, match="'query' is required"):
        asyncio.run(first({}))
    with pytest.raises(InvalidRequest, match="must be a integer"):
        asyncio.run(first({"query": "x", "count": "3"}))
    with pytest.raises(InvalidRequest, match="unknown input"):
        asyncio.run(first({"query": "x", "extra": 1}))


def test_limits_stop_runs(services: EngineServices) -> None:
    slow = {
        "id": "slow",
        "type": "llm",
        "config": {"model": "instant", "prompt": [{"role": "user", "text": "SLOW"}]},
    }
    spec = app(
        [START, slow, end(out="{{ slow.text }}")],
        [("start", "slow"), ("slow", "end")],
        limits={"wall_seconds": 0.1},
    )
    record, _ = run(services, spec, {"query": "x"})
    assert record.status == "failed" and "longer than 0.1" in (record.error or "")
    big = app(
        [START, end(out="{{ start.query * 1000 }}")],
        [("start", "end")],
        limits={"max_output_bytes": 100},
    )
    record, _ = run(services, big, {"query": "x"})
    assert record.status == "failed" and "limit" in (record.error or "")


def test_templates_are_sandboxed(services: EngineServices) -> None:
    spec = app([START, end(out="{{ start.query.__class__.__mro__ }}")], [("start", "end")])
    record, _ = run(services, spec, {"query": "x"})
    assert record.status == "failed" and "sandbox" in (record.error or "")


def test_dsl_round_trip_and_versions() -> None:
    spec = app(
        [
            START,
            {
                "id": "llm",
                "type": "llm",
                "config": {
                    "model": "instant",
                    "api_key": "sk-secret",
                    "prompt": [{"role": "user", "text": "hi"}],
                },
            },
            end(out="{{ llm.text }}"),
        ],
        [("start", "llm"), ("llm", "end")],
    )
    parsed = parse_app(spec)
    exported = parsed.to_yaml()
    assert "sk-secret" not in exported and "api_key" not in exported
    again = parse_app(exported)
    assert again.graph.nodes[1].config["prompt"] == [{"role": "user", "text": "hi"}]
    with pytest.raises(InvalidRequest, match="newer than this server"):
        parse_app(dict(spec, schema="danlu.app/v2"))
    with pytest.raises(InvalidRequest, match="schema"):
        parse_app(dict(spec, schema="dify/v1"))
    with pytest.raises(InvalidRequest):
        parse_app("::: not yaml :::\n- [")
    with pytest.raises(InvalidRequest, match="node id"):
        parse_app(app([dict(START, id="bad id")], []))


def test_cancelling_the_consumer_cancels_nodes(services: EngineServices) -> None:
    slow = {
        "id": "slow",
        "type": "llm",
        "config": {"model": "instant", "prompt": [{"role": "user", "text": "SLOW"}]},
    }
    plan = compile_app(
        parse_app(
            app([START, slow, end(out="{{ slow.text }}")], [("start", "slow"), ("slow", "end")])
        )
    )

    async def scenario() -> None:
        events = run_app(plan, services, {"query": "x"})
        async for event in events:
            if event.event == "node_started" and event.data["node_id"] == "slow":
                break
        await events.aclose()  # the client went away
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.sleep(0)
        assert all(t.done() for t in pending)

    asyncio.run(scenario())


def test_code_node_runs_sandboxed(services: EngineServices) -> None:
    code = (
        "def main(text, n):\n    print('working')\n"
        "    return {'words': len(text.split()) * n, 'upper': text.upper()}\n"
    )
    spec = app(
        [
            START,
            {
                "id": "count",
                "type": "code",
                "config": {
                    "code": code,
                    "inputs": [
                        {"name": "text", "selector": "start.query"},
                        {"name": "n", "selector": "start.count"},
                    ],
                    "outputs": {"words": "integer", "upper": "string"},
                },
            },
            end(words="{{ count.words }}", upper="{{ count.upper }}"),
        ],
        [("start", "count"), ("count", "end")],
    )
    record, events = run(services, spec, {"query": "a b c", "count": 2})
    assert record.status == "succeeded", record.error
    assert record.outputs == {"words": "6", "upper": "A B C"}
    assert any(e.event == "node_log" and "working" in e.data["stdout"] for e in events)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        ("def main():\n    while True: pass\n", "than 2 s"),  # wall or CPU limit, whichever first
        ("def main():\n    return {'x': open('/etc/passwd').read()}\n", "forbade"),
        (
            "def main():\n    import socket\n    socket.create_connection(('127.0.0.1', 80))\n",
            "forbade",
        ),
        ("def main():\n    return {'x': 'not an int'}\n", "declared integer"),
    ],
)
def test_code_node_contains_bad_code(services: EngineServices, code: str, says: str) -> None:
    spec = app(
        [
            START,
            {
                "id": "bad",
                "type": "code",
                "config": {"code": code, "outputs": {"x": "integer"}, "timeout_seconds": 2},
            },
            end(x="{{ bad.x }}"),
        ],
        [("start", "bad"), ("bad", "end")],
    )
    record, _ = run(services, spec, {"query": "q"})
    assert record.status == "failed"
    assert says in (record.error or "").lower(), record.error


def _iteration(parallelism: int, body: list[dict[str, Any]], output: str) -> dict[str, Any]:
    start = {
        "id": "start",
        "type": "start",
        "config": {
            "inputs": [{"name": "items", "type": "array"}, {"name": "suffix", "type": "string"}]
        },
    }
    return app(
        [
            start,
            {
                "id": "each",
                "type": "iteration",
                "config": {
                    "items": "start.items",
                    "inputs": {"suffix": "start.suffix"},
                    "parallelism": parallelism,
                    "output": output,
                    "graph": {
                        "nodes": [{"id": "s", "type": "start"}, *body],
                        "edges": [{"source": "s", "target": body[0]["id"]}]
                        + [
                            {"source": a["id"], "target": b["id"]}
                            for a, b in itertools.pairwise(body)
                        ],
                    },
                },
            },
            {
                "id": "end",
                "type": "end",
                "config": {"outputs": [{"name": "all", "selector": "each.results"}]},
            },
        ],
        [("start", "each"), ("each", "end")],
    )


def test_iteration_runs_a_subgraph_per_item(services: EngineServices) -> None:
    body = [
        {
            "id": "t",
            "type": "template",
            "config": {"template": "{{ s.index }}:{{ s.item }}{{ s.suffix }}"},
        },
        {
            "id": "done",
            "type": "end",
            "config": {"outputs": [{"name": "r", "value": "{{ t.output }}"}]},
        },
    ]
    record, events = run(
        services, _iteration(2, body, "done.r"), {"items": ["a", "b", "c"], "suffix": "!"}
    )
    assert record.status == "succeeded", record.error
    assert record.outputs == {"all": ["0:a!", "1:b!", "2:c!"]}
    assert sum(e.event == "iteration_item" for e in events) == 3


def test_iteration_items_run_in_parallel(services: EngineServices) -> None:
    body = [
        {
            "id": "slow",
            "type": "llm",
            "config": {
                "model": "instant",
                "prompt": [{"role": "user", "text": "SLOW {{ s.item }}"}],
            },
        },
        {
            "id": "done",
            "type": "end",
            "config": {"outputs": [{"name": "r", "value": "{{ slow.text }}"}]},
        },
    ]
    record, _ = run(
        services, _iteration(4, body, "done.r"), {"items": ["1", "2", "3", "4"], "suffix": ""}
    )
    assert record.status == "succeeded", record.error
    assert record.elapsed_ms < 1500, record.elapsed_ms  # four 0.5 s items at once, not 2 s


def test_iteration_subgraph_errors_are_compile_errors() -> None:
    body = [
        {"id": "t", "type": "template", "config": {"template": "{{ s.nope }}"}},
        {"id": "done", "type": "end", "config": {"outputs": [{"name": "r", "value": "x"}]}},
    ]
    with pytest.raises(CompileError, match=r"node each: sub-graph: .*s has no output 'nope'"):
        compile_app(parse_app(_iteration(1, body, "done.r")))
    body[0]["config"]["template"] = "ok"
    with pytest.raises(CompileError, match="not an output of its sub-graph"):
        compile_app(parse_app(_iteration(1, body, "done.missing")))


def _loop(until_value: str, max_rounds: int = 10) -> dict[str, Any]:
    return app(
        [
            START,
            {
                "id": "count_up",
                "type": "loop",
                "config": {
                    "state": {"n": "start.count"},
                    "carry": {"n": "step.output"},
                    "max_rounds": max_rounds,
                    "until": [
                        {"selector": "step.output", "operator": "equals", "value": until_value}
                    ],
                    "graph": {
                        "nodes": [
                            {"id": "s", "type": "start"},
                            {
                                "id": "step",
                                "type": "template",
                                "config": {"template": "{{ (s.n | int) + 1 }}"},
                            },
                            {
                                "id": "fin",
                                "type": "end",
                                "config": {
                                    "outputs": [{"name": "v", "value": "{{ step.output }}"}]
                                },
                            },
                        ],
                        "edges": [
                            {"source": "s", "target": "step"},
                            {"source": "step", "target": "fin"},
                        ],
                    },
                },
            },
            end(n="{{ count_up.n }}", rounds="{{ count_up.rounds }}"),
        ],
        [("start", "count_up"), ("count_up", "end")],
    )


def test_loop_carries_state_until_its_condition_holds(services: EngineServices) -> None:
    record, events = run(services, _loop("5"), {"query": "x", "count": 1})
    assert record.status == "succeeded", record.error
    assert record.outputs == {"n": "5", "rounds": "4"}
    assert sum(e.event == "loop_round" for e in events) == 4


def test_loop_stops_at_max_rounds(services: EngineServices) -> None:
    record, _ = run(services, _loop("never", max_rounds=3), {"query": "x", "count": 1})
    assert record.status == "failed" and "after 3 rounds" in (record.error or "")


def test_loop_checks_its_selectors_at_compile_time() -> None:
    spec = _loop("5")
    spec["graph"]["nodes"][1]["config"]["carry"] = {"n": "step.nope"}
    with pytest.raises(CompileError, match="not an output of its sub-graph"):
        compile_app(parse_app(spec))


def test_assigner_sets_conversation_variables(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "remember",
                "type": "assigner",
                "config": {
                    "assignments": [
                        {"variable": "name", "selector": "start.query"},
                        {"variable": "turns", "operation": "increment"},
                        {
                            "variable": "seen",
                            "operation": "append",
                            "value": "{{ start.query | upper }}",
                        },
                    ]
                },
            },
            end(greeting="hi {{ conv.name }}, turn {{ conv.turns }}"),
        ],
        [("start", "remember"), ("remember", "end")],
        variables=[
            {"name": "name", "type": "string", "default": ""},
            {"name": "turns", "type": "integer", "default": 0},
            {"name": "seen", "type": "array", "default": []},
        ],
    )
    plan = compile_app(parse_app(spec))
    record, events = asyncio.run(
        run_to_end(plan, services, {"query": "mei"}, variables={"turns": 4, "seen": ["A"]})
    )
    assert record.status == "succeeded", record.error
    assert record.outputs == {"greeting": "hi mei, turn 5"}
    assert events[-1].data["variables"] == {"name": "mei", "turns": 5, "seen": ["A", "MEI"]}
    undeclared = dict(spec, variables=[])
    with pytest.raises(CompileError, match="declares no conversation variable"):
        compile_app(parse_app(undeclared))


def test_answers_stream_their_llm_tokens(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "llm",
                "type": "llm",
                "config": {
                    "model": "instant",
                    "prompt": [{"role": "user", "text": "{{ start.query }}"}],
                },
            },
            {"id": "reply", "type": "answer", "config": {"text": "{{ llm.text }}"}},
            {"id": "framed", "type": "answer", "config": {"text": "<{{ llm.text }}>"}},
        ],
        [("start", "llm"), ("llm", "reply"), ("llm", "framed")],
    )
    _, events = run(services, spec, {"query": "abc"})
    chunks = [e.data for e in events if e.event == "answer_chunk"]
    assert chunks == [{"node_id": "reply", "text": "c"}, {"node_id": "reply", "text": "ba"}]
    finals = {e.data["node_id"]: e.data["text"] for e in events if e.event == "answer"}
    assert finals == {"reply": "cba", "framed": "<cba>"}


def test_tool_node_calls_a_builtin(services: EngineServices) -> None:
    spec = app(
        [
            START,
            {
                "id": "calc",
                "type": "tool",
                "config": {
                    "tool": "calculator",
                    "arguments": {"expression": {"value": "{{ start.count }} * 7"}},
                },
            },
            end(result="{{ calc.result }}"),
        ],
        [("start", "calc"), ("calc", "end")],
    )
    record, _ = run(services, spec, {"query": "x", "count": 6})
    assert record.outputs == {"result": "42"}
    spec["graph"]["nodes"][1]["config"]["tool"] = "rm_rf"
    with pytest.raises(CompileError, match="unknown tool 'rm_rf'"):
        compile_app(parse_app(spec))
