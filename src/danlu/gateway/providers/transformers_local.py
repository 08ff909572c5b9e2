"""Chat models from a transformers checkpoint (safetensors + tokenizer), run on the CPU.

This is how the refinery's output is served: a directory as ``save_pretrained``
writes it. The prompt is rendered with the tokenizer's own chat template
(``apply_chat_template``), the one the refinery trains with, so a refined model
is asked the way it learnt.

Generation is a hand-written decode loop over the model's KV cache rather than
``model.generate``: one forward pass per token gives a place to check a stop flag
(a client that goes away stops the model between two tokens), to sample with a
per-request ``torch.Generator`` (a seed is reproducible without touching torch's
global RNG), and to read each step's logits for ``logprobs``. As for llama.cpp,
each model runs one generation at a time on its own thread, admitted by a
:class:`FairScheduler`, and the wire details (stop sequences held back until
they cannot begin one, usage, finish reasons, errors) are llama_cpp's.

torch and transformers are imported only when a model loads: they are heavy, and
optional (``pip install 'danlu[refinery]'``).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import secrets
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from danlu.core.errors import ContextLengthExceeded, InvalidRequest, Unsupported
from danlu.gateway.provider import CallContext, ChatModel, Chunk, Model, Provider, ProviderOptions

# The same wire format and request rules as the GGUF provider, so clients cannot tell
# the two local backends apart except by speed.
from danlu.gateway.providers.llama_cpp import (
    _EXTRA_SAMPLING,
    _FALLBACK_TEMPLATE,
    _HARMLESS,
    _chat_choice,
    _Finished,
    _first_stop,
    _Logprob,
    _Piece,
    _stop_prefix_length,
    _text_choice,
    _top_logprobs,
    _usage,
)
from danlu.gateway.providers.threaded import stream_from_thread
from danlu.gateway.scheduler import FairScheduler
from danlu.gateway.schemas import ChatCompletionRequest, CompletionRequest

INSTALL_HINT = "pip install 'danlu[refinery]'"
# llama.cpp applies its repetition penalties to the last 64 tokens; so do we.
_PENALTY_WINDOW = 64
# A character is at most 4 UTF-8 bytes: a token that still decodes to a partial character
# after this many more will never complete one, so its replacement character is sent.
_MAX_HELD_TOKENS = 6


class TransformersOptions(ProviderOptions):
    model_path: Path  # a directory as save_pretrained writes it
    model_name: str
    dtype: Literal["float32", "bfloat16"] = "float32"
    n_threads: int = 0  # 0: DANLU_LLAMA_THREADS, or one per core
    n_ctx: int | None = None  # None: the model's own maximum
    owned_by: str = "danlu"
    chat_template: str | None = None  # overrides the tokenizer's


def missing_packages() -> list[str]:
    """torch and transformers, where not importable."""
    return [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]


class TransformersProvider(Provider):
    """Runs one transformers checkpoint directory as one chat model."""

    type = "transformers"
    Options = TransformersOptions

    @classmethod
    def unavailable_reason(cls, options: ProviderOptions) -> str | None:
        assert isinstance(options, TransformersOptions)
        missing = missing_packages()
        if missing:
            return f"{' and '.join(missing)} not installed ({INSTALL_HINT})"
        if not options.model_path.is_dir():
            return f"model directory {options.model_path} does not exist"
        if not (options.model_path / "config.json").is_file():
            return f"model directory {options.model_path} has no config.json"
        return None

    async def load(self) -> Sequence[Model]:
        options = self.options
        assert isinstance(options, TransformersOptions)
        reason = self.unavailable_reason(options)
        if reason:
            raise RuntimeError(reason)
        threads = options.n_threads or self.settings.resolved_llama_threads
        executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"transformers-{options.model_name}"
        )
        loop = asyncio.get_running_loop()
        try:
            # Loaded on the model's own thread: torch's thread count is set there too.
            model, tokenizer = await loop.run_in_executor(
                executor, _load, options.model_path, options.dtype, threads
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._model = TransformersChatModel(
            options.model_name,
            model=model,
            tokenizer=tokenizer,
            executor=executor,
            owned_by=options.owned_by,
            provider=self.name,
            scheduler=FairScheduler(1, self.settings.queue_max_waiting, name=options.model_name),
            n_ctx=options.n_ctx,
            chat_template=options.chat_template,
        )
        return [self._model]

    async def aclose(self) -> None:
        model = getattr(self, "_model", None)
        if model is not None:
            model.close()


def _load(path: Path, dtype: str, threads: int) -> tuple[Any, Any]:
    torch: Any = importlib.import_module("torch")
    transformers: Any = importlib.import_module("transformers")
    torch.set_num_threads(threads)
    # Never the network (the hub is danlu's own), never code from the repo, never pickles.
    common = {"local_files_only": True, "trust_remote_code": False}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), **common)
        major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
        # transformers 4.56 renamed torch_dtype to dtype (and warns about the old name).
        dtype_arg = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path),
            use_safetensors=True,
            **{dtype_arg: getattr(torch, dtype)},
            **common,
        )
    except Exception as exc:
        raise RuntimeError(f"cannot load the transformers model in {path}: {exc}") from exc
    model.eval()
    return model, tokenizer


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
    logit_bias: dict[int, float]
    top_logprobs: int | None = None  # None: no logprobs; 0-20: how many alternatives


class _Detokenizer:
    """Token ids → text, a piece at a time, without splitting characters.

    Decoding one token alone loses what depends on its neighbours (SentencePiece's
    leading spaces, characters spread over byte tokens), so each step decodes a short
    window and sends what the window added — once it no longer ends in a partial
    character.
    """

    def __init__(self, decode: Callable[[list[int]], str]):
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # where the window starts
        self._read = 0  # up to where text was sent

    def add(self, token: int) -> str:
        self._ids.append(token)
        sent = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        partial = text.endswith("\ufffd") and len(self._ids) - self._read < _MAX_HELD_TOKENS
        if len(text) <= len(sent) or partial:
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return text[len(sent) :]

    def flush(self) -> str:
        sent = self._decode(self._ids[self._prefix : self._read])
        text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return text[len(sent) :]


class TransformersChatModel(ChatModel):
    """A transformers causal LM; also serves raw-text ``/v1/completions``."""

    supports_completions = True

    def __init__(
        self,
        model_id: str,
        *,
        model: Any,
        tokenizer: Any,
        executor: ThreadPoolExecutor,
        owned_by: str,
        provider: str,
        scheduler: FairScheduler,
        n_ctx: int | None = None,
        chat_template: str | None = None,
    ):
        super().__init__(model_id, owned_by=owned_by, provider=provider)
        self._torch: Any = importlib.import_module("torch")
        self._model = model
        self._tokenizer = tokenizer
        self._executor = executor
        self._scheduler = scheduler
        # The event loop encodes prompts while the model's thread decodes answers; a
        # tokenizer is not safe to share between threads (fast ones can fail with
        # "Already borrowed"), so every use takes this lock, each for microseconds.
        self._tokenizer_lock = threading.Lock()
        self.finished: Counter[str] = Counter()
        self._template = chat_template or _default_template(tokenizer) or _FALLBACK_TEMPLATE
        self._vocab = int(getattr(model.config, "vocab_size", None) or len(tokenizer))
        self._eos = _eos_ids(model, tokenizer)
        self._context = _context_length(model, tokenizer, n_ctx)
        parameters = inspect.signature(model.forward).parameters
        # transformers 5 renamed past_key_values to cache (and warns about the old name).
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        # Only the last position's logits are needed; without this the first pass of a
        # long prompt would hold prompt × vocabulary floats.
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}

    @property
    def context_length(self) -> int:
        return self._context

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
        """The prompt tokens for a chat request, via the tokenizer's chat template."""
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
        with self._tokenizer_lock:
            try:
                prompt = self._tokenizer.apply_chat_template(
                    messages,
                    chat_template=self._template,
                    add_generation_prompt=True,
                    tokenize=False,
                )
            except Exception as exc:  # the template raised (e.g. roles out of order)
                raise InvalidRequest(
                    f"the chat template of {self.id!r} refused the messages: {exc}"
                ) from exc
            # The template writes the special tokens (BOS included) itself.
            return list(self._tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def _encode(self, text: str) -> list[int]:
        with self._tokenizer_lock:
            return list(self._tokenizer(text, add_special_tokens=True)["input_ids"])

    def _decode(self, tokens: list[int]) -> str:
        with self._tokenizer_lock:
            text: str = self._tokenizer.decode(tokens, skip_special_tokens=True)
        return text

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
        response_format = getattr(request, "response_format", None)
        if response_format and response_format.get("type") != "text":
            # llama.cpp constrains output with a grammar; nothing here does, and an answer
            # that merely hopes to be JSON would be a silently degraded one.
            raise Unsupported(
                f"model {self.id!r} does not support response_format "
                f"{response_format.get('type')!r}; only text",
                param="response_format",
            )
        if isinstance(request, CompletionRequest) and request.best_of not in (None, request.n):
            raise Unsupported(f"model {self.id!r} does not support best_of", param="best_of")
        knobs: dict[str, Any] = {}
        for name, value in (request.model_extra or {}).items():
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
            logit_bias=self._logit_bias(request.logit_bias),
            top_logprobs=_top_logprobs(request),
        )

    def _logit_bias(self, bias: dict[str, float] | None) -> dict[int, float]:
        if not bias:
            return {}
        result = {}
        for key, value in bias.items():
            if not key.isdigit() or int(key) >= self._vocab:
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
        encoded = [self._encode(p) for p in prompts]
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
            with self._torch.inference_mode():
                finished = self._decode_loop(tokens, sampling, emit, cancel)
            self.finished[finished.reason] += 1
            emit(finished)
        except BaseException as exc:
            emit(exc)

    def _forward(self, tokens: list[int], cache: Any) -> tuple[Any, Any]:
        """Feed ``tokens`` after what ``cache`` holds: (next-token logits, the cache)."""
        torch = self._torch
        out = self._model(
            input_ids=torch.tensor([tokens], dtype=torch.long),
            use_cache=True,
            **{self._cache_arg: cache},
            **self._keep_last,
        )
        return out.logits[0, -1].float(), getattr(out, self._cache_arg)

    def _decode_loop(
        self,
        tokens: list[int],
        sampling: _Sampling,
        emit: Callable[[_Piece | BaseException], None],
        cancel: threading.Event,
    ) -> _Finished:
        torch = self._torch
        generator = torch.Generator().manual_seed(
            secrets.randbits(63) if sampling.seed is None else sampling.seed
        )
        recent: deque[int] = deque(tokens[-_PENALTY_WINDOW:], maxlen=_PENALTY_WINDOW)
        detokenizer = _Detokenizer(self._decode)
        held = ""  # text not yet sent because it might begin a stop sequence
        count = 0
        reason = "length"
        stops = sampling.stops
        cut: int | None = None
        if cancel.is_set():
            return _Finished("cancelled", 0)
        logits, cache = self._forward(tokens, None)
        while True:
            if cancel.is_set():
                reason = "cancelled"
                break
            token = self._pick(logits, sampling, recent, generator)
            if token in self._eos:
                reason = "stop"
                break
            count += 1
            recent.append(token)
            if sampling.top_logprobs is not None:
                emit(_Logprob(self._logprob_entry(logits, token, sampling.top_logprobs)))
            held += detokenizer.add(token)
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
            logits, cache = self._forward([token], cache)
        if cut is None and reason != "cancelled":  # what follows a stop sequence is never sent
            held += detokenizer.flush()
            cut = _first_stop(held, stops) if stops else None
            if cut is not None:
                held, reason = held[:cut], "stop"
        if held and reason != "cancelled":
            emit(held)
        return _Finished(reason, count)

    def _pick(self, logits: Any, sampling: _Sampling, recent: deque[int], generator: Any) -> int:
        """The next token: llama.cpp's order of penalties, filters and temperature."""
        torch = self._torch
        logits = logits.clone()
        for token, bias in sampling.logit_bias.items():
            logits[token] += bias
        if recent and (
            sampling.repeat_penalty != 1.0
            or sampling.presence_penalty
            or sampling.frequency_penalty
        ):
            counts = Counter(recent)
            seen = torch.tensor(list(counts), dtype=torch.long)
            values = logits[seen]
            if sampling.repeat_penalty != 1.0:
                values = torch.where(
                    values > 0, values / sampling.repeat_penalty, values * sampling.repeat_penalty
                )
            frequency = torch.tensor(list(counts.values()), dtype=logits.dtype)
            values = values - frequency * sampling.frequency_penalty - sampling.presence_penalty
            logits[seen] = values
        if sampling.temperature <= 0:
            return int(torch.argmax(logits))
        if 0 < sampling.top_k < logits.numel():
            cutoff = torch.topk(logits, sampling.top_k).values[-1]
            logits[logits < cutoff] = -float("inf")
        if sampling.typical_p < 1.0:
            logits = _typical(torch, logits, sampling.typical_p)
        if sampling.top_p < 1.0:
            logits = _top_p(torch, logits, sampling.top_p)
        if sampling.min_p > 0.0:
            probs = torch.softmax(logits, dim=-1)
            logits[probs < sampling.min_p * probs.max()] = -float("inf")
        probs = torch.softmax(logits / sampling.temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))

    def _logprob_entry(self, logits: Any, token: int, top: int) -> dict[str, Any]:
        """``token``'s log probability and the ``top`` likeliest alternatives.

        From the raw logits, before bias, penalties and temperature, as llama_cpp reports.
        """
        torch = self._torch
        logprobs = torch.log_softmax(logits.double(), dim=-1)
        entry = self._token_logprob(token, float(logprobs[token]))
        best: list[int] = []
        if top:
            best = [int(t) for t in torch.topk(logprobs, min(top, logprobs.numel())).indices]
        entry["top_logprobs"] = [self._token_logprob(t, float(logprobs[t])) for t in best]
        return entry

    def _token_logprob(self, token: int, logprob: float) -> dict[str, Any]:
        text = self._decode([token])
        return {
            "token": text,
            "logprob": max(logprob, -9999.0),  # JSON has no -inf
            "bytes": list(text.encode("utf-8")),
        }


def _top_p(torch: Any, logits: Any, top_p: float) -> Any:
    """Keep the fewest likeliest tokens whose probabilities sum to at least ``top_p``."""
    ordered, order = torch.sort(logits, descending=True)
    probs = torch.softmax(ordered, dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= top_p  # the mass before each token is enough
    logits[order[drop]] = -float("inf")
    return logits


def _typical(torch: Any, logits: Any, typical_p: float) -> Any:
    """Locally typical sampling: tokens whose surprise is closest to the entropy."""
    log_probs = torch.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    entropy = -(torch.nan_to_num(probs * log_probs)).sum()
    distance = (-log_probs - entropy).abs()
    order = torch.argsort(distance)
    kept = probs[order]
    drop = kept.cumsum(dim=-1) - kept >= typical_p
    logits[order[drop]] = -float("inf")
    return logits


def _default_template(tokenizer: Any) -> str | None:
    """The tokenizer's chat template; of several named ones (tool use, RAG…), "default"."""
    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default") or next(iter(template.values()), None)
    return template if isinstance(template, str) else None


def _eos_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """Every token that ends a turn: the generation config's and the tokenizer's EOS."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list | tuple):
        ids.update(int(t) for t in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return frozenset(ids)


def _context_length(model: Any, tokenizer: Any, wanted: int | None) -> int:
    """The context window: the model's trained maximum, or less if configured so.

    Past its maximum a model's positions are out of what it learnt, so a larger
    ``n_ctx`` is cut down to it rather than honoured.
    """
    config = model.config
    native = next(
        (
            int(value)
            for name in ("max_position_embeddings", "n_positions", "max_sequence_length")
            if isinstance(value := getattr(config, name, None), int) and value > 0
        ),
        None,
    )
    if native is None:
        limit = getattr(tokenizer, "model_max_length", None)
        native = int(limit) if isinstance(limit, int) and 0 < limit < 10**7 else None
    if wanted is None:
        return native or 2048
    return min(wanted, native) if native else wanted
