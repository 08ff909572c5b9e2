"""Fine-tuning datasets: rows from files, their format, conversations, checks and the split.

Three row formats are read, told apart per dataset by their fields, and normalised to
OpenAI messages (``[{"role": ..., "content": ...}]``), the one shape the rest of the
refinery knows. Everything is checked before training starts, and every problem of the
whole dataset is reported at once, counted and with the rows to look at, because a job
that fails at step 300 over row 17 wastes an afternoon.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from danlu.refinery.errors import DatasetInvalid

Message = dict[str, str]
SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
ROLES = ("system", "user", "assistant")
# What each format's rows look like, for error messages.
FORMATS = {
    "openai": 'OpenAI messages: {"messages": [{"role": "user", "content": "…"}, '
    '{"role": "assistant", "content": "…"}]}',
    "sharegpt": 'ShareGPT: {"conversations": [{"from": "human", "value": "…"}, '
    '{"from": "gpt", "value": "…"}]}',
    "alpaca": 'Alpaca: {"instruction": "…", "input": "… (optional)", "output": "…", '
    '"system": "… (optional)"}',
}
_SIGNATURES = {
    "openai": ("messages",),
    "sharegpt": ("conversations",),
    "alpaca": ("instruction", "output"),
}
_SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
_OPENAI_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
_SHOWN = 5  # rows named per problem; the count says how many more


@dataclass(frozen=True)
class Dataset:
    """Conversations in OpenAI messages, and where each came from (``"17"``, ``"a.csv:17"``)."""

    format: str
    conversations: list[list[Message]]
    rows: list[str]

    def __len__(self) -> int:
        return len(self.conversations)


# --- reading files -----------------------------------------------------------------------


def read_rows(name: str, data: bytes) -> list[tuple[int, Any]]:
    """The rows of one file as ``(row number, value)``; JSONL rows are numbered by line.

    CSV cells that hold JSON lists or objects (a ``messages`` column) are parsed, so a
    spreadsheet export of chat data reads like its JSONL twin.
    """
    suffix = PurePosixPath(name.lower()).suffix
    if suffix not in SUFFIXES:
        raise DatasetInvalid(
            [
                f"{name}: {suffix or 'no extension'} files are not training data; "
                f"use {', '.join(SUFFIXES)}"
            ]
        )
    if suffix == ".parquet":
        return _parquet_rows(name, data)
    text = _decode(name, data)
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [
            (number, {k: _cell(v) for k, v in row.items() if k is not None})
            for number, row in enumerate(reader, 1)
        ]
    if suffix == ".jsonl":
        rows, broken = [], []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except ValueError as exc:
                broken.append((number, exc))
        if broken:
            raise DatasetInvalid(
                [
                    f"{name}: {len(broken)} lines are not valid JSON "
                    f"(lines {_some(str(n) for n, _ in broken)}); the first: {broken[0][1]}"
                ]
            )
        return rows
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise DatasetInvalid([f"{name} is not valid JSON: {exc}"]) from None
    if isinstance(document, dict):  # {"data": [...]}: a list of rows under one key
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DatasetInvalid(
                [
                    f"{name} holds a JSON object; training data is a list of rows "
                    "(or an object with exactly one list of rows)"
                ]
            )
        document = lists[0]
    if not isinstance(document, list):
        raise DatasetInvalid([f"{name} holds a single JSON value; training data is a list of rows"])
    return list(enumerate(document, 1))


def _decode(name: str, data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # Chinese spreadsheets export GB18030
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DatasetInvalid([f"{name} is neither UTF-8 nor GB18030 text"])


def _cell(value: str | None) -> Any:
    if value is None:
        return None
    stripped = value.strip()
    if stripped[:1] in ("[", "{"):
        try:
            return json.loads(stripped)
        except ValueError:
            return value
    return value


def _parquet_rows(name: str, data: bytes) -> list[tuple[int, Any]]:
    import pyarrow.parquet as pq  # only Parquet files need it

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several kinds for damaged files
        raise DatasetInvalid([f"{name} is not a readable Parquet file: {exc}"]) from None
    return list(enumerate(table.to_pylist(), 1))


# --- formats and normalisation -------------------------------------------------------------


def detect_format(rows: Sequence[Any]) -> str:
    """The format most rows match: ``openai``, ``sharegpt`` or ``alpaca``.

    Decided for the dataset as a whole, so a few broken rows are reported as such
    instead of turning the dataset into "unknown format".
    """
    objects = [row for row in rows if isinstance(row, dict)]
    counts = {
        fmt: sum(all(f in row for f in fields) for row in objects)
        for fmt, fields in _SIGNATURES.items()
    }
    best = max(counts, key=lambda fmt: counts[fmt])
    if counts[best]:
        return best
    if not objects:
        raise DatasetInvalid(["the rows are not JSON objects; " + _accepted()])
    seen = sorted({str(key) for row in objects[:200] for key in row})
    shown = ", ".join(seen[:20]) + (", …" if len(seen) > 20 else "")
    raise DatasetInvalid(
        [
            f"the dataset's format is not recognised: its rows have the fields "
            f"{shown}; " + _accepted()
        ]
    )


def _accepted() -> str:
    return "accepted formats are " + "; ".join(FORMATS.values())


class _Problems:
    """Faults by kind, with the rows that have them, turned into one line per kind."""

    def __init__(self, total: int):
        self.total = total
        self.rows: dict[str, list[str]] = defaultdict(list)
        self.details: dict[str, set[str]] = defaultdict(set)
        self.added = 0  # faults noted so far: a row is good if it adds none

    def add(self, kind: str, row: str, detail: str | None = None) -> None:
        self.added += 1
        if not self.rows[kind] or self.rows[kind][-1] != row:
            self.rows[kind].append(row)
        if detail is not None:
            self.details[kind].add(detail)

    def lines(self, describe: dict[str, str]) -> list[str]:
        out = []
        for kind, text in describe.items():
            rows = self.rows.get(kind)
            if not rows:
                continue
            detail = ", ".join(sorted(self.details[kind]))
            if len(rows) == 1:  # "1 of 3 rows has", not "have"
                verb, rest = text.split(" ", 1)
                text = f"{_SINGULAR.get(verb, verb)} {rest}".replace(
                    "not JSON objects", "not a JSON object"
                )
            out.append(
                f"{len(rows)} of {self.total} rows {text.format(detail=detail)} "
                f"({'row' if len(rows) == 1 else 'rows'} {_some(rows)})"
            )
        return out


_SINGULAR = {"have": "has", "are": "is", "lack": "lacks"}


def _some(labels: Any) -> str:
    labels = list(labels)
    return ", ".join(labels[:_SHOWN]) + (", …" if len(labels) > _SHOWN else "")


def _describe(fmt: str) -> dict[str, str]:
    fields = " and ".join(repr(f) for f in _SIGNATURES[fmt])
    turns = "'role' and 'content'" if fmt == "openai" else "'from' and 'value'"
    roles = "system, user, assistant" if fmt != "sharegpt" else "system, human, gpt"
    return {
        "not_object": "are not JSON objects",
        "missing": f"lack {fields}, which rows of the {fmt} format have",
        "not_list": f"have a {fields} that is not a list of turns",
        "bad_turn": f"have turns that are not objects with {turns}",
        "unknown_role": f"have unknown roles ({{detail}}); the roles are {roles}",
        "not_text": "have content that is not text",
        "empty": "have empty turns (no text)",
        "order": "have roles out of order (a conversation is an optional system turn, then "
        "user and assistant turns alternating, starting with user and ending with assistant)",
        "no_assistant": "have no assistant turn, so nothing to learn",
    }


def load_dataset(files: Sequence[tuple[str, bytes]]) -> Dataset:
    """Read, detect, normalise and check the files of one dataset, or raise
    :class:`DatasetInvalid` listing every problem found."""
    labelled: list[tuple[str, Any]] = []
    unreadable: list[str] = []
    for name, data in files:
        try:
            file_rows = read_rows(name, data)
        except DatasetInvalid as exc:  # go on: report every broken file at once
            unreadable += exc.problems
            continue
        for number, row in file_rows:
            label = str(number) if len(files) == 1 else f"{name}:{number}"
            labelled.append((label, row))
    if unreadable:
        raise DatasetInvalid(unreadable)
    if not labelled:
        raise DatasetInvalid(["the dataset has no rows"])
    fmt = detect_format([row for _, row in labelled])
    problems = _Problems(len(labelled))
    conversations, rows = [], []
    for label, row in labelled:
        messages = _normalise(row, fmt, label, problems)
        if messages is not None:
            conversations.append(messages)
            rows.append(label)
    lines = problems.lines(_describe(fmt))
    if lines:
        raise DatasetInvalid(lines)
    return Dataset(fmt, conversations, rows)


def _normalise(row: Any, fmt: str, label: str, problems: _Problems) -> list[Message] | None:
    """One row as OpenAI messages, or None after noting what is wrong with it."""
    if not isinstance(row, dict):
        problems.add("not_object", label)
        return None
    if not all(row.get(f) is not None for f in _SIGNATURES[fmt]):
        problems.add("missing", label)
        return None
    before = problems.added
    if fmt == "alpaca":
        messages = _alpaca(row, label, problems)
    else:
        field, names = (
            ("messages", _OPENAI_ROLES) if fmt == "openai" else ("conversations", _SHAREGPT_ROLES)
        )
        keys = ("role", "content") if fmt == "openai" else ("from", "value")
        messages = _turns(row[field], keys, names, label, problems)
        system = row.get("system")  # some ShareGPT exports keep the system prompt beside
        prepend = fmt == "sharegpt" and isinstance(system, str) and system.strip()
        if prepend and messages and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": str(system)})
    if messages is None or problems.added != before:
        return None
    _check_order(messages, label, problems)
    return messages if problems.added == before else None


def _alpaca(row: dict[str, Any], label: str, problems: _Problems) -> list[Message] | None:
    parts = {}
    for field in ("system", "instruction", "input", "output"):
        value = row.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.add("not_text", label)
            return None
        parts[field] = value
    if not parts["instruction"].strip() or not parts["output"].strip():
        problems.add("empty", label)
        return None
    prompt = parts["instruction"]
    if parts.get("input", "").strip():
        prompt += "\n\n" + parts["input"]
    messages = [
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": parts["output"]},
    ]
    if parts.get("system", "").strip():
        messages.insert(0, {"role": "system", "content": parts["system"]})
    return messages


def _turns(
    turns: Any, keys: tuple[str, str], names: dict[str, str], label: str, problems: _Problems
) -> list[Message] | None:
    if not isinstance(turns, list):
        problems.add("not_list", label)
        return None
    messages = []
    for turn in turns:
        # ShareGPT exports from some tools keep OpenAI's keys inside "conversations".
        found = [
            k
            for k in (keys, ("role", "content"))
            if isinstance(turn, dict) and all(x in turn for x in k)
        ]
        if not found:
            problems.add("bad_turn", label)
            continue
        role_key, content_key = found[0]
        raw_role = turn[role_key]
        role = names.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            problems.add("unknown_role", label, repr(raw_role))
            continue
        content = _text(turn[content_key])
        if content is None:
            problems.add("not_text", label)
            continue
        if not content.strip():
            problems.add("empty", label)
            continue
        messages.append({"role": role, "content": content})
    return messages


def _text(content: Any) -> str | None:
    """A turn's text; OpenAI's list of parts is joined when every part is text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return "".join(p["text"] for p in content)
    return None


def _check_order(messages: list[Message], label: str, problems: _Problems) -> None:
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        problems.add("no_assistant", label)
        return
    body = roles[1:] if roles[0] == "system" else roles
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(body))]
    if body != expected or body[-1] != "assistant":
        problems.add("order", label)


# --- the split -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Which conversations train and which are held out for evaluation, by index."""

    seed: int
    fraction: float
    train: tuple[int, ...]
    held_out: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """What a job stores: sizes for people, the held-out indices to redo the split."""
        return {
            "seed": self.seed,
            "fraction": self.fraction,
            "total": len(self.train) + len(self.held_out),
            "train": len(self.train),
            "held_out": len(self.held_out),
            "held_out_indices": list(self.held_out),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        held = tuple(sorted(int(i) for i in data["held_out_indices"]))
        chosen = set(held)
        train = tuple(i for i in range(int(data["total"])) if i not in chosen)
        return cls(int(data["seed"]), float(data["fraction"]), train, held)


MIN_HELD_OUT = 5


def make_split(
    total: int, *, fraction: float = 0.1, seed: int = 42, minimum: int = MIN_HELD_OUT
) -> Split:
    """A seeded train/held-out split of ``total`` conversations.

    The held-out part is ``fraction`` of the data but at least ``minimum`` conversations
    (so the metrics mean something), never more than a quarter of a small dataset on
    account of that minimum; ``fraction = 0`` holds nothing out.
    """
    size = round(total * fraction) if fraction > 0 else 0
    if fraction > 0 and size < minimum:
        size = min(minimum, total // 4)
    size = min(size, total - 1) if total > 0 else 0
    order = list(range(total))
    random.Random(seed).shuffle(order)  # noqa: S311 - reproducibility, not secrecy
    held = tuple(sorted(order[:size]))
    chosen = set(held)
    return Split(seed, fraction, tuple(i for i in range(total) if i not in chosen), held)


def too_long_problem(lengths: dict[str, int], total: int, max_length: int) -> str:
    """The message for samples over ``max_length`` tokens, saying how to fix it."""
    longest = max(lengths.values())
    rows = list(lengths)
    one = len(rows) == 1
    return (
        f"{len(rows)} of {total} rows {'is' if one else 'are'} longer than max_length = "
        f"{max_length} tokens ({'row' if one else 'rows'} {_some(rows)}; "
        f"the longest has {longest}): raise max_length to {_round_up(longest)} "
        "or shorten or split those conversations"
    )


def _round_up(tokens: int) -> int:
    return int(math.ceil(tokens / 64) * 64)
