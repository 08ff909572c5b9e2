"""A finished app run → insight events, with its cost at the gateway's prices.

This runs on the recorder's writer thread, never on the request's path: the
builder hands over the run's events as they were streamed (with the time each
reached the caller) and nothing is computed until the batch is written.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from danlu.billing.prices import Price
from danlu.builder.apps import FinishedRun
from danlu.insight.events import CONVERSATION, ERROR, MESSAGE, RUN, Event, identity

# Events that put the first piece of the answer in front of the caller.
FIRST_TOKEN_EVENTS = frozenset({"text_chunk", "answer_chunk", "answer"})
PriceLookup = Callable[[str], Price | None]


def ttft_ms(finished: FinishedRun) -> float | None:
    """Time to first token: from ``run_started`` to the first streamed text or answer.

    ``None`` for runs that produced no text (a workflow without an LLM node, a failure).
    """
    if not finished.times:
        return None
    for event, at in zip(finished.events, finished.times, strict=False):
        if event.event in FIRST_TOKEN_EVENTS:
            return round(max(at - finished.times[0], 0.0) * 1000, 3)
    return None


def node_offsets(finished: FinishedRun) -> dict[str, float]:
    """When each node started, in ms after the run started (a trace's waterfall)."""
    offsets: dict[str, float] = {}
    if not finished.times:
        return offsets
    for event, at in zip(finished.events, finished.times, strict=False):
        if event.event == "node_started":
            node = str(event.data.get("node_id"))
            offsets.setdefault(node, round(max(at - finished.times[0], 0.0) * 1000, 3))
    return offsets


def model_tokens(finished: FinishedRun) -> dict[str, tuple[int, int]]:
    """The run's (input, output) tokens per model.

    The runtime reports one usage total per run. Each node that calls a model names it
    in its config; with one model that is exact. With several, the total is split
    across the model-calling nodes that finished, in proportion to how many of them used
    each model (the remainder goes to the first model), so the tokens still add up.
    """
    usage = {}
    last = finished.events[-1].data if finished.events else {}
    for key, value in (last.get("usage") or {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            usage[key] = value
    prompt = max(usage.get("prompt_tokens", 0), 0)
    completion = max(usage.get("completion_tokens", 0), 0)
    calls: Counter[str] = Counter()
    for event in finished.events:
        if event.event != "node_finished":
            continue
        node = finished.plan.nodes.get(str(event.data.get("node_id")))
        model = getattr(node.config, "model", None) if node is not None else None
        if isinstance(model, str) and model:
            calls[model] += 1
    if not calls:
        return {"": (prompt, completion)} if prompt or completion else {}
    total = sum(calls.values())
    split: dict[str, tuple[int, int]] = {}
    for model, count in sorted(calls.items()):
        split[model] = (prompt * count // total, completion * count // total)
    first = sorted(calls)[0]
    given_in = sum(v[0] for v in split.values())
    given_out = sum(v[1] for v in split.values())
    split[first] = (split[first][0] + prompt - given_in, split[first][1] + completion - given_out)
    return split


def run_cost(tokens: dict[str, tuple[int, int]], price_of: PriceLookup) -> tuple[int, list[str]]:
    """Micro-yuan at the gateway's prices, and the models that have no price (cost 0)."""
    cost = 0
    unpriced: list[str] = []
    for model, (inp, out) in tokens.items():
        price = price_of(model) if model else None
        if price is None:
            if inp or out:
                unpriced.append(model or "(unknown)")
            continue
        cost += price.cost(inp, 0, out)
    return cost, unpriced


def run_events(finished: FinishedRun, price_of: PriceLookup) -> list[Event]:
    """The events of one published run: run, then conversation, message or error."""
    app = finished.app
    last = finished.events[-1]
    ok = last.event == "run_finished"
    started = datetime.fromtimestamp(finished.times[0], UTC) if finished.times else _now()
    user_id, user_kind = identity(
        finished.options.end_user, finished.conversation_id, finished.owner
    )
    run_id = str(last.data.get("run_id"))
    tokens = model_tokens(finished)
    cost, unpriced = run_cost(tokens, price_of)
    detail: dict[str, Any] = {"nodes": node_offsets(finished)}
    if len(tokens) > 1:
        detail["models"] = {m: {"input": i, "output": o} for m, (i, o) in tokens.items()}
    if unpriced:
        detail["unpriced"] = unpriced

    def make(kind: str, **extra: Any) -> Event:
        return Event(
            ts=started,
            kind=kind,
            workspace_id=app.workspace_id,
            app_id=app.id,
            user_id=user_id,
            user_kind=user_kind,
            run_id=run_id,
            conversation_id=finished.conversation_id,
            version=finished.version,
            **extra,
        )

    events = [
        make(
            RUN,
            status="succeeded" if ok else "failed",
            model=",".join(m for m in sorted(tokens) if m) or None,
            input_tokens=sum(t[0] for t in tokens.values()),
            output_tokens=sum(t[1] for t in tokens.values()),
            cost=cost,
            latency_ms=float(last.data.get("elapsed_ms") or 0.0),
            ttft_ms=ttft_ms(finished) if ok else None,
            detail=json.dumps(detail, separators=(",", ":")),
        )
    ]
    if finished.conversation_id and finished.options.conversation_id is None:
        events.append(make(CONVERSATION))
    if ok:
        events.append(make(MESSAGE))
    else:
        error = str(last.data.get("error") or "failed")[:2000]
        events.append(make(ERROR, status="failed", error=error))
    return events


def _now() -> datetime:
    return datetime.now(UTC)
