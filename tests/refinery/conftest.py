"""Fixtures: the embedded SmolLM2 loaded once, and tiny random Llamas for fast training.

Loading the GGUF into transformers takes tens of seconds on two cores, so it happens once
per session; tests that train get their own copy of its weights. The tiny model shares
SmolLM2's tokenizer and template, so every code path sees a real vocabulary.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from danlu.refinery.base import Base, embedded_base_path, load_base
from danlu.refinery.template import ChatTemplate, Example, encode
from danlu.refinery.train import torch_threads


@pytest.fixture(scope="session")
def smollm2() -> Base:
    """The embedded GGUF as loaded for training (do not train it: use ``fresh_smollm2``)."""
    with torch_threads(1):
        return load_base(embedded_base_path())


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One PyTorch thread: these tests share two cores with others, where more threads
    stall each other (see ``torch_threads``)."""
    with torch_threads(1):
        yield


@pytest.fixture
def fresh_smollm2(smollm2: Base) -> Base:
    return Base(
        copy.deepcopy(smollm2.model),
        smollm2.tokenizer,
        smollm2.template,
        smollm2.name,
        smollm2.parameters,
        smollm2.path,
        smollm2.gguf_file,
    )


def tiny_llama(vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A two-layer Llama with random weights, the same for the same seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
        use_cache=False,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def make_tiny(smollm2: Base) -> Callable[[], Base]:
    """Builds a fresh tiny base each call (identical weights each time)."""

    def make() -> Base:
        model = tiny_llama(len(smollm2.tokenizer))
        return Base(model, smollm2.tokenizer, smollm2.template, "tiny", 0, smollm2.path)

    return make


def conversations(count: int) -> list[list[dict[str, str]]]:
    """Short question-answer pairs: a pattern a model can pick up in a few steps (the short
    system turn replaces SmolLM2's default one, keeping sequences short)."""
    colours = ["red", "green", "blue", "amber"]
    return [
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"Colour of box {i}?"},
            {"role": "assistant", "content": f"Box {i} is {colours[i % 4]}."},
        ]
        for i in range(count)
    ]


def encoded(base_template: ChatTemplate, tokenizer: Any, count: int) -> list[Example]:
    return [e for c in conversations(count) for e in encode(c, base_template, tokenizer)]
