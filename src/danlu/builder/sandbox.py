"""The code node's sandbox: run untrusted Python in a confined child process.

The user's code defines ``def main(**inputs) -> dict`` (Dify's convention). :func:`run_code`
starts a fresh interpreter (``danlu/builder/_sandbox_child.py``) in its own process group with
a clean environment and a fresh scratch directory, sends it the code and the inputs as JSON on
stdin, and reads back main()'s dict (and what the code printed) as JSON. The event loop is
never blocked, and the whole process group is killed on the wall-clock deadline, on an output
flood, or when the awaiting task is cancelled.

The child confines itself before the code runs: resource limits, user + network + mount
namespaces with a size-limited tmpfs as scratch directory (where the kernel allows), no
capabilities, Landlock, seccomp and an audit hook. Landlock and seccomp are required: without
either the run is refused (``SandboxError`` "forbidden" naming what is missing) unless the
caller passes ``allow_degraded=True``. docs/sandbox.md lists what each layer blocks and the
known gaps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from danlu.core.errors import InvalidRequest

log = logging.getLogger(__name__)

SandboxErrorKind = Literal["timeout", "memory", "cpu", "forbidden", "error", "output", "bad_code"]
_KINDS: frozenset[str] = frozenset(get_args(SandboxErrorKind))

_CHILD = Path(__file__).with_name("_sandbox_child.py")
# What the child writes to stderr (its own crash reports; raw writes to fd 1 or 2) beyond this
# is dropped; beyond output_bytes the run is stopped as an output flood.
_STDERR_KEEP = 16 * 1024
# The reply is ASCII JSON: main()'s result (at most output_bytes as UTF-8 JSON) grows up to 3x
# (an astral character, 4 bytes, becomes a 12-byte surrogate pair escape), the captured stdout
# (at most output_bytes of UTF-8) up to 6x (a control character becomes \u00XX); plus framing.
_REPLY_FACTOR = 10
_REPLY_OVERHEAD = 64 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits.

    ``memory_bytes`` caps the child's address space (RLIMIT_AS), each file it writes
    (RLIMIT_FSIZE) and, where the kernel allows the tmpfs scratch directory, the scratch
    directory's total size. ``output_bytes`` caps main()'s result as UTF-8 JSON (over it is an
    "output" error) and, separately, the captured stdout (truncated past it, not an error).
    """

    wall_seconds: float = 10.0
    cpu_seconds: int = 5
    memory_bytes: int = 256 * 1024 * 1024
    output_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        if not (math.isfinite(self.wall_seconds) and self.wall_seconds > 0):
            raise InvalidRequest("wall_seconds must be a positive number", param="wall_seconds")
        for name in ("cpu_seconds", "memory_bytes", "output_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InvalidRequest(f"{name} must be a positive integer", param=name)


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class SandboxResult:
    """What main() returned (after a JSON round trip), what the code printed (stdout and
    stderr interleaved, truncated to ``output_bytes``), and the run's wall time."""

    outputs: dict[str, Any]
    stdout: str
    duration_ms: float


class SandboxError(InvalidRequest):
    """The code could not run, failed, or broke a limit; ``kind`` says which."""

    def __init__(
        self,
        kind: SandboxErrorKind,
        message: str,
        *,
        stdout: str = "",
        traceback: str | None = None,
    ) -> None:
        super().__init__(message, code=f"sandbox_{kind}")
        self.kind: SandboxErrorKind = kind
        self.stdout = stdout
        self.traceback = traceback
        self.extra["kind"] = kind


async def run_code(
    code: str,
    inputs: dict[str, Any],
    limits: SandboxLimits = DEFAULT_LIMITS,
    *,
    allow_degraded: bool = False,
) -> SandboxResult:
    """Run ``code``'s ``main(**inputs)`` in the sandbox and return its dict.

    Raises :class:`SandboxError`. ``allow_degraded=True`` runs the code even where Landlock
    or seccomp cannot be applied (the missing layers are logged); never use it for code you
    do not trust.
    """
    result, _ = await _execute(code, inputs, limits, allow_degraded=allow_degraded)
    return result


async def _execute(
    code: str,
    inputs: dict[str, Any],
    limits: SandboxLimits = DEFAULT_LIMITS,
    *,
    allow_degraded: bool = False,
    disable: Collection[str] = (),
) -> tuple[SandboxResult, dict[str, str]]:
    """run_code, plus the state of each isolation layer. ``disable`` (for tests) makes the
    child treat the named layers ("netns", "tmpfs", "capabilities", "landlock", "seccomp",
    "audit") as unavailable, which exercises the fail-closed path and each layer alone."""
    if not isinstance(code, str):
        raise SandboxError("bad_code", "the code must be a string")
    if not isinstance(inputs, dict) or not all(isinstance(k, str) for k in inputs):
        raise SandboxError("error", "inputs must be a dict with string keys")
    scratch = tempfile.mkdtemp(prefix="danlu-sandbox-")
    try:
        request = json.dumps(
            {
                "code": code,
                "inputs": inputs,
                "limits": asdict(limits),
                "scratch": scratch,
                "parent_pid": os.getpid(),
                "allow_degraded": allow_degraded,
                "disable": sorted(disable),
            },
            ensure_ascii=False,
            allow_nan=False,
        ).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError) as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SandboxError("error", f"inputs must be JSON-serialisable: {exc}") from None
    try:
        return await _supervise(request, scratch, limits)
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def _child_env(scratch: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": scratch,
        "TMPDIR": scratch,
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        # Numeric libraries would otherwise start a thread per core, each with its own stack.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


async def _supervise(
    request: bytes, scratch: str, limits: SandboxLimits
) -> tuple[SandboxResult, dict[str, str]]:
    if not sys.executable:
        raise SandboxError("error", "no Python interpreter to run the sandbox with")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",  # isolated: no PYTHON* variables, no user site, no script dir on sys.path
        "-B",
        "-X",
        "utf8",
        str(_CHILD),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=scratch,
        env=_child_env(scratch),
        start_new_session=True,  # its own process group, killed as a whole
    )
    state = {"killed_by": ""}

    def kill(reason: str) -> None:
        if proc.returncode is None:
            state["killed_by"] = state["killed_by"] or reason
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    reply_cap = _REPLY_FACTOR * limits.output_bytes + _REPLY_OVERHEAD
    try:
        try:
            reply, errors, returncode = await asyncio.wait_for(
                _converse(proc, request, reply_cap, limits.output_bytes, kill),
                timeout=limits.wall_seconds,
            )
        except TimeoutError:
            kill("timeout")
            reply, errors, returncode = b"", b"", await proc.wait()
    finally:
        # Cancelled, or anything unexpected: never leave the child running.
        kill("cancelled")
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
    duration_ms = (time.monotonic() - started) * 1000
    return _outcome(reply, errors, returncode, state["killed_by"], limits, duration_ms)


async def _converse(
    proc: asyncio.subprocess.Process,
    request: bytes,
    reply_cap: int,
    stderr_cap: int,
    kill: Callable[[str], None],
) -> tuple[bytes, bytes, int]:
    """Send the request, collect the reply and stderr (bounded), wait for the exit status."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    async def feed(stream: asyncio.StreamWriter) -> None:
        try:
            stream.write(request)
            await stream.drain()
            stream.close()
            await stream.wait_closed()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the child died early; its exit status says why

    async def drain(stream: asyncio.StreamReader, cap: int, keep: int) -> bytes:
        kept = bytearray()
        total = 0
        while chunk := await stream.read(64 * 1024):
            total += len(chunk)
            if len(kept) < keep:
                kept += chunk[: keep - len(kept)]
            if total > cap:
                kill("output")
        return bytes(kept)

    _, reply, errors = await asyncio.gather(
        feed(proc.stdin),
        drain(proc.stdout, reply_cap, reply_cap),
        drain(proc.stderr, stderr_cap, _STDERR_KEEP),
    )
    # The pipes can close before the process ends (the code may close them itself): the exit
    # is awaited under the same deadline.
    return reply, errors, await proc.wait()


def _outcome(
    reply_bytes: bytes,
    errors: bytes,
    returncode: int,
    killed_by: str,
    limits: SandboxLimits,
    duration_ms: float,
) -> tuple[SandboxResult, dict[str, str]]:
    if killed_by == "timeout":
        raise SandboxError("timeout", f"the code ran longer than {limits.wall_seconds:g} s")
    if killed_by == "output":
        raise SandboxError(
            "output",
            f"the code wrote more than the {limits.output_bytes}-byte output limit "
            "(to its raw stdout/stderr, or as its result)",
        )
    reply = _parse_reply(reply_bytes)
    if reply is None:
        raise _died(returncode, errors, limits)
    layers = {str(k): str(v) for k, v in reply["layers"].items()}
    if reply.get("ran") and any(not (v == "on" or v.startswith("on ")) for v in layers.values()):
        log.warning("code sandbox ran degraded: %s", layers)
    stdout = reply["stdout"]
    if not reply["ok"]:
        raise SandboxError(
            reply["kind"], reply["message"], stdout=stdout, traceback=reply["traceback"]
        )
    outputs = reply["outputs"]
    # The child ran untrusted code and might have forged its reply: check the limit again.
    size = len(json.dumps(outputs, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > limits.output_bytes:
        raise SandboxError(
            "output",
            f"main() returned {size} bytes of JSON; the limit is {limits.output_bytes} bytes",
        )
    return SandboxResult(outputs=outputs, stdout=stdout, duration_ms=duration_ms), layers


def _parse_reply(data: bytes) -> dict[str, Any] | None:
    """The child's reply if it is well-formed, else None."""
    try:
        reply = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return None
    if not isinstance(reply.get("stdout"), str) or not isinstance(reply.get("layers"), dict):
        return None
    if reply["ok"]:
        return reply if isinstance(reply.get("outputs"), dict) else None
    if reply.get("kind") not in _KINDS or not isinstance(reply.get("message"), str):
        return None
    if not isinstance(reply.get("traceback"), str | None):
        return None
    return reply


def _died(returncode: int, errors: bytes, limits: SandboxLimits) -> SandboxError:
    """Why the child ended without a (well-formed) reply."""
    tail = errors.decode("utf-8", "replace").strip()[-2000:]
    detail = f": {tail}" if tail else ""
    if returncode == -signal.SIGXCPU or returncode == -signal.SIGKILL:
        # SIGXCPU at the soft CPU limit; SIGKILL at the hard one (we did not send it).
        return SandboxError("cpu", f"the code used more than {limits.cpu_seconds} s of CPU time")
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        return SandboxError(
            "memory", f"the code ran out of memory ({limits.memory_bytes} bytes){detail}"
        )
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return SandboxError("error", f"the sandboxed process crashed ({name}){detail}")
    return SandboxError(
        "error",
        f"the sandboxed process exited (status {returncode}) without a valid result{detail}",
    )
