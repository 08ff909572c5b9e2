"""Training hyperparameters: their defaults, ranges, and the methods the refinery knows.

A job stores the hyperparameters its user set as a plain dict; :meth:`Hyperparameters.from_dict`
fills in the defaults and checks every value, naming the offending one, before any work.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from danlu.core.errors import InvalidRequest

METHODS = ("lora", "full", "qlora")


@dataclass(frozen=True)
class Hyperparameters:
    """Defaults suit LoRA on a small model and a dataset of hundreds of conversations.

    The effective batch is ``batch_size × gradient_accumulation`` examples per optimizer
    step; ``max_steps``, when set, replaces ``epochs`` as the length of the run.
    """

    epochs: int = 3
    learning_rate: float = 2e-4
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int = 512
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    warmup_ratio: float = 0.03
    seed: int = 42
    held_out_fraction: float = 0.1
    train_on_all_turns: bool = False
    max_steps: int | None = None
    checkpoint_every: int = 50
    json_schema: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Hyperparameters:
        """Defaults overlaid with ``values``; :class:`InvalidRequest` names a bad one."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidRequest(
                f"unknown hyperparameter {unknown[0]!r}; known: {', '.join(sorted(names))}",
                param=f"hyperparameters.{unknown[0]}",
            )
        for name, value in values.items():
            _check(name, value)
            if _RANGES[name][0] is float:
                values[name] = float(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# name -> (type, lowest allowed, highest allowed); None for no bound.
_RANGES: dict[str, tuple[type, float | None, float | None]] = {
    "epochs": (int, 1, 1000),
    "learning_rate": (float, 0.0, 1.0),
    "batch_size": (int, 1, 1024),
    "gradient_accumulation": (int, 1, 1024),
    "max_length": (int, 8, 1_000_000),
    "lora_r": (int, 1, 1024),
    "lora_alpha": (int, 1, 4096),
    "lora_dropout": (float, 0.0, 0.9),
    "warmup_ratio": (float, 0.0, 0.9),
    "seed": (int, 0, 2**32 - 1),
    "held_out_fraction": (float, 0.0, 0.5),
    "train_on_all_turns": (bool, None, None),
    "max_steps": (int, 1, 10_000_000),
    "checkpoint_every": (int, 1, 10_000_000),
    "json_schema": (dict, None, None),
}


def _check(name: str, value: Any) -> None:
    kind, low, high = _RANGES[name]
    param = f"hyperparameters.{name}"
    if value is None and name in ("max_steps", "json_schema"):
        return
    # bool is an int in Python; a JSON true for "epochs" is still a mistake.
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise InvalidRequest(f"{name} must be {_NAMES[kind]}, not {value!r}", param=param)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidRequest(f"{name} must be between {low} and {high}, not {value}", param=param)
    if name == "learning_rate" and value == 0:
        raise InvalidRequest("learning_rate must be above 0", param=param)


_NAMES = {int: "an integer", float: "a number", bool: "true or false", dict: "a JSON object"}
