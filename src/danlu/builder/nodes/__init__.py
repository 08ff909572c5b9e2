"""The built-in node types, by their ``type`` name."""

from __future__ import annotations

from danlu.builder.nodes.agent import AgentNode
from danlu.builder.nodes.assigner import VariableAssignerNode
from danlu.builder.nodes.base import NodeType
from danlu.builder.nodes.code import CodeNode
from danlu.builder.nodes.extract import ParameterExtractorNode, QuestionClassifierNode
from danlu.builder.nodes.flow import (
    AnswerNode,
    EndNode,
    IfElseNode,
    StartNode,
    TemplateNode,
    VariableAggregatorNode,
)
from danlu.builder.nodes.http import HttpRequestNode
from danlu.builder.nodes.iteration import IterationNode
from danlu.builder.nodes.knowledge import KnowledgeRetrievalNode
from danlu.builder.nodes.llm import LLMNode
from danlu.builder.nodes.loop import LoopNode
from danlu.builder.nodes.tool import ToolNode

NODE_TYPES: dict[str, type[NodeType]] = {
    cls.type: cls
    for cls in (
        StartNode,
        EndNode,
        AnswerNode,
        TemplateNode,
        IfElseNode,
        VariableAggregatorNode,
        LLMNode,
        HttpRequestNode,
        CodeNode,
        QuestionClassifierNode,
        ParameterExtractorNode,
        KnowledgeRetrievalNode,
        IterationNode,
        AgentNode,
        LoopNode,
        VariableAssignerNode,
        ToolNode,
    )
}

__all__ = ["NODE_TYPES", "NodeType"]
