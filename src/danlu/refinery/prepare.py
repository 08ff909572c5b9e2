"""From dataset files to training and held-out examples, in the order a job needs them.

Every check that needs no model runs first (reading, format, rows), then the split, then
the checks that need the tokenizer (lengths, the template's own refusals) over all rows
at once, so a job fails as early and as completely as it can, before any weights are
trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from danlu.refinery.data import Dataset, Message, Split, load_dataset, make_split
from danlu.refinery.errors import DatasetInvalid
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.template import ChatTemplate, Example, encode_rows


@dataclass(frozen=True)
class Prepared:
    dataset: Dataset
    split: Split
    train: list[Example]
    held_out: list[Example]

    @property
    def held_out_conversations(self) -> list[list[Message]]:
        return [self.dataset.conversations[i] for i in self.split.held_out]


def prepare(
    files: Sequence[tuple[str, bytes]],
    template: ChatTemplate,
    tokenizer: Any,
    hyperparameters: Hyperparameters | None = None,
    *,
    split: Split | None = None,
) -> Prepared:
    """Read, check, split and encode ``(file name, bytes)`` pairs; ``split`` reuses a
    stored split (a resumed job) instead of drawing one."""
    hp = hyperparameters or Hyperparameters()
    dataset = load_dataset(files)
    if split is None:
        split = make_split(len(dataset), fraction=hp.held_out_fraction, seed=hp.seed)
    elif len(split.train) + len(split.held_out) != len(dataset):
        raise DatasetInvalid(
            [
                f"the stored split covers {len(split.train) + len(split.held_out)} rows and "
                f"the dataset has {len(dataset)}: the dataset changed since the job started"
            ]
        )
    encoded = encode_rows(
        dataset,
        range(len(dataset)),
        template,
        tokenizer,
        max_length=hp.max_length,
        train_on_all_turns=hp.train_on_all_turns,
    )
    return Prepared(
        dataset,
        split,
        [e for i in split.train for e in encoded[i]],
        [e for i in split.held_out for e in encoded[i]],
    )
