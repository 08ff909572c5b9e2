"""Prometheus metrics of the gateway, served at ``/metrics``.

Each server has its own registry (not the library's global one), so several servers in
one process (tests) do not collide. Labels are the model, the kind of call and the
status; never a key or a user, which would make the series unbounded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "danlu_gateway_requests",
            "Model calls by model, kind and final status",
            ["model", "kind", "status"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "danlu_gateway_refused",
            "Calls refused at admission (limits, balance, prices)",
            ["model", "kind"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "danlu_gateway_request_seconds",
            "Time from admission to the last chunk",
            ["model", "kind"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "danlu_gateway_time_to_first_token_seconds",
            "Time from admission to the first content",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.overhead = Histogram(
            "danlu_gateway_overhead_seconds",
            "The gateway's own time before the model is called (auth, limits, hold)",
            ["kind"],
            buckets=_OVERHEAD_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "danlu_gateway_tokens",
            "Tokens by model and direction",
            ["model", "direction"],
            registry=self.registry,
        )
        self.cost = Counter(
            "danlu_gateway_cost_microyuan",
            "Cost charged, in micro-yuan",
            ["model"],
            registry=self.registry,
        )

    def observe(
        self,
        *,
        model: str,
        kind: str,
        status: str,
        seconds: float,
        ttft: float | None,
        prompt_tokens: int,
        output_tokens: int,
        cost: int,
    ) -> None:
        self.requests.labels(model, kind, status).inc()
        self.latency.labels(model, kind).observe(seconds)
        if ttft is not None:
            self.ttft.labels(model).observe(ttft)
        if prompt_tokens:
            self.tokens.labels(model, "input").inc(prompt_tokens)
        if output_tokens:
            self.tokens.labels(model, "output").inc(output_tokens)
        if cost:
            self.cost.labels(model).inc(cost)

    def refused(self, *, model: str, kind: str) -> None:
        self.refusals.labels(model, kind).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
