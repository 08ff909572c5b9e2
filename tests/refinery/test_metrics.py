"""Task metrics on known strings."""

from __future__ import annotations

import sys

import pytest

from danlu.refinery.metrics import (
    exact_match,
    parse_json,
    rouge_l,
    schema_errors,
    task_metrics,
    tokens,
)


def test_exact_match_ignores_spacing_and_width() -> None:
    assert exact_match("  Hello   world\n", "Hello world") == 1.0
    assert exact_match("ＡＢＣ１２３", "ABC123") == 1.0  # full-width forms
    assert exact_match("Hello world.", "Hello world") == 0.0


def test_rouge_l_words_for_english() -> None:
    assert tokens("The cat, sat!") == ["the", "cat", "sat"]
    # LCS "the cat on the mat" = 5 of 6 tokens each way
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("completely different", "nothing shared") == 0.0
    assert rouge_l("", "") == 1.0
    assert rouge_l("", "x") == 0.0


def test_rouge_l_characters_for_chinese() -> None:
    assert tokens("我爱Python 3") == ["我", "爱", "python", "3"]
    assert rouge_l("我喜欢猫", "我喜欢狗") == pytest.approx(0.75)
    # LCS 退款到: precision 3/3, recall 3/8
    assert rouge_l("退款到", "退款会退到原账户") == pytest.approx(2 * (3 / 8) / (1 + 3 / 8))


def test_parse_json_allows_a_code_fence() -> None:
    assert parse_json('```json\n{"a": 1}\n```') == (True, {"a": 1})
    assert parse_json(" [1, 2] ") == (True, [1, 2])
    assert parse_json("{'a': 1}")[0] is False


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("with_jsonschema", [True, False])
def test_schema_validation_with_and_without_jsonschema(
    with_jsonschema: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not with_jsonschema:
        monkeypatch.setitem(sys.modules, "jsonschema", None)  # import now fails
    assert schema_errors({"name": "a", "age": 3}, SCHEMA) == []
    assert schema_errors({"name": "a"}, SCHEMA)
    assert schema_errors({"name": "a", "age": -1}, SCHEMA)
    assert schema_errors({"name": "a", "age": 1, "extra": True}, SCHEMA)
    assert schema_errors({"name": 5, "age": 1}, SCHEMA)
    assert schema_errors([{"name": "a", "age": 1}], {"type": "array", "items": SCHEMA}) == []
    assert schema_errors(["x"], {"type": "array", "items": SCHEMA})


def test_task_metrics() -> None:
    predictions = ['{"name": "x", "age": 3}', '```json\n{"name": "y"}\n```', "not json"]
    references = ['{"name": "x", "age": 3}', '{"name": "y", "age": 4}', '{"name": "z", "age": 5}']
    metrics = task_metrics(predictions, references, json_schema=SCHEMA)
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["json_valid"] == pytest.approx(2 / 3)
    assert metrics["json_schema_valid"] == pytest.approx(1 / 3)
    # JSON references make JSON validity count even without a schema; prose does not
    assert "json_valid" in task_metrics(predictions, references)
    prose = task_metrics(["a b"], ["a c"])
    assert prose == {"exact_match": 0.0, "rouge_l": 0.5}
    assert task_metrics([], []) == {}
