"""Readiness: answers only once start-up (migrations, model loading) is done."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from danlu import __version__
from danlu.api.state import Services, get_services

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Ready to serve")
async def healthz(services: Annotated[Services, Depends(get_services)]) -> dict[str, Any]:
    return {
        "status": "ok",
        "version": __version__,
        "models": {m.id: m.stats() for m in sorted(services.models.models(), key=lambda m: m.id)},
        "providers": [asdict(status) for status in services.models.statuses],
    }
