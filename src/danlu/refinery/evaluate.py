"""Evaluation on the held-out split, run on the base and on the refined model alike.

Two kinds of numbers: the loss (and perplexity) of the held-out answers, cheap and
always available; and task metrics on answers the model generates (greedy, so that two
runs agree) for the held-out prompts, which cost a generation each and are therefore
measured on at most ``generations`` conversations. The first few generations double as
the samples a person reads side by side, base against refined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from danlu.refinery.data import Message
from danlu.refinery.metrics import task_metrics
from danlu.refinery.template import IGNORE, ChatTemplate, Example, stop_token_ids
from danlu.refinery.train import collate, pad_id, token_loss_sum, torch_threads


@dataclass
class Evaluation:
    metrics: dict[str, float]
    samples: list[dict[str, str]] = field(default_factory=list)  # prompt, reference, output


def held_out_loss(
    model: Any, tokenizer: Any, examples: Sequence[Example], *, batch_size: int = 4
) -> dict[str, float]:
    """Mean loss per answer token over ``examples``, and its perplexity."""
    total, count = 0.0, 0
    pad = pad_id(tokenizer)
    with _evaluating(model), torch.no_grad():
        for start in range(0, len(examples), batch_size):
            batch = collate(examples[start : start + batch_size], pad)
            total += float(token_loss_sum(model, batch))
            count += int((batch[2][:, 1:] != IGNORE).sum())
    if count == 0:
        return {}
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0))}


def split_for_generation(messages: Sequence[Message]) -> tuple[list[Message], str]:
    """The conversation up to its last assistant turn, and that turn (the reference)."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return list(messages[:last]), messages[last]["content"]


def generate(
    model: Any,
    tokenizer: Any,
    template: ChatTemplate,
    prompts: Sequence[Sequence[Message]],
    *,
    max_new_tokens: int = 64,
) -> list[str]:
    """Greedy answers to each conversation, rendered with the serving template."""
    from transformers import GenerationConfig

    stop = stop_token_ids(tokenizer, template)
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=stop,
        pad_token_id=pad_id(tokenizer),
        use_cache=True,
    )
    answers = []
    with _evaluating(model), torch.no_grad():
        for messages in prompts:
            text = template.render(messages, add_generation_prompt=True)
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
            output = model.generate(
                input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
            )
            new = output[0, ids.shape[1] :].tolist()
            answers.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    return answers


def evaluate(
    model: Any,
    tokenizer: Any,
    template: ChatTemplate,
    conversations: Sequence[Sequence[Message]],
    examples: Sequence[Example],
    *,
    json_schema: dict[str, Any] | None = None,
    max_new_tokens: int = 64,
    generations: int = 20,
    samples: int = 3,
    threads: int | None = None,
) -> Evaluation:
    """Loss over ``examples`` (the held-out split encoded like training data) and task
    metrics over greedy answers to the first ``generations`` held-out ``conversations``;
    ``threads`` as for :func:`~danlu.refinery.train.train`."""
    with torch_threads(threads):
        metrics = held_out_loss(model, tokenizer, examples) if examples else {}
        chosen = [split_for_generation(c) for c in list(conversations)[:generations]]
        outputs = generate(
            model, tokenizer, template, [p for p, _ in chosen], max_new_tokens=max_new_tokens
        )
    references = [r for _, r in chosen]
    metrics.update(task_metrics(outputs, references, json_schema=json_schema))
    shown = [
        {"prompt": _last_user(prompt), "reference": reference, "output": output}
        for (prompt, reference), output in list(zip(chosen, outputs, strict=True))[:samples]
    ]
    return Evaluation(metrics, shown)


def compare(before: Evaluation, after: Evaluation) -> dict[str, Any]:
    """What a job stores and a model card shows: metrics before and after, and samples side
    by side (``prompt``, ``reference``, ``before``, ``after``)."""
    return {
        "before": before.metrics,
        "after": after.metrics,
        "samples": [
            {
                "prompt": a["prompt"],
                "reference": a["reference"],
                "before": b["output"],
                "after": a["output"],
            }
            for b, a in zip(before.samples, after.samples, strict=False)
        ],
    }


def _last_user(messages: Sequence[Message]) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else ""


class _evaluating:
    """Eval mode inside, the previous mode after: evaluation may run mid-training."""

    def __init__(self, model: Any):
        self.model = model
        self.was_training = bool(model.training)

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        self.model.train(self.was_training)
