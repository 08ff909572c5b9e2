"""The scale path: the same run on two Ray Train ranks (CPU), stopped, resumed and compared
with one process training the same effective batch; and on two torchrun ranks.

Starting Ray and its workers is most of this file's time (on two busy cores, Ray starts in
~15 s and each ``fit`` spends ~25 s starting its ranks), so the one Ray test does as much
as it can with two runs: a cancelled one and its resumption. The ranks train a tiny Llama
(SmolLM2's tokenizer, random weights) with one PyTorch thread each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from danlu.core.errors import InvalidRequest
from danlu.refinery.base import embedded_base_path, load_base
from danlu.refinery.distributed import (
    BaseSpec,
    _portable,
    _rebuild,
    load_result,
    train_on_ray,
    write_examples,
)
from danlu.refinery.errors import CheckpointMismatch, NotEnoughMemory, TrainingCancelled
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.train import train
from tests.refinery.conftest import encoded, tiny_llama
from tests.refinery.test_train import PROGRESS_KEYS, trainable

HP = Hyperparameters(
    max_steps=36,  # ~3 s on two ranks: time for the stop request to arrive before the end
    batch_size=2,
    gradient_accumulation=2,  # 4 examples a step: one micro-batch of 2 on each rank
    learning_rate=5e-3,
    lora_dropout=0.0,  # ranks draw other dropout masks than one process would
    warmup_ratio=0.0,
    checkpoint_every=100,
    seed=3,
)

# Adam moves a weight by about the learning rate whatever its gradient's size, so where a
# gradient is near 0 (LoRA's A matrices start with exactly 0), summing the same gradients in
# another order can move a weight differently: by up to one step (5e-3). Seen: 2e-4 to 8e-4
# on one weight in 256, depending on the CPU's kernels. Allow half a step; a wrong gradient
# moves many weights by whole steps, and the loss curves are compared to 1e-5 besides.
ADAM_ROUNDING = 2.5e-3


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with SmolLM2's tokenizer, saved where every rank can load it (ranks
    load the base from a path; the embedded GGUF would take each of them ~30 s)."""
    from transformers import AutoTokenizer

    gguf = embedded_base_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    directory = tmp_path_factory.mktemp("tiny")
    tiny_llama(len(tokenizer)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray", reason="the Ray backend needs danlu[refinery-ray]")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.timeout(300)
def test_torchrun_ranks_train_the_same_run(tiny_dir: Path, tmp_path: Path) -> None:
    """The same loop under torchrun: no Ray, the result again a checkpoint to load."""
    base = load_base(tiny_dir)
    examples = encoded(base.template, base.tokenizer, 12)
    hp = Hyperparameters(**{**HP.to_dict(), "max_steps": 4})
    command = [
        *(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"),
        *("-m", "danlu.refinery.distributed", "--base", str(tiny_dir)),
        *("--examples", str(write_examples(examples, tmp_path / "examples.jsonl"))),
        *("--checkpoint-dir", str(tmp_path / "run"), "--hyperparameters", json.dumps(hp.to_dict())),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ran = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240)
    assert ran.returncode == 0, ran.stderr[-3000:]
    printed = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
    assert [p["step"] for p in printed[:-1]] == [1, 2, 3, 4]
    assert printed[-1]["done"]["steps"] == 4

    model, curve = load_result(base, examples, hp, "lora", tmp_path / "run")
    alone = train(load_base(tiny_dir), examples, hp)
    assert [p["loss"] for p in curve] == pytest.approx([p["loss"] for p in alone.curve], rel=1e-5)
    ours = {n: p for n, p in model.named_parameters() if p.requires_grad}
    for name, value in trainable(alone).items():
        torch.testing.assert_close(ours[name], value, rtol=1e-3, atol=ADAM_ROUNDING)


def test_refusals_cross_from_the_ranks_whole() -> None:
    """A rank's refusal is re-raised at the caller as itself, even a class whose
    constructor pickling cannot call again."""
    error = NotEnoughMemory("too big", needed=3, available=1)
    again = _rebuild(_portable(error))
    assert isinstance(again, NotEnoughMemory) and isinstance(again, MemoryError)
    assert (again.message, again.needed, again.available) == ("too big", 3, 1)
    assert str(again) == "too big"
    refused = _rebuild(_portable(InvalidRequest("no", param="method")))
    assert isinstance(refused, InvalidRequest) and refused.param == "method"


def test_nothing_starts_for_data_that_cannot_train(tiny_dir: Path, tmp_path: Path) -> None:
    spec = BaseSpec(str(tiny_dir))
    with pytest.raises(InvalidRequest, match="nothing to train on"):
        train_on_ray(spec, [], HP, checkpoint_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.timeout(300)
def test_two_ranks_stop_resume_and_match_one_process(
    tiny_dir: Path, local_ray: None, tmp_path: Path
) -> None:
    base = load_base(tiny_dir)
    examples = encoded(base.template, base.tokenizer, 12)

    # Stopped from the caller once a report has reached it: every rank stops at the same
    # step (the next one rank 0 begins after the request), and rank 0 checkpoints.
    reports: list[dict[str, Any]] = []
    with pytest.raises(TrainingCancelled) as caught:
        train_on_ray(
            BaseSpec.of(base),
            examples,
            HP,
            checkpoint_dir=tmp_path,
            workers=2,
            progress=reports.append,
            should_stop=lambda: len(reports) >= 1,
        )
    stopped = caught.value.step
    assert 1 <= stopped < HP.max_steps  # type: ignore[operator]
    assert caught.value.checkpoint == str(tmp_path / f"step-{stopped:08d}")
    assert [r["step"] for r in reports] == list(range(1, stopped + 1))
    assert all(set(r) == PROGRESS_KEYS for r in reports)

    # Resumed on two ranks to the end; the result comes back onto the caller's base.
    more: list[dict[str, Any]] = []
    result = train_on_ray(base, examples, HP, checkpoint_dir=tmp_path, progress=more.append)
    assert result.resumed_from == stopped and result.steps == HP.max_steps
    assert [r["step"] for r in more] == list(range(stopped + 1, HP.max_steps + 1))  # type: ignore[operator]
    assert more[-1]["total_steps"] == HP.max_steps and result.tokens > 0
    losses = [point["loss"] for point in result.curve]
    # A random tiny Llama learns slowly through LoRA (its embeddings and head stay random),
    # but it does learn: ln(vocabulary) ≈ 10.8 at first.
    assert len(losses) == HP.max_steps and sum(losses[-3:]) / 3 < losses[0] - 0.2, losses
    trained = trainable(result)
    assert trained and all("lora_" in name for name in trained)

    # One process, the same effective batch of 4: the same losses and weights, up to the
    # order in which the two ranks' gradients were summed...
    alone = train(load_base(tiny_dir), examples, HP)
    for ours, theirs in zip(result.curve, alone.curve, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-4, abs=1e-5)
    for name, value in trainable(alone).items():
        torch.testing.assert_close(trained[name], value, rtol=1e-3, atol=ADAM_ROUNDING)
    # ...while half the batch (one rank's share of each step) makes another run altogether.
    halved = Hyperparameters(**{**HP.to_dict(), "gradient_accumulation": 1})
    half = trainable(train(load_base(tiny_dir), examples, halved))
    rounding = max(float((trained[n] - v).abs().max()) for n, v in trainable(alone).items())
    different = max(float((half[n] - v).abs().max()) for n, v in trainable(alone).items())
    assert rounding * 100 < different, (rounding, different)

    # The final checkpoint is the result, and is refused for another run.
    other = Hyperparameters(**{**HP.to_dict(), "learning_rate": 1e-3})
    with pytest.raises(CheckpointMismatch, match="no checkpoint of this run"):
        load_result(load_base(tiny_dir), examples, other, "lora", tmp_path)
