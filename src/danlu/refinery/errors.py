"""The refinery's domain errors: each says what is wrong and how to fix it.

They subclass the core errors, so the HTTP layer already knows their statuses
(a bad dataset is a 400, an untrainable base a 422) without knowing the refinery.
"""

from __future__ import annotations

from danlu.core.errors import Conflict, DanluError, InvalidRequest, Unsupported


class DatasetInvalid(InvalidRequest):
    """The dataset cannot be trained on; ``problems`` holds one line per kind of fault.

    Problems are aggregated over the whole dataset (how many rows, which ones), so one
    round of fixes is enough, instead of one error per upload.
    """

    def __init__(self, problems: list[str], *, param: str = "dataset"):
        message = (
            problems[0]
            if len(problems) == 1
            else "the dataset has problems:\n" + "\n".join(f"- {p}" for p in problems)
        )
        super().__init__(message, param=param, code="invalid_dataset")
        self.problems = problems


class BaseModelUnsupported(Unsupported):
    """The base model cannot be fine-tuned here (not a causal LM, unknown architecture...)."""


class NotEnoughMemory(Unsupported, MemoryError):
    """Training this base with this method would not fit in the machine's memory."""

    def __init__(self, message: str, *, needed: int, available: int):
        super().__init__(message, code="not_enough_memory")
        self.needed = needed
        self.available = available


class CheckpointMismatch(Conflict):
    """A checkpoint directory holds a run with other data or hyperparameters."""


class TrainingCancelled(DanluError):
    """``should_stop()`` said stop; ``step`` steps were done, saved in ``checkpoint``."""

    def __init__(self, step: int, checkpoint: str | None):
        where = f"; its state is in {checkpoint}" if checkpoint else ""
        super().__init__(f"training stopped after step {step} as asked{where}", code="cancelled")
        self.step = step
        self.checkpoint = checkpoint
