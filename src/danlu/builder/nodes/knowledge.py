"""The knowledge-retrieval node: passages from the app's knowledge bases, numbered for citing.

The node asks ``services.retriever`` (a :class:`Retriever`; the server's
knowledge bases) for passages. Its ``context`` output numbers them ``[1]``,
``[2]`` … with their document names, so an LLM node can cite them, and
``passages`` carries each one's document, position and scores for the UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator

from danlu.builder.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, reads_selector
from danlu.builder.variables import VarType
from danlu.core.errors import ModelUnavailable
from danlu.knowledge.filters import validate as validate_filter


class Retriever(Protocol):
    async def retrieve(
        self,
        owner: str,
        knowledge_bases: list[str],
        query: str,
        *,
        mode: str,
        top_k: int,
        score_threshold: float | None,
        filters: dict[str, Any] | None = None,
        rerank: str | None = None,
    ) -> list[dict[str, Any]]:
        """Ranked passages: {"text", "document", "position", "score", ...} each."""


class RetrievalConfig(NodeConfig):
    knowledge_bases: list[str] = Field(min_length=1)
    query: str = "sys.query"
    mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    score_threshold: float | None = None
    filters: dict[str, Any] | None = None  # metadata filter (see danlu.knowledge.filters)
    rerank: str | None = None  # a rerank model's name

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else validate_filter(value)


class KnowledgeRetrievalNode(NodeType):
    type = "knowledge_retrieval"
    Config = RetrievalConfig

    def outputs(self) -> dict[str, VarType]:
        return {"passages": "array", "context": "string"}

    def reads(self) -> Iterator[tuple[str, str, VarType]]:
        assert isinstance(self.config, RetrievalConfig)
        return reads_selector(self.config.query, "string")

    async def run(self, ctx: NodeContext) -> NodeResult:
        assert isinstance(self.config, RetrievalConfig)
        retriever: Retriever | None = getattr(ctx.services, "retriever", None)
        if retriever is None:
            raise ModelUnavailable(
                "this server has no knowledge bases yet, so "
                f"{self.id} cannot retrieve; they arrive with the knowledge pillar"
            )
        config = self.config
        passages = await retriever.retrieve(
            str(ctx.pool.outputs("sys").get("app_id") or ""),
            config.knowledge_bases,
            str(ctx.pool.get(config.query)),
            mode=config.mode,
            top_k=config.top_k,
            score_threshold=config.score_threshold,
            filters=config.filters,
            rerank=config.rerank,
        )
        context = "\n\n".join(
            f"[{i}] ({p.get('document_name') or p.get('document', '')}) {p.get('text', '')}"
            for i, p in enumerate(passages, start=1)
        )
        return NodeResult({"passages": passages, "context": context})
