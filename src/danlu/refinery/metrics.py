"""Task metrics on generated answers: exact match, ROUGE-L, JSON validity.

ROUGE-L compares the longest common subsequence of tokens. Chinese has no spaces
between words, so Chinese characters count one by one (the usual practice for
Chinese ROUGE), while runs of letters and digits count as words; the same function
thus scores Chinese, English and mixed answers sensibly.
"""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

# One token per CJK ideograph (and Japanese kana, Hangul syllable); else runs of letters
# and digits.
_TOKEN = re.compile(
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\u3040-\u30ff\uac00-\ud7af]"
    r"|[^\W_]+"
)
_FENCE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)


def normalise(text: str) -> str:
    """For exact match: Unicode NFKC (full-width to half-width), trimmed, one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return 1.0 if normalise(prediction) == normalise(reference) else 0.0


def tokens(text: str) -> list[str]:
    """Chinese (and Japanese, Korean) characters one by one, other words whole, lowercased."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 (β = 1) of two texts; 1.0 for two empty texts."""
    ours, theirs = tokens(prediction), tokens(reference)
    if not ours or not theirs:
        return 1.0 if ours == theirs else 0.0
    common = _lcs(ours, theirs)
    if common == 0:
        return 0.0
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def parse_json(text: str) -> tuple[bool, Any]:
    """``(True, value)`` if ``text`` is JSON, allowing one Markdown code fence around it
    (chat models add one by habit; the content is what matters)."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        return True, json.loads(stripped)
    except ValueError:
        return False, None


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """Why ``value`` does not follow ``schema``: jsonschema when installed, else a subset
    (type, enum, const, properties, required, additionalProperties, items, lengths, ranges)."""
    try:
        # Imported by name: jsonschema ships no type information, and is optional.
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:
        return _subset_errors(value, schema, "$")
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(value)]


_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = _TYPES.get(kind)
    return expected is not None and isinstance(value, expected)


def _subset_errors(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is_type(value, k) for k in allowed):
            return [f"{where} is not of type {' or '.join(allowed)}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where} is not {schema['const']!r}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where} lacks the required property {name!r}")
        for name, item in value.items():
            if name in properties:
                errors += _subset_errors(item, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where} has the unexpected property {name!r}")
    if isinstance(value, list):
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                errors += _subset_errors(item, schema["items"], f"{where}[{index}]")
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{where} has fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where} has more than {schema['maxItems']} items")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where} is shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where} is longer than {schema['maxLength']}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where} is above {schema['maximum']}")
    return errors


def task_metrics(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    json_schema: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Mean exact match and ROUGE-L; the JSON pass rate when the answers are meant to be
    JSON (a schema is given, or most references parse), schema-valid rate with a schema."""
    count = len(predictions)
    if count == 0:
        return {}
    result = {
        "exact_match": sum(map(exact_match, predictions, references)) / count,
        "rouge_l": sum(map(rouge_l, predictions, references)) / count,
    }
    json_answers = sum(parse_json(r)[0] for r in references) * 2 > len(references)
    if json_schema is not None or json_answers:
        parsed = [parse_json(p) for p in predictions]
        result["json_valid"] = sum(ok for ok, _ in parsed) / count
        if json_schema is not None:
            result["json_schema_valid"] = (
                sum(ok and not schema_errors(value, json_schema) for ok, value in parsed) / count
            )
    return result
