"""``danlu refine``: fine-tune a hub model on a hub dataset, here and now, with a progress bar."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import click

from danlu.cli.common import home_option, open_core
from danlu.core.errors import DanluError


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@click.command()
@home_option
@click.option(
    "--dataset", required=True, help="A hub dataset repo: messages, ShareGPT or Alpaca rows."
)
@click.option(
    "--base",
    default="danlu/smollm2-135m-instruct",
    show_default=True,
    help="A hub model repo (GGUF or transformers weights).",
)
@click.option(
    "--method", type=click.Choice(["lora", "full", "qlora"]), default="lora", show_default=True
)
@click.option(
    "--epochs", type=int, default=None, help="Passes over the training split (default 3)."
)
@click.option(
    "--learning-rate", type=float, default=None, help="Peak learning rate (default 2e-4)."
)
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps instead.")
@click.option(
    "--set", "settings", multiple=True, metavar="NAME=VALUE", help="Any other hyperparameter."
)
@click.option("--output", default=None, help="The model repo to publish to (namespace/name).")
@click.option("--user", "username", default="admin", show_default=True, help="Whose job it is.")
@click.option("--serve", is_flag=True, help="Have the running server serve the result.")
@click.option("--queue", "queue_only", is_flag=True, help="Only queue it for the server's workers.")
def refine(
    home: Path | None,
    dataset: str,
    base: str,
    method: str,
    epochs: int | None,
    learning_rate: float | None,
    max_steps: int | None,
    settings: tuple[str, ...],
    output: str | None,
    username: str,
    serve: bool,
    queue_only: bool,
) -> None:
    """Fine-tune BASE on DATASET and publish the result to the hub, showing progress.

    The job is the same one `POST /v1/fine-tunes` makes: it appears in the API and console,
    and a resumed run continues from its last checkpoint.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from danlu.hub.repos import Repos
    from danlu.refinery.jobs import FineTunes, worker_name
    from danlu.refinery.worker import run_one

    hyperparameters: dict[str, Any] = {}
    given = {"epochs": epochs, "learning_rate": learning_rate, "max_steps": max_steps}
    hyperparameters.update({k: v for k, v in given.items() if v is not None})
    for item in settings:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--set")
        key, text = item.split("=", 1)
        hyperparameters[key.strip()] = _value(text.strip())
    core = open_core(home)
    try:
        jobs = FineTunes(core.db, Repos(core.db, anonymous_read=core.settings.hub_anonymous_read))
        user = core.accounts.user(username)
        principal = core.keys.local_principal(user, core.accounts.personal_workspace(user))
        job = jobs.create(
            principal,
            base_model=base,
            dataset=dataset,
            method=method,
            hyperparameters=hyperparameters,
            output_repo=output,
            serve=serve,
        )
        click.echo(f"Job {job.id}: {job.base_model} on {job.dataset} → {job.output_repo}", err=True)
        if queue_only:
            click.echo(job.id)
            return
        outcome: dict[str, BaseException] = {}

        def work() -> None:
            try:
                run_one(core, jobs, worker_name(), job.id)
            except BaseException as exc:  # shown below, after the progress bar ends
                outcome["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        seen = 0
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
        ) as progress:
            task = progress.add_task("queued", total=None, detail="")
            while thread.is_alive() or seen < _last_event(jobs, job.id):
                for event in jobs.events(job.id, seen):
                    seen = event.id
                    data = event.data
                    if event.kind == "status" and "stage" in data:
                        progress.update(task, description=str(data["stage"]))
                    elif event.kind == "progress":
                        progress.update(
                            task,
                            total=data.get("total_steps"),
                            completed=data.get("step", 0),
                            detail=f"loss {data.get('loss', 0):.4f} · "
                            f"{data.get('tokens_per_second', 0):.0f} tok/s",
                        )
                    elif event.kind == "log" and "message" in data:
                        progress.console.print(str(data["message"]))
                time.sleep(0.5)
        if "error" in outcome:
            raise outcome["error"]
        finished = jobs.load(job.id)
        if finished.status != "succeeded":
            raise click.ClickException(f"job {job.id} {finished.status}: {finished.error or ''}")
        before, after = finished.metrics.get("before", {}), finished.metrics.get("after", {})
        for name in sorted(set(before) | set(after)):
            click.echo(f"{name:24s} {before.get(name, '–')!s:>12} → {after.get(name, '–')!s:>12}")
        click.echo(f"Published {finished.output_repo}", err=True)
    except DanluError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        core.close()


def _last_event(jobs: Any, job_id: str) -> int:
    found = jobs.events(job_id, 0, limit=100_000)
    return found[-1].id if found else 0
