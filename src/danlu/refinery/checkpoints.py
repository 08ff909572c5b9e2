"""Training checkpoints: written whole or not at all, found again after a crash.

A checkpoint is a directory ``step-00000050`` holding the trainable weights (the adapter
for LoRA), the optimizer's and scheduler's state, the random number generator's state and
``state.json`` (the step, the run's fingerprint, the loss curve so far). It is written
under a temporary name and renamed into place, so a worker killed mid-write leaves at
worst a temporary directory, which the next run removes, and never a checkpoint that
looks complete but is not.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

PREFIX = "step-"
_TMP = ".tmp-"


@dataclass
class Checkpoint:
    step: int
    path: Path
    weights: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: torch.Tensor
    state: dict[str, Any]


def save(
    directory: Path,
    step: int,
    *,
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    state: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write the checkpoint of ``step`` atomically; keep the ``keep`` newest."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{PREFIX}{step:08d}"
    tmp = directory / f"{_TMP}{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    # safetensors wants contiguous tensors that share no memory with each other.
    save_file(
        {k: v.detach().contiguous().clone() for k, v in weights.items()},
        tmp / "weights.safetensors",
    )
    torch.save(optimizer, tmp / "optimizer.pt")
    torch.save(scheduler, tmp / "scheduler.pt")
    torch.save(torch.get_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps({**state, "step": step}, ensure_ascii=False))
    for file in tmp.iterdir():
        _fsync(file)
    if final.exists():  # a run that resumed before this step wrote it once already
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync(directory)
    for old in _complete(directory)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(directory: Path | None) -> Path | None:
    """The newest complete checkpoint in ``directory``, if any."""
    if directory is None or not directory.is_dir():
        return None
    found = _complete(directory)
    return found[-1] if found else None


def load(path: Path) -> Checkpoint:
    state = json.loads((path / "state.json").read_text())
    return Checkpoint(
        step=int(state["step"]),
        path=path,
        weights=load_file(path / "weights.safetensors"),
        optimizer=torch.load(path / "optimizer.pt", weights_only=True),
        scheduler=torch.load(path / "scheduler.pt", weights_only=True),
        rng=torch.load(path / "rng.pt", weights_only=True),
        state=state,
    )


def clean(directory: Path) -> None:
    """Remove what killed writers left behind."""
    if directory.is_dir():
        for leftover in directory.glob(f"{_TMP}*"):
            shutil.rmtree(leftover, ignore_errors=True)


def _complete(directory: Path) -> list[Path]:
    found = [
        p
        for p in directory.glob(f"{PREFIX}*")
        if p.is_dir() and p.name[len(PREFIX) :].isdigit() and (p / "state.json").is_file()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def _fsync(path: Path) -> None:
    # Durable before the rename makes it visible: a power cut must not publish empty files.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
