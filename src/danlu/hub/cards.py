"""Repo cards: README.md with YAML metadata, parsed and validated.

The metadata block (between ``---`` lines at the top of README.md) carries the
fields the hub indexes: license, language, tags, pipeline_tag (or task),
library_name, base_model and datasets. A malformed block is refused with a
message naming the field, both at commit time and by ``validate-yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from danlu.core.errors import InvalidRequest

_LIST_FIELDS = ("language", "tags", "base_model", "datasets", "metrics")
_TEXT_FIELDS = ("license", "pipeline_tag", "task", "library_name", "license_name", "model_name")
MAX_CARD_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Card:
    metadata: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def tags(self) -> list[str]:
        """Everything a repo can be filtered by, as HF-style tags."""
        found: list[str] = list(self.metadata.get("tags", []))
        for key in ("library_name", "pipeline_tag", "task"):
            if self.metadata.get(key):
                found.append(str(self.metadata[key]))
        found += [f"license:{self.metadata['license']}"] if self.metadata.get("license") else []
        found += [f"language:{lang}" for lang in self.metadata.get("language", [])]
        found += [f"base_model:{m}" for m in self.metadata.get("base_model", [])]
        found += [f"dataset:{d}" for d in self.metadata.get("datasets", [])]
        return list(dict.fromkeys(found))


def split_front_matter(text: str) -> tuple[str | None, str]:
    """The YAML block and the rest; (None, text) when there is no block."""
    if not text.startswith("---"):
        return None, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return None, text
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            return "".join(lines[1:index]), "".join(lines[index + 1 :])
    raise InvalidRequest(
        "README.md opens a YAML block with '---' but never closes it", param="README.md"
    )


def parse_metadata(block: str) -> dict[str, Any]:
    """Parse and check a YAML metadata block (also the body of validate-yaml)."""
    try:
        data = yaml.safe_load(block) if block.strip() else {}
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the card's YAML is invalid: {exc}", param="README.md") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidRequest("the card's YAML must be a mapping of fields", param="README.md")
    metadata: dict[str, Any] = dict(data)
    for name in _TEXT_FIELDS:
        value = metadata.get(name)
        if value is not None and not isinstance(value, str | int | float):
            raise InvalidRequest(f"card field {name!r} must be a single value", param=name)
        if value is not None:
            metadata[name] = str(value)
    for name in _LIST_FIELDS:
        value = metadata.get(name)
        if value is None:
            continue
        items = [value] if isinstance(value, str | int | float) else value
        if not isinstance(items, list) or not all(isinstance(i, str | int | float) for i in items):
            raise InvalidRequest(
                f"card field {name!r} must be a text or a list of texts", param=name
            )
        metadata[name] = [str(i) for i in items]
    if "task" in metadata and "pipeline_tag" not in metadata:
        metadata["pipeline_tag"] = metadata["task"]  # ModelScope calls it task
    return metadata


def parse_card(data: bytes) -> Card:
    if len(data) > MAX_CARD_BYTES:
        raise InvalidRequest(f"README.md is larger than {MAX_CARD_BYTES} bytes", param="README.md")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("README.md is not UTF-8 text", param="README.md") from None
    block, body = split_front_matter(text)
    return Card(parse_metadata(block) if block is not None else {}, body)
