"""Moving file bytes over HTTP for both hub protocols: signed uploads and ranged downloads."""

from __future__ import annotations

import re

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from danlu.api.hub_common import Signer
from danlu.api.state import Services
from danlu.core.errors import InvalidRequest, RangeNotSatisfiable
from danlu.hub.objects import FileEntry

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


async def receive_signed_upload(request: Request, services: Services, oid: str, token: str) -> None:
    """Stream a PUT body to the blob store under an upload link's claim.

    The link names the object and its size; the bytes are hashed on the way in and kept only
    if they are exactly that object.
    """
    signer: Signer = request.app.state.signer
    claim = signer.verify(token)
    if claim.get("oid") != oid or "size" not in claim:
        raise InvalidRequest("this upload link is for another object", param="oid")
    await services.blobs.put_stream(
        request.stream(), expected_sha256=oid, max_size=int(claim["size"])
    )


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end exclusive) for a single-range header, None for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None  # unsupported forms (multi-range): send the whole file, as allowed
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    else:
        start, end = max(0, size - int(last)), size
    if start >= size or start >= end:
        raise RangeNotSatisfiable(
            f"range {header} is outside the file of {size} bytes", code="RangeNotSatisfiable"
        )
    return start, end


def file_response(
    request: Request, services: Services, entry: FileEntry, headers: dict[str, str]
) -> Response:
    """HEAD, GET or a ranged GET (206) of a stored file, streamed from the blob store."""
    span = byte_range(request.headers.get("range"), entry.size)
    headers = {**headers, "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        headers["Content-Length"] = str(entry.size)
        return Response(status_code=200, headers=headers)
    start, end = span or (0, entry.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{entry.size}"
    chunks = services.blobs.read_ahead(entry.sha256, start, end)
    return StreamingResponse(chunks, status_code=status, headers=headers)
