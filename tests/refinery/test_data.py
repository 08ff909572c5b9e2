"""Datasets: reading files, telling formats apart, the checks' messages, the split."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from danlu.core.errors import InvalidRequest
from danlu.refinery.data import Split, detect_format, load_dataset, make_split, read_rows
from danlu.refinery.errors import DatasetInvalid
from danlu.refinery.hyperparameters import Hyperparameters

EXPECTED = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": "4"},
]
ROWS: dict[str, dict[str, Any]] = {
    "openai": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ]
    },
    "sharegpt": {
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "2+2?"},
            {"from": "gpt", "value": "4"},
        ]
    },
    "alpaca": {"system": "Be brief.", "instruction": "2+2?", "input": "", "output": "4"},
}


def as_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    for row in rows:  # nested values as JSON text, as a spreadsheet export holds them
        writer.writerow({k: v if isinstance(v, str) else json.dumps(v) for k, v in row.items()})
    return out.getvalue().encode()


def as_parquet(rows: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), out)
    return out.getvalue()


WRITERS = {
    "train.jsonl": as_jsonl,
    "train.csv": as_csv,
    "train.parquet": as_parquet,
    "train.json": lambda rows: json.dumps(rows).encode(),
}


@pytest.mark.parametrize("fmt", list(ROWS))
@pytest.mark.parametrize("name", list(WRITERS))
def test_each_format_in_each_file_type_becomes_openai_messages(fmt: str, name: str) -> None:
    data = WRITERS[name]([ROWS[fmt], ROWS[fmt]])
    dataset = load_dataset([(name, data)])
    assert dataset.format == fmt
    assert dataset.conversations == [EXPECTED, EXPECTED]
    assert dataset.rows == ["1", "2"]


def test_alpaca_input_joins_the_instruction_and_system_is_optional() -> None:
    row = {"instruction": "Translate to French", "input": "cat", "output": "chat"}
    dataset = load_dataset([("a.jsonl", as_jsonl([row]))])
    assert dataset.conversations[0] == [
        {"role": "user", "content": "Translate to French\n\ncat"},
        {"role": "assistant", "content": "chat"},
    ]


def test_openai_content_parts_and_developer_role_are_accepted() -> None:
    row = {
        "messages": [
            {"role": "developer", "content": "Be kind."},
            {"role": "user", "content": [{"type": "text", "text": "你好"}]},
            {"role": "assistant", "content": "你好！"},
        ]
    }
    dataset = load_dataset([("a.jsonl", as_jsonl([row]))])
    assert [m["role"] for m in dataset.conversations[0]] == ["system", "user", "assistant"]
    assert dataset.conversations[0][1]["content"] == "你好"


def test_rows_of_several_files_are_labelled_with_their_file() -> None:
    files = [("a.jsonl", as_jsonl([ROWS["openai"]])), ("b.jsonl", as_jsonl([ROWS["openai"]]))]
    assert load_dataset(files).rows == ["a.jsonl:1", "b.jsonl:1"]


def test_json_object_with_one_list_of_rows_and_gb18030_csv() -> None:
    assert len(read_rows("d.json", json.dumps({"data": [ROWS["alpaca"]]}).encode())) == 1
    chinese = "instruction,output\n问候,你好\n".encode("gb18030")
    dataset = load_dataset([("d.csv", chinese)])
    assert dataset.conversations[0][1]["content"] == "你好"


def problems_of(rows: list[Any], name: str = "d.jsonl") -> list[str]:
    with pytest.raises(DatasetInvalid) as caught:
        load_dataset([(name, as_jsonl(rows))])
    assert isinstance(caught.value, InvalidRequest)  # a 400 for the HTTP layer
    return caught.value.problems


def chat(*turns: tuple[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


GOOD = chat(("user", "hi"), ("assistant", "hello"))


def test_rows_without_an_assistant_turn_are_counted_and_named() -> None:
    rows = [GOOD] * 400
    for bad in (2, 16, 41, 99, 100, 200, 300):
        rows[bad] = chat(("user", "hi"))
    assert problems_of(rows) == [
        "7 of 400 rows have no assistant turn, so nothing to learn (rows 3, 17, 42, 100, 101, …)"
    ]


def test_unknown_and_missing_roles() -> None:
    rows = [GOOD, chat(("user", "hi"), ("bot", "hello")), {"messages": [{"content": "x"}]}]
    assert problems_of(rows) == [
        "1 of 3 rows has turns that are not objects with 'role' and 'content' (row 3)",
        "1 of 3 rows has unknown roles ('bot'); the roles are system, user, assistant (row 2)",
    ]


def test_sharegpt_with_openai_keys_inside() -> None:
    row = {"conversations": [{"role": "user", "content": "hi"}, {"from": "gpt", "value": "yo"}]}
    assert load_dataset([("d.jsonl", as_jsonl([row]))]).conversations[0][1]["content"] == "yo"


def test_every_broken_file_is_reported() -> None:
    with pytest.raises(DatasetInvalid) as caught:
        load_dataset([("a.jsonl", b"{oops"), ("b.json", b"[1,"), ("c.jsonl", as_jsonl([GOOD]))])
    assert [p.split(" ")[0] for p in caught.value.problems] == ["a.jsonl:", "b.json"]


def test_sharegpt_unknown_role_names_its_own_roles() -> None:
    rows = [{"conversations": [{"from": "human", "value": "hi"}, {"from": "bard", "value": "x"}]}]
    (problem,) = problems_of(rows)
    assert "unknown roles ('bard'); the roles are system, human, gpt" in problem


def test_empty_turns_and_content_that_is_not_text() -> None:
    rows = [GOOD, chat(("user", "  "), ("assistant", "x")), chat(("user", "hi"), ("assistant", 7))]
    assert problems_of(rows) == [
        "1 of 3 rows has content that is not text (row 3)",
        "1 of 3 rows has empty turns (no text) (row 2)",
    ]


def test_roles_out_of_order() -> None:
    rows = [
        GOOD,
        chat(("assistant", "hello"), ("user", "hi"), ("assistant", "x")),  # starts with assistant
        chat(("user", "a"), ("user", "b"), ("assistant", "c")),  # two users in a row
        chat(("user", "a"), ("assistant", "b"), ("system", "c")),  # a late system turn
        chat(("user", "a"), ("assistant", "b"), ("user", "c")),  # ends with user
    ]
    (problem,) = problems_of(rows)
    assert problem.startswith("4 of 5 rows have roles out of order (a conversation is")
    assert problem.endswith("(rows 2, 3, 4, 5)")


def test_rows_of_another_format_lack_its_fields() -> None:
    assert problems_of([GOOD, GOOD, ROWS["alpaca"], "just text"]) == [
        "1 of 4 rows is not a JSON object (row 4)",
        "1 of 4 rows lacks 'messages', which rows of the openai format have (row 3)",
    ]


def test_unknown_format_says_what_it_saw_and_what_it_accepts() -> None:
    (problem,) = problems_of([{"question": "q", "answer": "a"}])
    assert problem.startswith(
        "the dataset's format is not recognised: its rows have the fields answer, question; "
        "accepted formats are OpenAI messages:"
    )
    assert "ShareGPT:" in problem and "Alpaca:" in problem


def test_several_problems_are_reported_together() -> None:
    with pytest.raises(DatasetInvalid) as caught:
        load_dataset([("d.jsonl", as_jsonl([GOOD, chat(("user", "x")), chat(("user", ""))]))])
    assert caught.value.message.startswith("the dataset has problems:\n- ")
    assert len(caught.value.problems) == 2


def test_broken_files() -> None:
    with pytest.raises(DatasetInvalid, match=r"2 lines are not valid JSON \(lines 2, 4\)"):
        read_rows("d.jsonl", b'{"a": 1}\n{oops\n\n{nope\n')
    with pytest.raises(DatasetInvalid, match="not a readable Parquet file"):
        read_rows("d.parquet", b"not parquet")
    with pytest.raises(DatasetInvalid, match=r"\.txt files are not training data"):
        read_rows("d.txt", b"hello")
    with pytest.raises(DatasetInvalid, match="has no rows"):
        load_dataset([("d.jsonl", b"\n")])


def test_detection_follows_the_majority() -> None:
    assert detect_format([ROWS["sharegpt"], ROWS["sharegpt"], ROWS["openai"]]) == "sharegpt"


def test_split_is_seeded_sized_and_recorded() -> None:
    first = make_split(400, fraction=0.1, seed=7)
    assert first == make_split(400, fraction=0.1, seed=7)
    assert first != make_split(400, fraction=0.1, seed=8)
    assert len(first.held_out) == 40 and len(first.train) == 360
    assert set(first.train).isdisjoint(first.held_out)
    assert sorted(first.train + first.held_out) == list(range(400))
    recorded = json.loads(json.dumps(first.to_dict()))
    assert recorded["held_out"] == 40 and recorded["total"] == 400
    assert Split.from_dict(recorded) == first


def test_split_minimum_and_small_datasets() -> None:
    assert len(make_split(30, fraction=0.1).held_out) == 5  # the minimum
    assert len(make_split(8, fraction=0.1).held_out) == 2  # at most a quarter for the minimum
    assert len(make_split(3, fraction=0.1).held_out) == 0
    assert len(make_split(100, fraction=0.0).held_out) == 0


def test_hyperparameters_defaults_and_checks() -> None:
    defaults = Hyperparameters.from_dict({})
    assert (defaults.lora_r, defaults.lora_alpha, defaults.learning_rate) == (16, 32, 2e-4)
    assert (defaults.epochs, defaults.batch_size, defaults.max_length) == (3, 4, 512)
    assert Hyperparameters.from_dict({"learning_rate": 1}).learning_rate == 1.0
    with pytest.raises(InvalidRequest, match="unknown hyperparameter 'lr'") as caught:
        Hyperparameters.from_dict({"lr": 0.1})
    assert caught.value.param == "hyperparameters.lr"
    with pytest.raises(InvalidRequest, match="epochs must be an integer, not True"):
        Hyperparameters.from_dict({"epochs": True})
    with pytest.raises(InvalidRequest, match=r"lora_dropout must be between 0\.0 and 0\.9, not 2"):
        Hyperparameters.from_dict({"lora_dropout": 2})
