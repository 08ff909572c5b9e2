"""Classifier and extractor nodes on the real embedded model (grammar-constrained JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from danlu.builder.compiler import compile_app
from danlu.builder.dsl import parse_app
from danlu.builder.runtime import EngineServices, run_to_end
from danlu.core.plugins import plugin_manager
from danlu.core.settings import load_settings
from danlu.gateway.registry import ModelRegistry

MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineServices]:
    home = tmp_path_factory.mktemp("llm-nodes")
    settings = load_settings(
        {"DANLU_HOME": str(home), "DANLU_LLAMA_CONTEXT": "2048", "DANLU_LLAMA_THREADS": "1"}
    )
    registry = ModelRegistry.from_plugins(plugin_manager(load_entry_points=False), settings)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(registry.start())
    yield EngineServices(models=registry)
    loop.run_until_complete(registry.aclose())
    loop.close()


def run(
    services: EngineServices, nodes: list[dict[str, Any]], edges: list[dict[str, str]], query: str
) -> Any:
    spec = {
        "schema": "danlu.app/v1",
        "app": {"name": "t", "mode": "chat"},
        "graph": {"nodes": [{"id": "start", "type": "start"}, *nodes], "edges": edges},
    }
    plan = compile_app(parse_app(spec))
    return asyncio.run(run_to_end(plan, services, {}, system={"query": query}))


def test_question_classifier_takes_one_branch(services: EngineServices) -> None:
    classes = [
        {"id": "refund", "description": "asks for money back"},
        {"id": "other", "description": "anything else"},
    ]
    nodes = [
        {
            "id": "route",
            "type": "question_classifier",
            "config": {"model": MODEL, "classes": classes},
        },
        {"id": "a", "type": "answer", "config": {"text": "refund desk"}},
        {"id": "b", "type": "answer", "config": {"text": "general desk"}},
    ]
    edges = [
        {"source": "start", "target": "route"},
        {"source": "route", "target": "a", "handle": "refund"},
        {"source": "route", "target": "b", "handle": "other"},
    ]
    record, events = run(services, nodes, edges, "I want my money back for order 42")
    assert record.status == "succeeded", record.error
    chosen = next(
        e.data["outputs"]["class"]
        for e in events
        if e.event == "node_finished" and e.data["node_id"] == "route"
    )
    assert chosen in {"refund", "other"}
    answers = [e.data["text"] for e in events if e.event == "answer"]
    assert answers == ["refund desk" if chosen == "refund" else "general desk"]


def test_parameter_extractor_returns_typed_values(services: EngineServices) -> None:
    nodes = [
        {
            "id": "params",
            "type": "parameter_extractor",
            "config": {
                "model": MODEL,
                "parameters": [
                    {"name": "city", "type": "string", "description": "the city"},
                    {"name": "nights", "type": "integer", "description": "how many nights"},
                ],
            },
        },
        {
            "id": "say",
            "type": "answer",
            "config": {"text": "{{ params.city }}/{{ params.nights }}"},
        },
    ]
    edges = [{"source": "start", "target": "params"}, {"source": "params", "target": "say"}]
    record, events = run(services, nodes, edges, "Book Hangzhou for 3 nights")
    assert record.status == "succeeded", record.error
    outputs = next(
        e.data["outputs"]
        for e in events
        if e.event == "node_finished" and e.data["node_id"] == "params"
    )
    assert isinstance(outputs["city"], str) and isinstance(outputs["nights"], int)


def test_knowledge_retrieval_says_what_is_missing(services: EngineServices) -> None:
    nodes = [
        {"id": "kb", "type": "knowledge_retrieval", "config": {"knowledge_bases": ["handbook"]}},
        {"id": "say", "type": "answer", "config": {"text": "{{ kb.context }}"}},
    ]
    edges = [{"source": "start", "target": "kb"}, {"source": "kb", "target": "say"}]
    record, _ = run(services, nodes, edges, "leave policy?")
    assert record.status == "failed" and "no knowledge bases yet" in (record.error or "")
