"""Training: LoRA learns, runs resume exactly, stop means stop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from danlu.core.errors import InvalidRequest, Unsupported
from danlu.refinery.base import Base
from danlu.refinery.errors import CheckpointMismatch, DatasetInvalid, TrainingCancelled
from danlu.refinery.evaluate import compare, evaluate
from danlu.refinery.export import export
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.train import plan, train
from tests.refinery.conftest import conversations, encoded

PROGRESS_KEYS = {
    "step",
    "total_steps",
    "epoch",
    "loss",
    "learning_rate",
    "tokens_per_second",
    "eta_seconds",
}


def test_lora_on_smollm2_lowers_the_loss_and_exports(fresh_smollm2: Base, tmp_path: Path) -> None:
    base = fresh_smollm2
    examples = encoded(base.template, base.tokenizer, 8)
    held_out = conversations(10)[8:]
    held_examples = encoded(base.template, base.tokenizer, 10)[8:]
    options: dict[str, Any] = {"max_new_tokens": 6, "generations": 1}
    before = evaluate(base.model, base.tokenizer, base.template, held_out, held_examples, **options)
    reports: list[dict[str, Any]] = []
    hp = Hyperparameters(max_steps=6, batch_size=2, learning_rate=1e-3, warmup_ratio=0.0)
    result = train(base, examples, hp, progress=reports.append)

    assert [r["step"] for r in reports] == list(range(1, 7))
    assert all(set(r) == PROGRESS_KEYS for r in reports)
    assert reports[-1]["total_steps"] == 6 and reports[-1]["eta_seconds"] == 0
    assert reports[0]["tokens_per_second"] > 0 and reports[-1]["epoch"] == 1.5
    losses = [r["loss"] for r in reports]
    assert min(losses[-2:]) < losses[0] / 2, losses
    trained = [n for n, p in result.model.named_parameters() if p.requires_grad]
    assert trained and all("lora_" in n for n in trained)  # the base weights stay frozen

    after = evaluate(
        result.model, base.tokenizer, base.template, held_out, held_examples, **options
    )
    assert after.metrics["loss"] < before.metrics["loss"]
    report = compare(before, after)
    assert set(report["before"]) == {"loss", "perplexity", "exact_match", "rouge_l"}
    assert report["after"]["rouge_l"] >= report["before"]["rouge_l"]
    first = report["samples"][0]
    assert first["prompt"] == "Colour of box 8?" and first["reference"] == "Box 8 is red."
    assert first["before"] != first["after"]

    # The GGUF-born model exports like any other, and reloads to the model just trained.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ids = torch.tensor([examples[0].input_ids])
    with torch.no_grad():
        expected = result.model(input_ids=ids).logits
    exported = export(result.model, base.tokenizer, base.template, tmp_path, base_name="smollm2")
    merged = AutoModelForCausalLM.from_pretrained(exported.merged)
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, expected, rtol=1e-4, atol=1e-4)
    assert AutoTokenizer.from_pretrained(exported.merged).chat_template == base.template.source


HP = Hyperparameters(
    max_steps=6,
    batch_size=2,
    gradient_accumulation=2,  # 12 examples: 3 steps an epoch, so the run crosses an epoch
    learning_rate=5e-3,
    checkpoint_every=100,
    seed=3,
)


def run(base: Base, examples: list[Any], **options: Any) -> Any:
    return train(base, examples, options.pop("hp", HP), **options)


def trainable(result: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in result.model.named_parameters() if p.requires_grad}


def assert_same_run(one: Any, other: Any) -> None:
    assert [p["step"] for p in one.curve] == [p["step"] for p in other.curve]
    for a, b in zip(one.curve, other.curve, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5, abs=1e-6)
        assert a["learning_rate"] == pytest.approx(b["learning_rate"])
    ours, theirs = trainable(one), trainable(other)
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-6)


def test_a_cancelled_run_resumes_to_the_same_result(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 12)
    straight = run(make_tiny(), examples)
    assert straight.steps == 6 and straight.resumed_from is None

    done: list[int] = []
    with pytest.raises(TrainingCancelled) as caught:
        run(
            base,
            examples,
            checkpoint_dir=tmp_path,
            progress=lambda report: done.append(report["step"]),
            should_stop=lambda: len(done) >= 3,
        )
    assert caught.value.step == 3
    assert caught.value.checkpoint == str(tmp_path / "step-00000003")

    resumed = run(make_tiny(), examples, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 3 and resumed.steps == 6
    assert_same_run(straight, resumed)


def test_a_crashed_run_resumes_from_its_last_checkpoint(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 12)
    hp = Hyperparameters(**{**HP.to_dict(), "checkpoint_every": 2})
    straight = run(make_tiny(), examples, hp=hp)

    def crash(report: dict[str, Any]) -> None:
        if report["step"] == 5:
            raise RuntimeError("the worker died")

    with pytest.raises(RuntimeError):
        run(base, examples, hp=hp, checkpoint_dir=tmp_path, progress=crash)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000002", "step-00000004"]
    (tmp_path / ".tmp-step-00000006-999").mkdir()  # a writer killed mid-checkpoint
    resumed = run(make_tiny(), examples, hp=hp, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 4
    assert not (tmp_path / ".tmp-step-00000006-999").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004", "step-00000006"]
    assert_same_run(straight, resumed)

    other = Hyperparameters(**{**hp.to_dict(), "learning_rate": 1e-3})
    with pytest.raises(CheckpointMismatch, match="other data, hyperparameters or method"):
        run(make_tiny(), examples, hp=other, checkpoint_dir=tmp_path)


def test_stopping_before_any_step_and_without_checkpoints(
    make_tiny: Callable[[], Base],
) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 4)
    with pytest.raises(TrainingCancelled) as caught:
        run(base, examples, should_stop=lambda: True)
    assert (caught.value.step, caught.value.checkpoint) == (0, None)
    assert caught.value.message == "training stopped after step 0 as asked"


def test_gradient_accumulation_does_not_change_a_step(make_tiny: Callable[[], Base]) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 4)
    whole = Hyperparameters(max_steps=1, batch_size=4, lora_dropout=0.0, warmup_ratio=0.0)
    cut = Hyperparameters(**{**whole.to_dict(), "batch_size": 1, "gradient_accumulation": 4})
    one, other = run(make_tiny(), examples, hp=whole), run(make_tiny(), examples, hp=cut)
    assert one.loss == pytest.approx(other.loss, rel=1e-5)
    for name, value in trainable(one).items():
        torch.testing.assert_close(value, trainable(other)[name], rtol=1e-4, atol=1e-6)


def test_full_fine_tuning_trains_every_weight(make_tiny: Callable[[], Base]) -> None:
    base = make_tiny()
    before = {n: p.detach().clone() for n, p in base.model.named_parameters()}
    examples = encoded(base.template, base.tokenizer, 4)
    hp = Hyperparameters(max_steps=2, batch_size=2, learning_rate=1e-3)
    result = run(base, examples, hp=hp, method="full")
    assert result.model is base.model
    changed = [n for n, p in result.model.named_parameters() if not torch.equal(p, before[n])]
    assert sorted(changed) == sorted(before)


def test_qlora_and_unknown_methods_are_refused(make_tiny: Callable[[], Base]) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 2)
    with pytest.raises(Unsupported, match=r"qlora .* need a CUDA GPU.*use method 'lora'"):
        run(base, examples, method="qlora")
    with pytest.raises(InvalidRequest, match="method is one of lora, full, qlora"):
        run(base, examples, method="dora")


def test_examples_over_max_length_are_refused(make_tiny: Callable[[], Base]) -> None:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 2)
    with pytest.raises(DatasetInvalid, match="over max_length = 8"):
        run(base, examples, hp=Hyperparameters(max_length=8))


def test_plan() -> None:
    steps = plan(10, Hyperparameters(batch_size=4, epochs=3))
    assert (steps.micro_batches_per_epoch, steps.steps_per_epoch) == (3, 3)
    assert (steps.total_steps, steps.warmup_steps) == (9, 1)
    assert (
        plan(10, Hyperparameters(batch_size=2, gradient_accumulation=2, max_steps=50)).total_steps
        == 50
    )
