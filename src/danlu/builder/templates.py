"""App templates from the scenarios danlu was made for, each runnable on the embedded model."""

from __future__ import annotations

from typing import Any

from danlu.gateway.providers.llama_cpp import EMBEDDED_CHAT_MODEL

MODEL = EMBEDDED_CHAT_MODEL


def _llm(
    node_id: str, system: str, user: str, *, max_tokens: int = 160, memory: int = 0
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "model": MODEL,
        "prompt": [{"role": "system", "text": system}, {"role": "user", "text": user}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
    }
    if memory:
        config["memory_window"] = memory
    return {"id": node_id, "type": "llm", "config": config}


def _edges(*pairs: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {"source": p[0], "target": p[1], **({"handle": p[2]} if len(p) > 2 else {})} for p in pairs
    ]


def _spec(
    name: str, mode: str, description: str, nodes: list[dict[str, Any]], edges: list[dict[str, str]]
) -> dict[str, Any]:
    return {
        "schema": "danlu.app/v1",
        "app": {"name": name, "mode": mode, "description": description},
        "graph": {"nodes": nodes, "edges": edges},
    }


TEMPLATES: dict[str, dict[str, Any]] = {
    "blank-chat": _spec(
        "Chat app 对话应用",
        "chat",
        "A model that answers each message and remembers the conversation. Start here.",
        [
            {"id": "start", "type": "start", "config": {"inputs": []}},
            _llm("llm", "You are a helpful assistant.", "{{ sys.query }}", memory=5),
            {"id": "reply", "type": "answer", "config": {"text": "{{ llm.text }}"}},
        ],
        _edges(("start", "llm"), ("llm", "reply")),
    ),
    "blank-workflow": _spec(
        "Workflow 工作流",
        "workflow",
        "One input, one model call, one output: the smallest workflow to build on.",
        [
            {
                "id": "start",
                "type": "start",
                "config": {"inputs": [{"name": "text", "type": "string", "required": True}]},
            },
            _llm("llm", "You are a helpful assistant.", "{{ start.text }}"),
            {
                "id": "end",
                "type": "end",
                "config": {"outputs": [{"name": "result", "value": "{{ llm.text }}"}]},
            },
        ],
        _edges(("start", "llm"), ("llm", "end")),
    ),
    "game-npc": _spec(
        "Tea-house NPC 茶馆掌柜",
        "chat",
        "A game NPC with a persona who speaks in a period style and remembers the conversation.",
        [
            {"id": "start", "type": "start", "config": {"inputs": []}},
            _llm(
                "npc",
                "You are Old Wang, keeper of a tea house in Song-dynasty Hangzhou. Stay in "
                "character. Speak courteously in a classical, old-fashioned style, briefly.",
                "{{ sys.query }}",
                memory=5,
            ),
            {"id": "reply", "type": "answer", "config": {"text": "{{ npc.text }}"}},
        ],
        _edges(("start", "npc"), ("npc", "reply")),
    ),
    "knowledge-assistant": _spec(
        "Enterprise knowledge assistant 企业知识助手",
        "chat",
        "Answers staff questions and cites its sources. Connect a knowledge base to ground it "
        "(the knowledge-retrieval node arrives with knowledge bases).",
        [
            {"id": "start", "type": "start", "config": {"inputs": []}},
            _llm(
                "assistant",
                "You are a company assistant. Answer briefly. If you are not sure, "
                "say so. End with a line 'Sources:' naming where the answer comes from.",
                "{{ sys.query }}",
                memory=3,
            ),
            {"id": "reply", "type": "answer", "config": {"text": "{{ assistant.text }}"}},
        ],
        _edges(("start", "assistant"), ("assistant", "reply")),
    ),
    "ai-search": _spec(
        "AI search answer AI 搜索",
        "workflow",
        "Turns a question and search results into a short answer that cites them as [1], [2]…",
        [
            {
                "id": "start",
                "type": "start",
                "config": {
                    "inputs": [
                        {"name": "question", "type": "string", "max_length": 2000},
                        {
                            "name": "results",
                            "type": "string",
                            "max_length": 20000,
                            "description": "Search results, one per line",
                        },
                    ]
                },
            },
            {
                "id": "numbered",
                "type": "template",
                "config": {
                    "template": "{% for line in start.results.splitlines() if line.strip() %}"
                    "[{{ loop.index }}] {{ line }}\n{% endfor %}"
                },
            },
            _llm(
                "answer",
                "Answer the question using only the numbered sources. Cite them like [1].",
                "Sources:\n{{ numbered.output }}\nQuestion: {{ start.question }}",
            ),
            {
                "id": "end",
                "type": "end",
                "config": {
                    "outputs": [
                        {"name": "answer", "value": "{{ answer.text }}"},
                        {"name": "sources", "value": "{{ numbered.output }}"},
                    ]
                },
            },
        ],
        _edges(("start", "numbered"), ("numbered", "answer"), ("answer", "end")),
    ),
    "audio-assistant": _spec(
        "Podcast & audio assistant 音频内容助手",
        "workflow",
        "From a transcript: segments, titles, a summary and show notes, written in parallel.",
        [
            {
                "id": "start",
                "type": "start",
                "config": {
                    "inputs": [{"name": "transcript", "type": "string", "max_length": 50000}]
                },
            },
            _llm(
                "segments",
                "Split the transcript into 3-5 segments with a timestamp-free heading each.",
                "{{ start.transcript }}",
            ),
            _llm(
                "titles",
                "Suggest three catchy episode titles, one per line.",
                "{{ start.transcript }}",
                max_tokens=60,
            ),
            _llm(
                "summary", "Summarise the transcript in three sentences.", "{{ start.transcript }}"
            ),
            _llm(
                "notes", "Write show notes: key points as a bullet list.", "{{ start.transcript }}"
            ),
            {
                "id": "end",
                "type": "end",
                "config": {
                    "outputs": [
                        {"name": "segments", "value": "{{ segments.text }}"},
                        {"name": "titles", "value": "{{ titles.text }}"},
                        {"name": "summary", "value": "{{ summary.text }}"},
                        {"name": "show_notes", "value": "{{ notes.text }}"},
                    ]
                },
            },
        ],
        _edges(
            ("start", "segments"),
            ("start", "titles"),
            ("start", "summary"),
            ("start", "notes"),
            ("segments", "end"),
            ("titles", "end"),
            ("summary", "end"),
            ("notes", "end"),
        ),
    ),
    "customer-service": _spec(
        "Customer-service router 智能客服路由",
        "chat",
        "Routes each message by intent (refunds, delivery, anything else) to its own branch.",
        [
            {"id": "start", "type": "start", "config": {"inputs": []}},
            {
                "id": "intent",
                "type": "if_else",
                "config": {
                    "cases": [
                        {
                            "id": "refund",
                            "logic": "or",
                            "conditions": [
                                {"selector": "sys.query", "operator": "contains", "value": "退款"},
                                {
                                    "selector": "sys.query",
                                    "operator": "contains",
                                    "value": "refund",
                                },
                            ],
                        },
                        {
                            "id": "delivery",
                            "logic": "or",
                            "conditions": [
                                {"selector": "sys.query", "operator": "contains", "value": "快递"},
                                {
                                    "selector": "sys.query",
                                    "operator": "contains",
                                    "value": "deliver",
                                },
                            ],
                        },
                    ]
                },
            },
            _llm(
                "refund",
                "You handle refunds. Explain the 7-day refund policy briefly and ask for "
                "the order number.",
                "{{ sys.query }}",
                max_tokens=100,
            ),
            _llm(
                "delivery",
                "You handle delivery questions. Ask for the order number and promise a "
                "tracking update.",
                "{{ sys.query }}",
                max_tokens=100,
            ),
            _llm(
                "general",
                "You are a friendly customer-service agent. Answer briefly.",
                "{{ sys.query }}",
                max_tokens=100,
                memory=3,
            ),
            {
                "id": "join",
                "type": "variable_aggregator",
                "config": {
                    "selectors": ["refund.text", "delivery.text", "general.text"],
                    "type": "string",
                },
            },
            {"id": "reply", "type": "answer", "config": {"text": "{{ join.output }}"}},
        ],
        _edges(
            ("start", "intent"),
            ("intent", "refund", "refund"),
            ("intent", "delivery", "delivery"),
            ("intent", "general", "false"),
            ("refund", "join"),
            ("delivery", "join"),
            ("general", "join"),
            ("join", "reply"),
        ),
    ),
}
