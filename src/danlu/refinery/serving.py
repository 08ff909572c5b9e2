"""Serving a refined model through the gateway once its job has succeeded."""

from __future__ import annotations

import asyncio
import logging

from danlu.core.errors import DanluError
from danlu.core.keys import ApiKeys
from danlu.core.tables import User, Workspace
from danlu.gateway.hub_models import HubServing
from danlu.refinery.job_tables import FineTune
from danlu.refinery.jobs import FineTunes

log = logging.getLogger(__name__)


def served_name(job: FineTune) -> str:
    """The model name a refined model is served under: its repo's name."""
    return job.output_repo.split("/", 1)[1]


async def serve_result(jobs: FineTunes, serving: HubServing, job: FineTune) -> str:
    """Serve ``job``'s published model (transformers weights) as ``served_name(job)``."""
    name = served_name(job)
    if not await asyncio.to_thread(jobs.mark_served, job.id, name):
        return name  # served already (by this call's twin, or another server)
    try:
        with jobs.db.read() as session:
            user = session.get(User, job.user_id)
            workspace = session.get(Workspace, job.workspace_id)
        if user is None or workspace is None:
            raise DanluError("the job's user or workspace no longer exists")
        principal = ApiKeys.local_principal(user, workspace)
        await serving.serve(principal, job.output_repo, name=name, format="transformers")
    except BaseException:
        await asyncio.to_thread(jobs.mark_served, job.id, None)
        raise
    return name


async def serve_finished(jobs: FineTunes, serving: HubServing) -> None:
    """Serve every succeeded job that asked for it (called on the server's sync timer)."""
    for job in await asyncio.to_thread(jobs.to_serve):
        try:
            await serve_result(jobs, serving, job)
        except DanluError as exc:
            log.warning("serving the result of %s failed: %s", job.id, exc.message)
            await asyncio.to_thread(
                jobs.record, job.id, "log", {"message": f"serving failed: {exc.message}"}
            )
