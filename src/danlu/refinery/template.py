"""The chat template a model is trained with: the one the gateway serves it with.

A model learns the exact text around its turns; train it with one template and serve it
with another and it answers worse than its base. So the template comes from the same
place the gateway reads it (a GGUF's ``tokenizer.chat_template``, a tokenizer's
``chat_template``, ChatML when there is none) and is rendered by the same code,
llama-cpp-python's ``Jinja2ChatFormatter`` (the sandboxed Jinja the gateway uses).

Conversations become ``input_ids`` and ``labels`` by rendering them prefix by prefix,
which works for any template without knowing its markup: the text the template adds
after a conversation's generation prompt, up to the assistant's end-of-turn token, is
what the model must produce, and only that is learnt (``labels`` is -100 elsewhere)
unless all turns are to be trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from danlu.core.errors import Unsupported
from danlu.gateway.providers.llama_cpp import _FALLBACK_TEMPLATE
from danlu.refinery.data import Dataset, Message, too_long_problem
from danlu.refinery.errors import DatasetInvalid

IGNORE = -100  # the label PyTorch's cross-entropy skips
FALLBACK_TEMPLATE = _FALLBACK_TEMPLATE  # the gateway's ChatML, for models without a template


class Tokenizer(Protocol):
    """What encoding needs of a (Hugging Face) tokenizer."""

    def __call__(self, text: str, *, add_special_tokens: bool = ...) -> Any: ...


class ChatTemplate:
    """A Jinja chat template with the BOS/EOS texts it is rendered with."""

    def __init__(self, source: str | None, *, bos_token: str = "", eos_token: str = ""):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.source = source or FALLBACK_TEMPLATE
        self.is_fallback = not source
        self.bos_token = bos_token
        self.eos_token = eos_token
        # Two formatters, because the generation prompt is fixed when one is made.
        self._prompt, self._turns = (
            Jinja2ChatFormatter(
                template=self.source,
                eos_token=eos_token,
                bos_token=bos_token,
                add_generation_prompt=generation,
            )
            for generation in (True, False)
        )

    @classmethod
    def from_gguf(cls, path: Path, *, override: str | None = None) -> ChatTemplate:
        """The template stored in a GGUF file, with its BOS/EOS tokens, as the gateway reads it."""
        from gguf import GGUFReader

        return cls.from_gguf_reader(GGUFReader(str(path)), override=override)

    @classmethod
    def from_gguf_reader(cls, reader: Any, *, override: str | None = None) -> ChatTemplate:
        fields = reader.fields

        def value(key: str) -> Any:
            field = fields.get(key)
            return None if field is None else field.contents()

        tokens = value("tokenizer.ggml.tokens") or []

        def text(key: str) -> str:
            token = value(key)
            return tokens[token] if isinstance(token, int) and 0 <= token < len(tokens) else ""

        return cls(
            override or value("tokenizer.chat_template"),
            bos_token=text("tokenizer.ggml.bos_token_id"),
            eos_token=text("tokenizer.ggml.eos_token_id"),
        )

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, *, override: str | None = None) -> ChatTemplate:
        """A Hugging Face tokenizer's own template (what a transformers model is served with)."""
        template = override or getattr(tokenizer, "chat_template", None)
        if isinstance(template, dict):  # several named templates: the default one
            template = template.get("default")
        return cls(
            template if isinstance(template, str) else None,
            bos_token=getattr(tokenizer, "bos_token", None) or "",
            eos_token=getattr(tokenizer, "eos_token", None) or "",
        )

    def render(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
        """The text of ``messages``; with the assistant's header after them if asked."""
        formatter = self._prompt if add_generation_prompt else self._turns
        return str(formatter(messages=cast(Any, list(messages))).prompt)


def stop_token_ids(tokenizer: Any, template: ChatTemplate) -> list[int]:
    """The ids generation stops at: the template's end-of-turn token (what the gateway
    stops on) and the tokenizer's EOS."""
    ids = []
    for token in (template.eos_token, getattr(tokenizer, "eos_token", None)):
        if token:
            found = tokenizer.convert_tokens_to_ids(token)
            if isinstance(found, int) and found != getattr(tokenizer, "unk_token_id", None):
                ids.append(found)
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class Example:
    """One training sequence; ``labels`` is ``IGNORE`` where nothing is learnt."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def encode(
    messages: Sequence[Message],
    template: ChatTemplate,
    tokenizer: Tokenizer,
    *,
    train_on_all_turns: bool = False,
) -> list[Example]:
    """A conversation as training sequences: normally one; one per assistant turn when
    the template renders earlier turns differently once later ones follow (as templates
    that drop past reasoning do), since no single sequence then matches what is served.
    """
    pieces = _pieces(messages, template)
    if pieces is not None:
        return [_tokenize(pieces, tokenizer, train_on_all_turns)]
    examples = []
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            turn = _pieces_of_last_turn(messages[: index + 1], template)
            examples.append(_tokenize(turn, tokenizer, train_on_all_turns))
    return examples


def _pieces(messages: Sequence[Message], template: ChatTemplate) -> list[tuple[str, bool]] | None:
    """The conversation's text cut into (text, learnt) pieces; None if rendering it is not
    prefix-stable (an earlier prefix is not the start of the full text)."""
    full = template.render(messages, add_generation_prompt=False)
    pieces: list[tuple[str, bool]] = []
    done = 0  # characters of ``full`` already in pieces
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = template.render(messages[:index], add_generation_prompt=True)
        after = template.render(messages[: index + 1], add_generation_prompt=False)
        if not (full.startswith(prompt) and full.startswith(after) and len(prompt) >= done):
            return None
        pieces.append((full[done : len(prompt)], False))
        learnt, rest = _answer(after[len(prompt) :], template.eos_token)
        pieces += [(learnt, True), (rest, False)]
        done = len(after)
    pieces.append((full[done:], False))
    return pieces


def _pieces_of_last_turn(
    messages: Sequence[Message], template: ChatTemplate
) -> list[tuple[str, bool]]:
    prompt = template.render(messages[:-1], add_generation_prompt=True)
    full = template.render(messages, add_generation_prompt=False)
    if not full.startswith(prompt):
        raise Unsupported(
            "this chat template renders an assistant turn differently from the prompt it "
            "serves for that turn, so the refinery cannot tell what the model should learn; "
            "give the job a chat_template whose generation prompt begins each assistant turn"
        )
    learnt, rest = _answer(full[len(prompt) :], template.eos_token)
    return [(prompt, False), (learnt, True), (rest, False)]


def _answer(turn: str, eos: str) -> tuple[str, str]:
    """Split an assistant turn's text into what the model generates (through its
    end-of-turn token) and what the template adds after it (a newline, say)."""
    end = turn.index(eos) + len(eos) if eos and eos in turn else len(turn.rstrip())
    return turn[:end], turn[end:]


def _tokenize(
    pieces: list[tuple[str, bool]], tokenizer: Tokenizer, train_on_all_turns: bool
) -> Example:
    # Each piece is tokenized alone: the prompt gets the tokens the gateway gives it, and
    # the answer the tokens the model would generate after it. No BOS is added, as in the
    # gateway: a template that wants one writes it.
    input_ids: list[int] = []
    labels: list[int] = []
    for text, learnt in pieces:
        if not text:
            continue
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        input_ids += ids
        labels += ids if (learnt or train_on_all_turns) else [IGNORE] * len(ids)
    return Example(input_ids, labels)


def encode_dataset(
    dataset: Dataset,
    indices: Sequence[int],
    template: ChatTemplate,
    tokenizer: Tokenizer,
    *,
    max_length: int,
    train_on_all_turns: bool = False,
) -> list[Example]:
    """The chosen conversations as examples, or :class:`DatasetInvalid` naming the rows
    that are too long or that the template refuses."""
    encoded = encode_rows(
        dataset,
        indices,
        template,
        tokenizer,
        max_length=max_length,
        train_on_all_turns=train_on_all_turns,
    )
    return [example for index in indices for example in encoded[index]]


def encode_rows(
    dataset: Dataset,
    indices: Sequence[int],
    template: ChatTemplate,
    tokenizer: Tokenizer,
    *,
    max_length: int,
    train_on_all_turns: bool = False,
) -> dict[int, list[Example]]:
    """Like :func:`encode_dataset`, keyed by conversation index."""
    examples: dict[int, list[Example]] = {}
    too_long: dict[str, int] = {}
    refused: dict[str, str] = {}
    for index in indices:
        label = dataset.rows[index]
        try:
            encoded = encode(
                dataset.conversations[index],
                template,
                tokenizer,
                train_on_all_turns=train_on_all_turns,
            )
        except Unsupported:
            raise
        except Exception as exc:  # the template raised (raise_exception) or failed
            refused[label] = str(exc)
            continue
        longest = max(len(e) for e in encoded)
        if longest > max_length:
            too_long[label] = longest
        examples[index] = encoded
    problems = []
    if refused:
        first = next(iter(refused.values()))
        rows = list(refused)
        problems.append(
            f"{len(rows)} of {len(indices)} rows {'is' if len(rows) == 1 else 'are'} "
            f"refused by the model's chat template ({'row' if len(rows) == 1 else 'rows'} "
            f"{', '.join(rows[:5])}{', …' if len(rows) > 5 else ''}): {first}"
        )
    if too_long:
        problems.append(too_long_problem(too_long, len(indices), max_length))
    if problems:
        raise DatasetInvalid(problems)
    return examples
