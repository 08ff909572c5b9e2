"""The training template is the serving template; only answers are learnt."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from danlu.gateway.providers.llama_cpp import _FALLBACK_TEMPLATE, LlamaChatModel
from danlu.gateway.scheduler import FairScheduler
from danlu.gateway.schemas import ChatCompletionRequest
from danlu.refinery.base import Base
from danlu.refinery.data import Dataset, make_split
from danlu.refinery.errors import DatasetInvalid
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.prepare import prepare
from danlu.refinery.template import IGNORE, ChatTemplate, Example, encode, encode_dataset

CONVERSATIONS = [
    [
        {"role": "user", "content": "What is a furnace for?"},
        {"role": "assistant", "content": "Refining things with heat."},
    ],
    [
        {"role": "system", "content": "Answer in Chinese."},
        {"role": "user", "content": "怎么退款？"},
        {"role": "assistant", "content": "在订单页点击“退款”。"},
        {"role": "user", "content": "多久到账?"},
        {"role": "assistant", "content": " 3-5 个工作日 \n"},
    ],
]


@pytest.fixture(scope="module")
def gateway(smollm2: Base) -> Any:
    """The gateway's own chat model over the same GGUF (vocabulary only: no inference)."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(smollm2.path), vocab_only=True, verbose=False)
    executor = ThreadPoolExecutor(max_workers=1)
    model = LlamaChatModel(
        "smollm2",
        llama=llama,
        executor=executor,
        owned_by="danlu",
        provider="test",
        scheduler=FairScheduler(1, name="smollm2"),
    )
    yield model
    model.close()
    llama.close()


def spans(example: Example) -> list[list[int]]:
    """The runs of learnt tokens."""
    runs: list[list[int]] = []
    previous = IGNORE
    for token, label in zip(example.input_ids, example.labels, strict=True):
        if label != IGNORE:
            if previous == IGNORE:
                runs.append([])
            runs[-1].append(token)
        previous = label
    return runs


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_training_prompts_are_the_gateways_prompts(
    messages: list[dict[str, str]], smollm2: Base, gateway: Any
) -> None:
    (example,) = encode(messages, smollm2.template, smollm2.tokenizer)
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        served = gateway.render_chat(ChatCompletionRequest(model="m", messages=messages[:index]))
        ours = smollm2.template.render(messages[:index], add_generation_prompt=True)
        assert smollm2.tokenizer(ours, add_special_tokens=False)["input_ids"] == served
        # the training sequence starts with exactly what the gateway feeds the model
        assert example.input_ids[: len(served)] == served
        if index == 2:  # the first answer: nothing before it is learnt
            assert all(label == IGNORE for label in example.labels[: len(served)])


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_only_answers_and_their_end_of_turn_are_learnt(
    messages: list[dict[str, str]], smollm2: Base
) -> None:
    (example,) = encode(messages, smollm2.template, smollm2.tokenizer)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    decoded = [smollm2.tokenizer.decode(run) for run in spans(example)]
    assert decoded == [answer + "<|im_end|>" for answer in answers]


def test_training_on_all_turns_learns_every_token(smollm2: Base) -> None:
    (example,) = encode(
        CONVERSATIONS[1], smollm2.template, smollm2.tokenizer, train_on_all_turns=True
    )
    assert example.labels == example.input_ids


def test_the_fallback_is_the_gateways_chatml() -> None:
    template = ChatTemplate(None)
    assert template.is_fallback and template.source == _FALLBACK_TEMPLATE
    text = template.render(CONVERSATIONS[0], add_generation_prompt=True)
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_a_template_that_rewrites_past_turns_gives_one_example_per_answer(
    smollm2: Base,
) -> None:
    # Like reasoning models' templates: earlier answers render differently once later
    # turns follow, so no single sequence matches what is served at each turn.
    template = ChatTemplate(
        "{% for m in messages %}<{{ m.role }}>"
        "{% if m.role == 'assistant' and not loop.last %}(past) {% endif %}"
        "{{ m.content }}</s>{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}",
        eos_token="</s>",
    )
    messages = CONVERSATIONS[1]
    examples = encode(messages, template, smollm2.tokenizer)
    assert len(examples) == 2
    for example, answer in zip(examples, ["在订单页点击“退款”。", " 3-5 个工作日 \n"], strict=True):
        assert [smollm2.tokenizer.decode(run) for run in spans(example)] == [answer + "</s>"]


def test_encode_dataset_reports_long_and_refused_rows(smollm2: Base) -> None:
    dataset = Dataset("openai", CONVERSATIONS, ["1", "2"])
    with pytest.raises(DatasetInvalid) as caught:
        encode_dataset(dataset, [0, 1], smollm2.template, smollm2.tokenizer, max_length=60)
    (problem,) = caught.value.problems
    assert problem.startswith("1 of 2 rows is longer than max_length = 60 tokens (row 2; ")
    assert problem.endswith("): raise max_length to 128 or shorten or split those conversations")
    assert (
        len(encode_dataset(dataset, [0, 1], smollm2.template, smollm2.tokenizer, max_length=512))
        == 2
    )

    strict = ChatTemplate(
        "{% for m in messages %}{% if m.role == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ m.content }}{% endfor %}"
    )
    with pytest.raises(DatasetInvalid) as caught:
        encode_dataset(dataset, [0, 1], strict, smollm2.tokenizer, max_length=512)
    assert caught.value.problems == [
        "1 of 2 rows is refused by the model's chat template (row 2): System role not supported"
    ]


def test_prepare_reads_splits_and_encodes(smollm2: Base) -> None:
    rows = [{"instruction": f"Say {i}", "output": f"{i}"} for i in range(20)]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    hp = Hyperparameters(held_out_fraction=0.2, seed=1)
    prepared = prepare([("d.jsonl", data)], smollm2.template, smollm2.tokenizer, hp)
    assert prepared.dataset.format == "alpaca"
    assert (len(prepared.train), len(prepared.held_out)) == (15, 5)  # the minimum of 5
    assert prepared.split == make_split(20, fraction=0.2, seed=1)
    first = prepared.split.held_out[0]
    assert prepared.held_out_conversations[0][0]["content"] == f"Say {first}"
    again = prepare(
        [("d.jsonl", data)], smollm2.template, smollm2.tokenizer, hp, split=prepared.split
    )
    assert again.train == prepared.train
    with pytest.raises(DatasetInvalid, match="the dataset changed since the job started"):
        prepare(
            [("d.jsonl", data[: data.rindex(b"\n")])],
            smollm2.template,
            smollm2.tokenizer,
            hp,
            split=prepared.split,
        )
