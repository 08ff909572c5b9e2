"""The scale path: the same training run on several ranks, with Ray Train or torchrun.

Nothing here trains: every rank runs :func:`danlu.refinery.train.train`, which notices
the ``torch.distributed`` group that Ray Train (or torchrun) set up and becomes one rank of
a data-parallel run (DistributedDataParallel; each step's examples dealt to the ranks; the
result equal, up to rounding, to one process training the same job). What this module
adds is the plumbing around it:

- each rank loads the base itself, from its path (a model object does not travel well
  between machines, and every rank needs its own copy anyway);
- rank 0's progress reports travel to the caller through a small Ray actor (the
  *channel*), which the caller drains while ``trainer.fit()`` runs in a thread;
- the caller's ``should_stop()`` sets a flag on the channel; rank 0 reads it before each
  step and the training loop tells every rank, so all stop at the same step, with a
  checkpoint written;
- the trained weights come back as the checkpoint rank 0 writes at the end, which the
  caller loads onto its own copy of the base: so ``checkpoint_dir`` must be one directory
  for the caller and every rank (trivially so on one machine; a shared file system on a
  cluster).

``python -m danlu.refinery.distributed`` is the per-rank program for torchrun, for a
machine or cluster without Ray (see :func:`main`).

Ray is an optional dependency (``pip install danlu[refinery-ray]``), imported only here
and only when called.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from danlu.core.errors import DanluError, Unsupported
from danlu.refinery import checkpoints
from danlu.refinery.base import Base, load_base
from danlu.refinery.errors import CheckpointMismatch, TrainingCancelled
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.template import Example
from danlu.refinery.train import (
    TrainResult,
    _fingerprint,
    check_examples,
    plan,
    prepare_model,
    torch_threads,
    train,
)

POLL_SECONDS = 0.2  # how often the caller passes on progress and asks should_stop()
RAY_DIR = "ray"  # Ray Train's own run records, beside the checkpoints


@dataclass(frozen=True)
class BaseSpec:
    """Where each rank loads the base from: what :func:`load_base` takes."""

    path: str
    gguf_file: str | None = None
    name: str | None = None

    @classmethod
    def of(cls, base: Base) -> BaseSpec:
        return cls(str(Path(base.path).absolute()), base.gguf_file, base.name)

    def load(self, method: str) -> Base:
        return load_base(self.path, gguf_file=self.gguf_file, method=method, name=self.name)


def train_on_ray(
    base: Base | BaseSpec,
    examples: Sequence[Example],
    hyperparameters: Hyperparameters | None = None,
    *,
    method: str = "lora",
    checkpoint_dir: Path,
    workers: int = 2,
    use_gpu: bool | None = None,
    address: str | None = None,
    keep_checkpoints: int = 2,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """:func:`train` on ``workers`` Ray Train ranks; the same arguments, the same result.

    ``base`` is a loaded base (its path is what the ranks load; the result is built on it,
    in place, as :func:`train` does) or a :class:`BaseSpec` (the caller loads it at the
    end). ``address`` is the Ray cluster to join (None: the one this process is connected
    to, else a new local one). Each rank takes a GPU if ``use_gpu`` (None: if the cluster
    has GPUs). ``threads`` is the CPUs each rank reserves and trains with (None: one).
    A run finding a checkpoint in ``checkpoint_dir`` resumes from it, with any number of
    ranks. ``should_stop`` is asked every :data:`POLL_SECONDS`; the ranks stop before
    their next step and :class:`TrainingCancelled` is raised here.
    """
    hp = hyperparameters or Hyperparameters()
    examples = list(examples)
    check_examples(examples, hp)  # before any rank starts
    spec = base if isinstance(base, BaseSpec) else BaseSpec.of(base)
    checkpoint_dir = Path(checkpoint_dir).absolute()  # ranks do not share our working dir
    cpus = threads or 1
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise Unsupported(
            "training on Ray needs Ray Train: pip install 'danlu[refinery-ray]' "
            "(or set DANLU_REFINERY_BACKEND=local)"
        ) from None
    with _quiet_ray():
        connect(address)
        if use_gpu is None:
            use_gpu = ray.cluster_resources().get("GPU", 0) > 0  # type: ignore[no-untyped-call]
        actor: Any = ray.remote(num_cpus=0)(Channel)  # no CPU: it must not take a rank's
        channel = actor.remote()
        try:
            trainer = TorchTrainer(
                _train_rank,
                train_loop_config={
                    "base": spec,
                    "examples": examples,
                    "hyperparameters": hp,
                    "method": method,
                    "checkpoint_dir": str(checkpoint_dir),
                    "keep_checkpoints": keep_checkpoints,
                    "threads": cpus,
                    "channel": channel,
                },
                scaling_config=ScalingConfig(
                    num_workers=workers,
                    use_gpu=use_gpu,
                    resources_per_worker={"CPU": cpus, **({"GPU": 1} if use_gpu else {})},
                ),
                run_config=RunConfig(
                    name=f"danlu-{uuid.uuid4().hex[:12]}",
                    storage_path=str(checkpoint_dir / RAY_DIR),
                ),
            )
            failure = _fit_while_relaying(trainer, channel, progress, should_stop)
            ended: dict[str, Any] | None = ray.get(channel.ended.remote())
        finally:
            ray.kill(channel)  # also when the caller's progress raised
    if ended is not None and "cancelled" in ended:
        step, checkpoint = ended["cancelled"]
        raise TrainingCancelled(step, checkpoint)
    if ended is not None and "error" in ended:  # a refusal (bad checkpoint, method, memory)
        raise _rebuild(ended["error"]) from failure
    if failure is not None or ended is None:
        raise failure or RuntimeError("the Ray Train ranks ended without a result")
    done = ended["done"]
    local = spec.load(method) if isinstance(base, BaseSpec) else base
    model, curve = load_result(local, examples, hp, method, checkpoint_dir)
    return TrainResult(model=model, method=method, curve=curve, **done)


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address``; a local one if empty (once per process)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address or None)


def load_result(
    base: Base, examples: Sequence[Example], hp: Hyperparameters, method: str, directory: Path
) -> tuple[Any, list[dict[str, float]]]:
    """The model the ranks trained, rebuilt on ``base`` from their final checkpoint, and
    its loss curve. Only the weights are read: the optimizer state may live on a GPU the
    caller does not have."""
    from safetensors.torch import load_file

    found = checkpoints.latest(directory)
    total = plan(len(examples), hp).total_steps
    state = json.loads((found / "state.json").read_text()) if found else {}
    if state.get("fingerprint") != _fingerprint(method, hp, list(examples)):
        raise CheckpointMismatch(f"{directory} holds no checkpoint of this run")
    if state.get("step") != total:
        raise CheckpointMismatch(f"the last checkpoint in {directory} is not the end of the run")
    assert found is not None
    model = prepare_model(base, method, hp)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    weights = load_file(found / "weights.safetensors")
    if set(weights) != set(trainable):
        raise CheckpointMismatch(f"{found} holds other weights than this model trains")
    with torch.no_grad():
        for name, value in weights.items():
            trainable[name].copy_(value)
    model.eval()
    return model, list(state.get("curve", []))


# --- the channel between the caller and rank 0 ----------------------------------------------


class Channel:
    """A Ray actor (``ray.remote(Channel)``): progress up, a stop flag down, the outcome."""

    def __init__(self) -> None:
        self._reports: list[dict[str, Any]] = []
        self._stop = False
        self._ended: dict[str, Any] | None = None

    def report(self, report: dict[str, Any]) -> None:
        self._reports.append(report)

    def take(self) -> list[dict[str, Any]]:
        reports, self._reports = self._reports, []
        return reports

    def stop(self) -> None:
        self._stop = True

    def stopped(self) -> bool:
        return self._stop

    def end(self, outcome: dict[str, Any]) -> None:
        if self._ended is None:  # the first rank to fail says why; the others follow it
            self._ended = outcome

    def ended(self) -> dict[str, Any] | None:
        return self._ended


def _fit_while_relaying(
    trainer: Any,
    channel: Any,
    progress: Callable[[dict[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
) -> BaseException | None:
    """Run ``trainer.fit()`` in a thread, passing progress on and stop requests down until it
    ends; the error it ended with, if any. An error here (a progress callback that raises)
    stops the ranks at their next step before it propagates."""
    import ray

    failure: list[BaseException] = []

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=fit, name="danlu-ray-train", daemon=True)
    thread.start()
    asked = False
    try:
        while True:
            thread.join(POLL_SECONDS)
            finished = not thread.is_alive()
            for report in ray.get(channel.take.remote()):
                if progress is not None:
                    progress(report)
            if finished:
                return failure[0] if failure else None
            if not asked and should_stop is not None and should_stop():
                channel.stop.remote()
                asked = True
    except BaseException:
        channel.stop.remote()
        thread.join()
        raise


# --- one rank -------------------------------------------------------------------------------


def _train_rank(config: dict[str, Any]) -> None:
    """What each Ray Train worker runs: load the base, train, tell the channel how it ended."""
    import ray
    import ray.train
    import ray.train.torch

    channel = config["channel"]
    first = ray.train.get_context().get_world_rank() == 0

    def report(point: dict[str, Any]) -> None:
        channel.report.remote(point)  # in order: Ray runs one caller's actor calls in order

    def stopped() -> bool:
        return bool(ray.get(channel.stopped.remote()))

    try:
        outcome = run_rank(
            config["base"],
            config["examples"],
            config["hyperparameters"],
            method=config["method"],
            checkpoint_dir=Path(config["checkpoint_dir"]),
            keep_checkpoints=config["keep_checkpoints"],
            threads=config["threads"],
            device=ray.train.torch.get_device(),
            progress=report if first else None,
            should_stop=stopped if first else None,
        )
    except DanluError as exc:
        ray.get(channel.end.remote({"error": _portable(exc)}))
        raise  # Ray Train ends the other ranks, which may be waiting for this one
    if first:  # waited for, so that every report before it has arrived
        ray.get(channel.end.remote(outcome))


def run_rank(
    spec: BaseSpec,
    examples: list[Example],
    hp: Hyperparameters,
    *,
    method: str,
    checkpoint_dir: Path,
    keep_checkpoints: int,
    threads: int,
    device: torch.device,
    progress: Callable[[dict[str, Any]], None] | None,
    should_stop: Callable[[], bool] | None,
) -> dict[str, Any]:
    """One rank of a run whose process group is set up: ``{"done": summary}`` or
    ``{"cancelled": [step, checkpoint]}`` (every rank stops at the same step)."""
    with torch_threads(threads):
        base = spec.load(method)
        base.model.to(device)
        try:
            result = train(
                base,
                examples,
                hp,
                method=method,
                checkpoint_dir=checkpoint_dir,
                keep_checkpoints=keep_checkpoints,
                progress=progress,
                should_stop=should_stop,
            )
        except TrainingCancelled as exc:
            return {"cancelled": [exc.step, exc.checkpoint]}
    return {
        "done": {
            "steps": result.steps,
            "total_steps": result.total_steps,
            "loss": result.loss,
            "tokens": result.tokens,
            "seconds": result.seconds,
            "resumed_from": result.resumed_from,
        }
    }


def _portable(exc: DanluError) -> tuple[type[DanluError], str, dict[str, Any]]:
    # Not the exception itself: subclasses with other constructors do not unpickle.
    return type(exc), exc.message, dict(vars(exc))


def _rebuild(portable: tuple[type[DanluError], str, dict[str, Any]]) -> DanluError:
    kind, message, attributes = portable
    # Made without its constructor; Python wants the __new__ of the built-in exception
    # that lays the object out (BaseException's for most, OSError's for a PermissionError),
    # which is not always the first in the MRO (MemoryError's is, for NotEnoughMemory).
    layouts: list[Any] = list(reversed(kind.__mro__[:-1]))  # from BaseException on
    for builtin in layouts:
        try:
            error: DanluError = builtin.__new__(kind)
            break
        except TypeError:
            continue
    Exception.__init__(error, message)
    error.__dict__.update(attributes)
    return error


@contextmanager
def _quiet_ray() -> Iterator[None]:
    """Ray's notices about its own settings, which we do not use, kept out of our output
    (and out of test runs that turn warnings into errors)."""
    with warnings.catch_warnings():
        # Ray Train copies Ray Data's default context, whose constructor warns about its
        # own deprecated defaults.
        warnings.filterwarnings("ignore", module=r"ray\.data\.context")
        yield


# --- torchrun -------------------------------------------------------------------------------


def write_examples(examples: Sequence[Example], path: Path) -> Path:
    """Examples as JSON lines, for :func:`main` to read."""
    with path.open("w") as handle:
        for example in examples:
            handle.write(json.dumps({"input_ids": example.input_ids, "labels": example.labels}))
            handle.write("\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """One torchrun rank::

        torchrun --nproc-per-node 2 -m danlu.refinery.distributed --base PATH \\
            --examples examples.jsonl --checkpoint-dir DIR [--gguf-file F] \\
            [--method lora] [--hyperparameters '{"max_steps": 100}'] [--threads 1] \
            [--stop-file PATH]

    Rank 0 prints each progress report as a JSON line, then how the run ended
    (``{"done": ...}`` or ``{"cancelled": [step, checkpoint]}``), and writes the final
    checkpoint, which :func:`load_result` turns into the trained model (``examples.jsonl``
    from :func:`write_examples`). Creating the stop file stops every rank before its next
    step, with a checkpoint. The backend is NCCL on GPUs, gloo on CPUs.
    """
    import torch.distributed as dist

    parser = argparse.ArgumentParser(prog="python -m danlu.refinery.distributed")
    parser.add_argument("--base", required=True)
    parser.add_argument("--gguf-file")
    parser.add_argument("--examples", required=True, type=Path)
    parser.add_argument("--checkpoint-dir", required=True, type=Path)
    parser.add_argument("--method", default="lora")
    parser.add_argument("--hyperparameters", default="{}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep-checkpoints", type=int, default=2)
    parser.add_argument("--stop-file", type=Path)
    args = parser.parse_args(argv)
    hp = Hyperparameters.from_dict(json.loads(args.hyperparameters))
    with args.examples.open() as handle:
        examples = [Example(**json.loads(line)) for line in handle if line.strip()]
    gpu = torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if gpu else "gloo")
    first = dist.get_rank() == 0
    try:
        outcome = run_rank(
            BaseSpec(args.base, args.gguf_file),
            examples,
            hp,
            method=args.method,
            checkpoint_dir=args.checkpoint_dir.absolute(),
            keep_checkpoints=args.keep_checkpoints,
            threads=args.threads,
            device=torch.device("cuda") if gpu else torch.device("cpu"),
            progress=(lambda report: print(json.dumps(report), flush=True)) if first else None,
            should_stop=(lambda: args.stop_file.exists()) if args.stop_file else None,
        )
    finally:
        dist.destroy_process_group()
    if first:
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
