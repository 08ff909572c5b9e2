"""A refined model into the hub: merged weights at the root, the adapter in ``adapter/``,
a model card with lineage, hyperparameters, metrics and the loss curve — in one commit.

All or nothing: the files are stored first and committed together; if the repo was made
for this job and anything fails, it is removed again, so nobody sees a half-written model.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from danlu.core.blobs import BlobStore
from danlu.core.keys import Principal
from danlu.hub.commits import Committer, Operation
from danlu.hub.errors import RepoNotFound
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.hub.transfer import added_file
from danlu.refinery.job_tables import FineTune


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk


def loss_curve_png(points: list[dict[str, Any]]) -> bytes:
    """The training loss (and held-out loss, where measured) against the step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display; safe in a worker process
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.2), dpi=120)
    steps = [p["step"] for p in points if "loss" in p]
    axis.plot(steps, [p["loss"] for p in points if "loss" in p], label="training loss")
    evals = [p for p in points if "eval_loss" in p]
    if evals:
        axis.plot(
            [p["step"] for p in evals], [p["eval_loss"] for p in evals], "o-", label="held-out"
        )
    axis.set_xlabel("step")
    axis.set_ylabel("loss")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    plt.close(figure)
    return out.getvalue()


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _inline(text: Any) -> str:
    """A sample on one Markdown line: newlines would end the list item it sits in."""
    return " ⏎ ".join(str(text).splitlines()) or "(empty)"


def model_card(job: FineTune, metrics: dict[str, Any], samples: list[dict[str, Any]]) -> str:
    """README.md: YAML metadata the hub indexes (base_model, datasets, tags), then the story."""
    before, after = metrics.get("before", {}), metrics.get("after", {})
    names = sorted(set(before) | set(after))
    rows = "\n".join(
        f"| {name} | {_fmt(before.get(name, '–'))} | {_fmt(after.get(name, '–'))} |"
        for name in names
    )
    hyper = "\n".join(
        f"| {k} | `{json.dumps(v, ensure_ascii=False)}` |"
        for k, v in sorted(job.hyperparameters.items())
    ) or ("| (defaults) | |")
    shown = "\n\n".join(
        f"**Prompt:** {_inline(s.get('prompt', ''))}\n\n- base: {_inline(s.get('before', ''))}"
        f"\n- refined: {_inline(s.get('after', ''))}"
        for s in samples[:3]
    )
    split = job.split or {}
    return f"""---
base_model: {job.base_model}
datasets:
- {job.dataset}
library_name: transformers
tags:
- danlu-refinery
- {job.method}
---

# {job.output_repo.split("/", 1)[1]}

Refined by danlu's refinery from [{job.base_model}](/{job.base_model}) (revision
`{job.base_revision[:12]}`) on [{job.dataset}](/datasets/{job.dataset}) (revision
`{job.dataset_revision[:12]}`, files: {", ".join(job.dataset_files)}), method **{job.method}**,
job `{job.id}`.

The weights at the root are the merged model; `adapter/` holds the {job.method} adapter alone.
The chat template is the base model's, the one it was trained with.

## Evaluation on the held-out split

{split.get("held_out", "?")} held-out examples of {split.get("total", "?")} (seed
{split.get("seed", "?")}), never trained on.

| metric | base | refined |
|---|---|---|
{rows}

![loss curve](loss_curve.png)

## Hyperparameters

| name | value |
|---|---|
{hyper}

## Samples

{shown}
"""


def publish(
    repos: Repos,
    committer: Committer,
    blobs: BlobStore,
    principal: Principal,
    job: FineTune,
    merged_dir: Path,
    adapter_dir: Path | None,
    metrics: dict[str, Any],
    samples: list[dict[str, Any]],
    curve: list[dict[str, Any]],
) -> str:
    """Commit the result to ``job.output_repo``; returns the commit id."""
    created = False
    try:
        repo = repos.find(principal, RepoType.MODEL, job.output_repo, write=True)
    except RepoNotFound:
        repo = repos.create(principal, RepoType.MODEL, job.output_repo, private=False, url="")
        created = True
    try:
        operations: list[Operation] = []
        for folder, prefix in ((merged_dir, ""), (adapter_dir, "adapter/")):
            if folder is None:
                continue
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                stored = blobs.put(_chunks(path))
                operations.append(
                    added_file(
                        blobs,
                        prefix + path.relative_to(folder).as_posix(),
                        stored.sha256,
                        stored.size,
                    )
                )
        extras = {
            "README.md": model_card(job, metrics, samples).encode(),
            "loss_curve.png": loss_curve_png(curve),
            "refinery.json": json.dumps(
                {
                    "job": job.id,
                    "base_model": job.base_model,
                    "base_revision": job.base_revision,
                    "dataset": job.dataset,
                    "dataset_revision": job.dataset_revision,
                    "dataset_files": job.dataset_files,
                    "method": job.method,
                    "hyperparameters": job.hyperparameters,
                    "split": job.split,
                    "metrics": metrics,
                },
                indent=2,
                ensure_ascii=False,
            ).encode(),
        }
        operations += [committer.store_regular(path, data) for path, data in extras.items()]
        commit = committer.commit(
            principal,
            repo,
            operations,
            title=f"Refined from {job.base_model} on {job.dataset} ({job.method}, job {job.id})",
        )
        return commit.id
    except BaseException:
        if created:
            repos.delete(principal, repo)
        raise
