"""Metadata filters: which documents a retrieval may return.

A filter is a JSON object in the style MongoDB, Chroma and Qdrant users know::

    {"lang": "zh", "year": {"$gte": 2024}, "tags": {"$contains": "faq"},
     "$or": [{"team": "sales"}, {"team": "support"}]}

Keys are document metadata fields; ``document_name`` and ``source`` are always
there. Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $contains $exists``,
combined with ``$and``, ``$or`` and ``$not``. A filter is checked once when the
request arrives (a mistake is a 400 naming it) and then evaluated per document,
so the chunk indexes stay free of metadata.
"""

from __future__ import annotations

from typing import Any

from danlu.core.errors import InvalidRequest

Filter = dict[str, Any]
_COMPARE = ("$gt", "$gte", "$lt", "$lte")
_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$contains", "$exists", *_COMPARE)
_MISSING = object()


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(f"filters: {message}", param="filters")


def validate(spec: Any, path: str = "filters") -> Filter:
    """Check a filter's shape; raise a 400 saying where it is wrong."""
    if not isinstance(spec, dict):
        raise _bad(f"{path} must be an object")
    for key, value in spec.items():
        where = f"{path}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _bad(f"{where} must be a non-empty list of filters")
            for i, item in enumerate(value):
                validate(item, f"{where}[{i}]")
        elif key == "$not":
            validate(value, where)
        elif key.startswith("$"):
            raise _bad(f"unknown operator {key!r} at {path}; use $and, $or or $not here")
        elif isinstance(value, dict):
            if not value:
                raise _bad(f"{where} is an empty condition")
            for op, operand in value.items():
                if op not in _OPERATORS:
                    raise _bad(f"unknown operator {op!r} at {where}; use one of {_OPERATORS}")
                if op in ("$in", "$nin") and not isinstance(operand, list):
                    raise _bad(f"{where}.{op} needs a list")
                if op in _COMPARE and not isinstance(operand, int | float | str):
                    raise _bad(f"{where}.{op} compares with a number or a string")
                if op == "$exists" and not isinstance(operand, bool):
                    raise _bad(f"{where}.$exists needs true or false")
        elif isinstance(value, list):
            raise _bad(f"{where}: to match one of several values use {{'$in': [...]}}")
    return spec


def _compare(op: str, actual: Any, operand: Any) -> bool:
    # Numbers compare with numbers and strings with strings (ISO dates sort as text);
    # anything else does not match rather than raising.
    numeric = isinstance(operand, int | float) and not isinstance(operand, bool)
    if numeric != (isinstance(actual, int | float) and not isinstance(actual, bool)):
        return False
    if not numeric and not (isinstance(actual, str) and isinstance(operand, str)):
        return False
    if op == "$gt":
        return bool(actual > operand)
    if op == "$gte":
        return bool(actual >= operand)
    if op == "$lt":
        return bool(actual < operand)
    return bool(actual <= operand)


def _condition(actual: Any, op: str, operand: Any) -> bool:
    if op == "$exists":
        return bool((actual is not _MISSING) == operand)
    if actual is _MISSING:
        return op in ("$ne", "$nin")
    if op == "$eq":
        return bool(actual == operand or (isinstance(actual, list) and operand in actual))
    if op == "$ne":
        return not _condition(actual, "$eq", operand)
    if op == "$in":
        return any(_condition(actual, "$eq", o) for o in operand)
    if op == "$nin":
        return not _condition(actual, "$in", operand)
    if op == "$contains":
        if isinstance(actual, str):
            return isinstance(operand, str) and operand in actual
        return isinstance(actual, list) and bool(operand in actual)
    return _compare(op, actual, operand)


def matches(spec: Filter, metadata: dict[str, Any]) -> bool:
    """Whether a document with ``metadata`` passes a (validated) filter."""
    for key, value in spec.items():
        if key == "$and":
            ok = all(matches(item, metadata) for item in value)
        elif key == "$or":
            ok = any(matches(item, metadata) for item in value)
        elif key == "$not":
            ok = not matches(value, metadata)
        elif isinstance(value, dict):
            actual = metadata.get(key, _MISSING)
            ok = all(_condition(actual, op, operand) for op, operand in value.items())
        else:
            ok = _condition(metadata.get(key, _MISSING), "$eq", value)
        if not ok:
            return False
    return True
