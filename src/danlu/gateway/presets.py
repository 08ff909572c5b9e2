"""Presets for well-known OpenAI-compatible providers: where they live and what they serve.

A preset fills in ``base_url`` and a starting list of models so that adding DeepSeek is
``danlu providers add deepseek --preset deepseek --api-key …``. Everything stays
overridable; the models listed are the common ones at the time of writing, and any
other model of the provider can be added by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    base_url: str
    needs_key: bool
    models: list[str | dict[str, str]] = field(default_factory=list)
    docs: str = ""
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "base_url": self.base_url,
            "needs_key": self.needs_key,
            "models": self.models,
            "docs": self.docs,
            "note": self.note,
        }


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "dashscope",
            "Alibaba Cloud Model Studio (DashScope, Qwen) 阿里云百炼",
            "https://dashscope.aliyuncs.com/compatible-mode/v1",
            True,
            [
                "qwen-plus",
                "qwen-max",
                "qwen-turbo",
                {"name": "text-embedding-v3", "kind": "embedding"},
            ],
            "https://help.aliyun.com/zh/model-studio/compatibility-of-openai-with-dashscope",
            "International accounts use https://dashscope-intl.aliyuncs.com/compatible-mode/v1. "
            "Qwen3's enable_thinking is passed through as sent.",
        ),
        Preset(
            "deepseek",
            "DeepSeek 深度求索",
            "https://api.deepseek.com/v1",
            True,
            ["deepseek-chat", "deepseek-reasoner"],
            "https://api-docs.deepseek.com/",
            "deepseek-reasoner streams reasoning_content, relayed as sent.",
        ),
        Preset(
            "moonshot",
            "Moonshot AI (Kimi) 月之暗面",
            "https://api.moonshot.cn/v1",
            True,
            ["moonshot-v1-8k", "moonshot-v1-32k", "moonshot-v1-128k"],
            "https://platform.moonshot.cn/docs",
        ),
        Preset(
            "zhipu",
            "Zhipu AI (GLM) 智谱",
            "https://open.bigmodel.cn/api/paas/v4",
            True,
            ["glm-4-plus", "glm-4-flash", {"name": "embedding-3", "kind": "embedding"}],
            "https://open.bigmodel.cn/dev/api",
        ),
        Preset(
            "openai",
            "OpenAI",
            "https://api.openai.com/v1",
            True,
            ["gpt-4o", "gpt-4o-mini", {"name": "text-embedding-3-small", "kind": "embedding"}],
            "https://platform.openai.com/docs/api-reference",
        ),
        Preset(
            "vllm",
            "vLLM server",
            "http://127.0.0.1:8000/v1",
            False,
            [],
            "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
            "Models are discovered from /v1/models when none are listed.",
        ),
        Preset(
            "ollama",
            "Ollama",
            "http://127.0.0.1:11434/v1",
            False,
            [],
            "https://github.com/ollama/ollama/blob/main/docs/openai.md",
            "Models are discovered from /v1/models when none are listed.",
        ),
        Preset(
            "llamacpp",
            "llama.cpp server",
            "http://127.0.0.1:8080/v1",
            False,
            [],
            "https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
        ),
        Preset(
            "xinference",
            "Xorbits Inference",
            "http://127.0.0.1:9997/v1",
            False,
            [],
            "https://inference.readthedocs.io/",
            "Serves chat, embedding and rerank models; list rerank ones with kind = rerank.",
        ),
    )
}
