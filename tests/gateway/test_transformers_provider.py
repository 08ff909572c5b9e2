"""The transformers provider in process, on a tiny random Llama built by the test."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from danlu.core.errors import ConfigError, ContextLengthExceeded, InvalidRequest, Unsupported
from danlu.core.settings import load_settings
from danlu.gateway.provider import CallContext, Chunk
from danlu.gateway.providers import builtin
from danlu.gateway.providers.transformers_local import (
    TransformersChatModel,
    TransformersOptions,
    TransformersProvider,
)
from danlu.gateway.registry import ModelRegistry, ProviderConfig
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest
from tests.support.tiny_lm import build_tiny_lm

T = TypeVar("T")
CTX = CallContext(owner="tester")
CONTEXT = 256
HELLO = [{"role": "user", "content": "Hello world, what is a furnace for?"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    # One loop for the module: the model's thread reports to the loop that started it.
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def model(
    folder: Path, loop: asyncio.AbstractEventLoop, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TransformersChatModel]:
    settings = load_settings(
        {"DANLU_HOME": str(tmp_path_factory.mktemp("home")), "DANLU_EMBEDDED_MODELS": "0"}
    )
    options = TransformersOptions(
        model_path=folder, model_name="tiny", n_threads=1, n_ctx=CONTEXT, owned_by="tests"
    )
    provider = TransformersProvider("tiny-provider", options, settings)
    [loaded] = loop.run_until_complete(provider.load())
    assert isinstance(loaded, TransformersChatModel)
    yield loaded
    loop.run_until_complete(provider.aclose())


async def until(condition: Callable[[], bool], seconds: float = 30) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def run(
    loop: asyncio.AbstractEventLoop, model: TransformersChatModel, work: Coroutine[Any, Any, T]
) -> T:
    """Run ``work``, then let the model's slot be handed back before the next test."""

    async def settled() -> T:
        result = await work
        await until(lambda: not model.stats()["active"])
        return result

    return loop.run_until_complete(settled())


async def collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


def chat(**body: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "tiny", "messages": HELLO, **body})


def tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


def no_eos(model: TransformersChatModel) -> dict[str, float]:
    """A logit bias that keeps the random model from ending early."""
    return {str(t): -100.0 for t in model._eos}


def test_it_is_a_built_in_provider_type() -> None:
    assert TransformersProvider in builtin.register_provider_types()


def test_a_stream_has_a_role_text_a_finish_and_real_usage(
    model: TransformersChatModel, folder: Path, loop: asyncio.AbstractEventLoop
) -> None:
    request = chat(max_tokens=12, seed=1, logit_bias=no_eos(model))
    chunks = run(loop, model, collect(model.stream_chat(request, CTX)))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    expected = tokenizer(folder).apply_chat_template(HELLO, add_generation_prompt=True)
    if isinstance(expected, dict) or hasattr(expected, "keys"):
        expected = expected["input_ids"]
    assert chunks[-1] == {
        "choices": [],
        "usage": {
            "prompt_tokens": len(expected),
            "completion_tokens": 12,
            "total_tokens": len(expected) + 12,
        },
    }
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-1])
    assert text


def test_greedy_decoding_matches_transformers_generate(
    model: TransformersChatModel, folder: Path, loop: asyncio.AbstractEventLoop
) -> None:
    import torch

    answer = run(loop, model, model.chat(chat(max_tokens=10, temperature=0), CTX))
    prompt = model.render_chat(chat())
    with torch.inference_mode():
        reference = model._model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=10,
            do_sample=False,
        )[0, len(prompt) :].tolist()
    eos = next(iter(model._eos))
    if eos in reference:
        reference = reference[: reference.index(eos)]
    expected = tokenizer(folder).decode(reference, skip_special_tokens=True)
    assert answer["choices"][0]["message"]["content"] == expected
    assert answer["usage"]["completion_tokens"] == len(reference)


def test_a_seed_makes_sampling_reproducible(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    def ask(seed: int) -> str:
        request = chat(max_tokens=16, seed=seed, temperature=1.2, logit_bias=no_eos(model))
        answer = run(loop, model, model.chat(request, CTX))
        content: str = answer["choices"][0]["message"]["content"]
        return content

    assert ask(7) == ask(7)
    assert len({ask(seed) for seed in range(4)}) > 1


def test_sampling_knobs_are_honoured(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    greedy = run(loop, model, model.chat(chat(max_tokens=8, temperature=0), CTX))
    # top_k = 1 leaves one candidate: sampling becomes greedy whatever the temperature.
    narrowed = chat(max_tokens=8, temperature=1.5, seed=3, top_k=1)
    assert run(loop, model, model.chat(narrowed, CTX))["choices"] == greedy["choices"]
    knobs = chat(
        max_tokens=8,
        seed=3,
        top_p=0.5,
        min_p=0.1,
        typical_p=0.9,
        repeat_penalty=1.3,
        presence_penalty=1.0,
        frequency_penalty=1.0,
        user="someone",
    )
    answer = run(loop, model, model.chat(knobs, CTX))
    assert answer["usage"]["completion_tokens"] <= 8


def test_stop_sequences_end_the_answer_before_them(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    bias = no_eos(model)
    full = run(loop, model, model.chat(chat(max_tokens=30, temperature=0, logit_bias=bias), CTX))
    text = full["choices"][0]["message"]["content"]
    printable = [i for i in range(4, len(text) - 2) if text[i : i + 2].isprintable()]
    assert printable, text
    stop = text[printable[0] : printable[0] + 2]
    cut = run(
        loop,
        model,
        model.chat(chat(max_tokens=30, temperature=0, logit_bias=bias, stop=[stop]), CTX),
    )
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_logprobs_come_from_the_raw_logits(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    request = chat(max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)
    answer = run(loop, model, model.chat(request, CTX))
    entries = answer["choices"][0]["logprobs"]["content"]
    assert len(entries) == answer["usage"]["completion_tokens"]
    for entry in entries:
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert entry["logprob"] == pytest.approx(tops[0])  # greedy took the likeliest
        assert entry["logprob"] < 0


def test_completions_echo_and_count(
    model: TransformersChatModel, folder: Path, loop: asyncio.AbstractEventLoop
) -> None:
    request = CompletionRequest(model="tiny", prompt="The furnace", max_tokens=4, echo=True, n=2)
    answer = run(loop, model, model.completion(request, CTX))
    assert [c["index"] for c in answer["choices"]] == [0, 1]
    assert all(c["text"].startswith("The furnace") for c in answer["choices"])
    prompt = len(tokenizer(folder)("The furnace")["input_ids"])
    assert answer["usage"]["prompt_tokens"] == prompt


def test_the_context_window_is_checked_before_generating(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    long = [{"role": "user", "content": "furnace " * CONTEXT}]
    with pytest.raises(ContextLengthExceeded, match=f"context is {CONTEXT} tokens"):
        run(loop, model, collect(model.stream_chat(chat(messages=long), CTX)))
    with pytest.raises(ContextLengthExceeded, match="lower max_tokens") as caught:
        run(loop, model, collect(model.stream_chat(chat(max_tokens=CONTEXT), CTX)))
    assert caught.value.code == "context_length_exceeded"


@pytest.mark.parametrize(
    ("body", "error", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, Unsupported, "tools"),
        ({"response_format": {"type": "json_object"}}, Unsupported, "response_format"),
        ({"mirostat": 2}, Unsupported, "mirostat"),
        ({"top_k": "many"}, InvalidRequest, "top_k"),
        ({"logit_bias": {"99999": 1}}, InvalidRequest, "logit_bias"),
        ({"top_logprobs": 2}, InvalidRequest, "top_logprobs"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            Unsupported,
            "messages.0.content",
        ),
    ],
)
def test_what_it_cannot_do_is_refused(
    model: TransformersChatModel,
    loop: asyncio.AbstractEventLoop,
    body: dict[str, Any],
    error: type[Exception],
    param: str,
) -> None:
    with pytest.raises(error) as caught:
        run(loop, model, collect(model.stream_chat(chat(max_tokens=2, **body), CTX)))
    assert getattr(caught.value, "param", None) == param


def test_closing_the_stream_stops_generation(
    model: TransformersChatModel, loop: asyncio.AbstractEventLoop
) -> None:
    before = model.finished["cancelled"]
    request = chat(max_tokens=CONTEXT - 40, logit_bias=no_eos(model))

    async def read_a_little() -> None:
        stream = model.stream_chat(request, CTX)
        for _ in range(3):
            await anext(stream)
        await stream.aclose()
        await until(lambda: model.finished["cancelled"] > before)

    run(loop, model, read_a_little())
    assert model.stats()["active"] == 0


def test_a_chat_template_option_overrides_the_tokenizers(
    folder: Path, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}>"
    options = TransformersOptions(
        model_path=folder, model_name="plain", n_threads=1, chat_template=template
    )
    provider = TransformersProvider("plain", options, settings)
    [model] = loop.run_until_complete(provider.load())
    try:
        assert isinstance(model, TransformersChatModel)
        assert model.context_length == 8192  # the model's own maximum when n_ctx is not set
        expected = tokenizer(folder)(f"[user] {HELLO[0]['content']}\n>", add_special_tokens=False)
        assert model.render_chat(chat()) == expected["input_ids"]
    finally:
        loop.run_until_complete(provider.aclose())


def test_unavailable_reasons_say_what_to_do(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def reason(path: Path) -> str | None:
        return TransformersProvider.unavailable_reason(
            TransformersOptions(model_path=path, model_name="x")
        )

    assert reason(folder) is None
    assert "does not exist" in (reason(tmp_path / "absent") or "")
    assert "no config.json" in (reason(tmp_path) or "")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert reason(folder) == "torch not installed (pip install 'danlu[refinery]')"


def test_options_are_strict(tmp_path: Path) -> None:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    config = ProviderConfig(
        name="t", type="transformers", options={"model_path": "x", "model_name": "t", "dtyp": 1}
    )
    with pytest.raises(ConfigError, match="dtyp"):
        ModelRegistry({"transformers": TransformersProvider}, [config], settings)
    bad_dtype = ProviderConfig(
        name="t", type="transformers", options={"model_path": "x", "model_name": "t", "dtype": "f8"}
    )
    with pytest.raises(ConfigError, match="dtype"):
        ModelRegistry({"transformers": TransformersProvider}, [bad_dtype], settings)


def test_bfloat16_weights_load_and_answer(
    folder: Path, loop: asyncio.AbstractEventLoop, tmp_path: Path
) -> None:
    settings = load_settings({"DANLU_HOME": str(tmp_path), "DANLU_EMBEDDED_MODELS": "0"})
    options = TransformersOptions(
        model_path=folder, model_name="bf16", n_threads=1, n_ctx=64, dtype="bfloat16"
    )
    provider = TransformersProvider("bf16", options, settings)
    [model] = loop.run_until_complete(provider.load())
    try:
        assert isinstance(model, TransformersChatModel)
        answer = run(loop, model, model.chat(chat(max_tokens=3, temperature=0), CTX))
        assert answer["usage"]["completion_tokens"] <= 3
    finally:
        loop.run_until_complete(provider.aclose())
