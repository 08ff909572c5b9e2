"""Training: LoRA (the default) or full fine-tuning, in a plain PyTorch loop on CPU.

The loop is ours rather than Hugging Face's Trainer so that progress reports,
cancellation between steps and checkpoints are exactly what the refinery promises:
each optimizer step is reported, ``should_stop()`` is asked before each, and a run
resumed from a checkpoint computes the same steps as one never interrupted. That last
property comes from three choices: the order of examples in an epoch is derived from the
seed and the epoch number (not from a generator's running state), the random state that
dropout draws from is saved with each checkpoint, and every step's loss is the mean over
its trained tokens however the step is cut into micro-batches.

QLoRA needs bitsandbytes' 4-bit kernels, which run on CUDA GPUs only; on CPU it is
refused with a message rather than silently trained as LoRA.

The same loop runs distributed when the process is one rank of a ``torch.distributed``
group (Ray Train's workers, torchrun): the model is wrapped in DistributedDataParallel,
each step's examples are dealt to the ranks, and since every rank divides by the step's
trained tokens counted over all ranks, the summed gradients are those of one process
running the same effective batch. Rank 0 alone reports progress, decides whether to stop
(and tells the others) and writes checkpoints, including a final one that carries the
result out of the ranks (see ``distributed.py``).
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from danlu.core.errors import InvalidRequest, Unsupported
from danlu.refinery import checkpoints
from danlu.refinery.base import FULL_MAX_PARAMETERS, Base
from danlu.refinery.errors import CheckpointMismatch, DatasetInvalid, TrainingCancelled
from danlu.refinery.hyperparameters import METHODS, Hyperparameters
from danlu.refinery.template import IGNORE, Example

MAX_GRAD_NORM = 1.0
# What changes the computation; checkpoint_every or the held-out split do not.
_FINGERPRINTED = (
    "epochs",
    "learning_rate",
    "batch_size",
    "gradient_accumulation",
    "max_length",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "warmup_ratio",
    "seed",
    "train_on_all_turns",
    "max_steps",
)


@dataclass
class TrainResult:
    """A finished run. ``model`` is the trained model: a peft model for LoRA."""

    model: Any
    method: str
    steps: int
    total_steps: int
    loss: float | None  # the last step's mean loss per trained token
    curve: list[dict[str, float]] = field(default_factory=list)  # one point per step
    tokens: int = 0  # tokens read in this run (after a resume, since it)
    seconds: float = 0.0
    resumed_from: int | None = None


@dataclass(frozen=True)
class Plan:
    """How a run is cut into steps."""

    examples: int
    micro_batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int


def plan(examples: int, hp: Hyperparameters) -> Plan:
    micro = math.ceil(examples / hp.batch_size)
    per_epoch = math.ceil(micro / hp.gradient_accumulation)
    total = hp.max_steps if hp.max_steps is not None else per_epoch * hp.epochs
    return Plan(examples, micro, per_epoch, total, math.ceil(hp.warmup_ratio * total))


def prepare_model(base: Base, method: str, hp: Hyperparameters) -> Any:
    """The model to train: ``base.model`` with LoRA adapters injected, or itself for full."""
    if method not in METHODS:
        raise InvalidRequest(f"method is one of {', '.join(METHODS)}", param="method")
    if method == "qlora":
        raise Unsupported(
            "qlora trains a 4-bit base with bitsandbytes, whose kernels need a CUDA GPU; "
            "the refinery trains on CPU here: use method 'lora' (the same adapter over a "
            "float32 base)",
            param="method",
        )
    model = base.model
    if method == "full":
        if base.parameters > FULL_MAX_PARAMETERS:
            raise Unsupported(
                f"full fine-tuning is for models up to {FULL_MAX_PARAMETERS / 1e9:.0f}B "
                f"parameters; {base.name} has {base.parameters / 1e9:.1f}B: use method 'lora'",
                param="method",
            )
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        # Every linear layer but the output head: attention and MLP projections, named
        # differently in each architecture.
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft asks transformers a question transformers 5 renamed; not ours to fix.
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated")
        return get_peft_model(model, config)


def train(
    base: Base,
    examples: Sequence[Example],
    hyperparameters: Hyperparameters | None = None,
    *,
    method: str = "lora",
    checkpoint_dir: Path | None = None,
    keep_checkpoints: int = 2,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Fine-tune ``base`` on ``examples``; ``base.model`` is changed in place.

    With ``checkpoint_dir``, a checkpoint is written every ``checkpoint_every`` steps and
    when stopped, and a run finding a checkpoint there resumes from the newest (refusing
    one made with other data or hyperparameters). ``progress`` receives a dict after each
    step; ``should_stop`` is asked before each and, when it says yes, the run ends with
    :class:`TrainingCancelled`. ``threads`` sets PyTorch's CPU threads for the run.
    """
    hp = hyperparameters or Hyperparameters()
    check_examples(examples, hp)
    with torch_threads(threads):
        return _Run(base, list(examples), hp, method, checkpoint_dir, keep_checkpoints).run(
            progress, should_stop
        )


def check_examples(examples: Sequence[Example], hp: Hyperparameters) -> None:
    """Refuse what cannot be trained, before any model is touched (or any rank started)."""
    if not examples:
        raise DatasetInvalid(["there is nothing to train on: the training split is empty"])
    longest = max(len(e) for e in examples)
    if longest > hp.max_length:  # encode_dataset names the rows; this is the backstop
        raise DatasetInvalid(
            [
                f"an example has {longest} tokens, over max_length = {hp.max_length}: "
                "encode the data with encode_dataset, which names the rows to fix"
            ]
        )


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's CPU threads set to ``threads`` inside (unchanged for None), then restored.

    Fewer threads than cores is often faster on a shared machine: PyTorch's threads wait
    for each other at every operation, so one descheduled thread stalls them all (on two
    busy cores, one thread trained SmolLM2 ten times faster than two).
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Run:
    def __init__(
        self,
        base: Base,
        examples: list[Example],
        hp: Hyperparameters,
        method: str,
        checkpoint_dir: Path | None,
        keep: int,
    ):
        self.examples = examples
        self.hp = hp
        self.method = method
        self.checkpoint_dir = checkpoint_dir
        self.keep = keep
        self.plan = plan(len(examples), hp)
        self.pad_id = pad_id(base.tokenizer)
        self.fingerprint = _fingerprint(method, hp, examples)
        # What each example adds to a step's divisor, known to every rank without a message.
        self.learnt = [sum(label != IGNORE for label in e.labels[1:]) for e in examples]
        torch.manual_seed(hp.seed)  # before LoRA's weights are initialised
        self.model = prepare_model(base, method, hp)
        self.trainable = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        self.device = next(self.model.parameters()).device
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.forward: Any = DistributedDataParallel(self.model) if self.distributed else self.model
        self.optimizer = torch.optim.AdamW(
            list(self.trainable.values()), lr=hp.learning_rate, weight_decay=0.0
        )
        total, warmup = self.plan.total_steps, self.plan.warmup_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _lr_factor(step, warmup, total)
        )
        self.curve: list[dict[str, float]] = []
        self.step = 0
        self.saved_step = 0

    def run(
        self,
        progress: Callable[[dict[str, Any]], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> TrainResult:
        resumed = self._resume()
        started = time.monotonic()
        tokens = 0
        self.model.train()
        while self.step < self.plan.total_steps:
            if self._stop_asked(should_stop):
                raise TrainingCancelled(self.step, self._checkpoint_if_new())
            learning_rate = self.optimizer.param_groups[0]["lr"]
            loss, read = self._one_step()
            self.step += 1
            tokens += read
            elapsed = time.monotonic() - started
            done_here = self.step - (resumed or 0)
            point = {
                "step": self.step,
                "epoch": round(self.step / self.plan.steps_per_epoch, 4),
                "loss": loss,
                "learning_rate": learning_rate,
            }
            self.curve.append(point)
            if progress is not None and self.rank == 0:
                progress(
                    {
                        **point,
                        "total_steps": self.plan.total_steps,
                        "tokens_per_second": round(tokens / elapsed, 2) if elapsed else 0.0,
                        "eta_seconds": round(
                            (self.plan.total_steps - self.step) * elapsed / done_here, 1
                        ),
                    }
                )
            if self.checkpoint_dir is not None and self.step % self.hp.checkpoint_every == 0:
                self._checkpoint()
        if self.distributed:  # the trained weights leave the ranks through this checkpoint
            self._checkpoint_if_new()
        self.model.eval()
        return TrainResult(
            model=self.model,
            method=self.method,
            steps=self.step,
            total_steps=self.plan.total_steps,
            loss=self.curve[-1]["loss"] if self.curve else None,
            curve=self.curve,
            tokens=tokens,
            seconds=time.monotonic() - started,
            resumed_from=resumed,
        )

    # --- one step ---------------------------------------------------------------------------

    def _step_examples(self, step: int) -> list[int]:
        """The example indices of optimizer step ``step`` (0-based), over all ranks."""
        epoch, within = divmod(step, self.plan.steps_per_epoch)
        order = torch.randperm(
            len(self.examples), generator=torch.Generator().manual_seed(self.hp.seed + epoch)
        ).tolist()
        per_step = self.hp.batch_size * self.hp.gradient_accumulation
        return order[within * per_step : (within + 1) * per_step]

    def _micro_batches(self, indices: list[int]) -> list[list[int]]:
        """This rank's micro-batches of a step: the step's examples are dealt to the ranks in
        turn and each cuts its share into micro-batches of ``batch_size`` (one rank: the
        step's ``gradient_accumulation`` micro-batches). More ranks, fewer micro-batches
        each, the same effective batch."""
        share = indices[self.rank :: self.world]
        size = self.hp.batch_size
        return [share[start : start + size] for start in range(0, len(share), size)]

    def _one_step(self) -> tuple[float, int]:
        indices = self._step_examples(self.step)
        mine = self._micro_batches(indices)
        # Loss per trained token of the whole step (all ranks), so that cutting a step into
        # more micro-batches or ranks does not change what is learnt.
        trained = max(sum(self.learnt[i] for i in indices), 1)
        # A rank dealt nothing (a step with fewer examples than ranks) still joins the
        # gradient exchange, with a pass that counts for nothing.
        weights = [1.0] * len(mine) if mine else [0.0]
        batches = [
            collate([self.examples[i] for i in part], self.pad_id, self.device)
            for part in (mine or [indices[:1]])
        ]
        total_loss = 0.0
        read = 0
        for number, (batch, weight) in enumerate(zip(batches, weights, strict=True)):
            # Gradients are exchanged once a step, on its last backward pass.
            last = number == len(batches) - 1
            with nullcontext() if last or not self.distributed else self.forward.no_sync():
                loss = token_loss_sum(self.forward, batch) * weight / trained
                # DistributedDataParallel averages the ranks' gradients; we want their sum.
                (loss * self.world).backward()  # type: ignore[no-untyped-call]
            total_loss += float(loss.detach())
            read += int(batch[1].sum()) if weight else 0
        if self.distributed:  # the step's loss and tokens over all ranks, for the report
            totals = torch.tensor([total_loss, read], dtype=torch.float64, device=self.device)
            dist.all_reduce(totals)
            total_loss, read = float(totals[0]), int(totals[1])
        torch.nn.utils.clip_grad_norm_(list(self.trainable.values()), MAX_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, read

    def _stop_asked(self, should_stop: Callable[[], bool] | None) -> bool:
        """``should_stop()``, asked on rank 0 and told to every rank, so that all stop together."""
        stop = should_stop is not None and self.rank == 0 and should_stop()
        if not self.distributed:
            return stop
        flag = torch.tensor([int(stop)], device=self.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    # --- checkpoints (rank 0 writes them; every rank reads them to resume) ------------------

    def _checkpoint(self) -> str | None:
        assert self.checkpoint_dir is not None
        if self.rank != 0:
            return None
        path = checkpoints.save(
            self.checkpoint_dir,
            self.step,
            weights={n: p.data for n, p in self.trainable.items()},
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            state={"fingerprint": self.fingerprint, "method": self.method, "curve": self.curve},
            keep=self.keep,
        )
        self.saved_step = self.step
        return str(path)

    def _checkpoint_if_new(self) -> str | None:
        if self.checkpoint_dir is None or self.step == 0 or self.rank != 0:
            return None
        if self.step == self.saved_step:
            found = checkpoints.latest(self.checkpoint_dir)
            return str(found) if found else None
        return self._checkpoint()

    def _resume(self) -> int | None:
        if self.checkpoint_dir is None:
            return None
        if self.rank == 0:
            checkpoints.clean(self.checkpoint_dir)
        found = checkpoints.latest(self.checkpoint_dir)
        if found is None:
            return None
        saved = checkpoints.load(found)
        if saved.state.get("fingerprint") != self.fingerprint:
            raise CheckpointMismatch(
                f"{found} was made by a run with other data, hyperparameters or method; "
                "resume with the same ones, or start in an empty checkpoint directory"
            )
        if set(saved.weights) != set(self.trainable):
            raise CheckpointMismatch(f"{found} holds other weights than this model trains")
        with torch.no_grad():
            for name, value in saved.weights.items():
                self.trainable[name].copy_(value)
        self.optimizer.load_state_dict(saved.optimizer)
        self.scheduler.load_state_dict(saved.scheduler)
        torch.set_rng_state(saved.rng)
        self.curve = list(saved.state.get("curve", []))
        self.step = self.saved_step = saved.step
        return saved.step


def collate(
    examples: Sequence[Example], pad: int, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, labels)`` of a batch, padded on the right."""
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example)
        input_ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        attention_mask[row, :n] = 1
    if device is not None and device.type != "cpu":
        return input_ids.to(device), attention_mask.to(device), labels.to(device)
    return input_ids, attention_mask, labels


def token_loss_sum(
    model: Any, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """The summed cross-entropy of a batch's trained tokens (each predicted from those before)."""
    input_ids, attention_mask, labels = batch
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    # Shift the labels rather than slice the logits: a slice of the logits (batch × length ×
    # vocabulary floats) is copied by the reshape, and so is its gradient, which cost a few
    # percent of a LoRA step on CPU (bench/refinery_vs_peft.py). The last position predicts
    # nothing and is ignored.
    targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=IGNORE,
        reduction="sum",
    )


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup from the first step (never a wasted step at 0), then cosine to 0."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    done = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


def pad_id(tokenizer: Any) -> int:
    # Padding is masked out of attention and loss, so any id works; prefer the real one.
    for candidate in (
        getattr(tokenizer, "pad_token_id", None),
        getattr(tokenizer, "eos_token_id", None),
    ):
        if isinstance(candidate, int):
            return candidate
    return 0


def _fingerprint(method: str, hp: Hyperparameters, examples: list[Example]) -> str:
    digest = hashlib.sha256(method.encode())
    digest.update(repr([getattr(hp, name) for name in _FINGERPRINTED]).encode())
    for example in examples:
        digest.update(array("q", example.input_ids).tobytes())
        digest.update(array("q", example.labels).tobytes())
    return digest.hexdigest()
