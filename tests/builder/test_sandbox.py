"""The code node's sandbox, with real child processes: results, errors, limits, isolation.

Every isolation test names the layer it relies on; the ``disable`` knob of ``_execute``
switches layers off one at a time, to show that each holds on its own (defence in depth),
and that a missing required layer makes the sandbox refuse to run (fail closed).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import socket
import struct
import sys
import textwrap
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from danlu.builder import sandbox
from danlu.builder.sandbox import SandboxError, SandboxLimits, SandboxResult, run_code
from danlu.core.errors import InvalidRequest

T = TypeVar("T")


def _kernel_sandbox_missing() -> str | None:
    """Why this machine cannot confine code (then the sandbox rightly refuses to run)."""
    if not sys.platform.startswith("linux"):
        return "the sandbox needs Linux"
    if os.uname().machine not in ("x86_64", "aarch64"):
        return f"no seccomp syscall table for {os.uname().machine}"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1)) < 0:
        return "the kernel has no usable Landlock"
    if "Seccomp:" not in Path("/proc/self/status").read_text():
        return "the kernel has no seccomp"
    return None


MISSING = _kernel_sandbox_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def code(text: str) -> str:
    return textwrap.dedent(text)


def fails(source: str, inputs: dict[str, Any] | None = None, **kwargs: Any) -> SandboxError:
    """Run ``source`` through ``_execute`` and return the SandboxError it must raise."""
    with pytest.raises(SandboxError) as info:
        run(sandbox._execute(code(source), inputs or {}, **kwargs))
    return info.value


def test_main_returns_its_dict() -> None:
    result = run(run_code("def main(a, b):\n    return {'sum': a + b}\n", {"a": 1, "b": 2}))
    assert isinstance(result, SandboxResult)
    assert result.outputs == {"sum": 3}
    assert result.stdout == ""
    assert 0 < result.duration_ms < 10_000


def test_inputs_pass_through_as_json() -> None:
    inputs = {"text": "丹炉 中文 ✓", "n": 1.5, "items": [1, None, True], "nested": {"k": "v"}}
    result = run(run_code("def main(**inputs):\n    return {'echo': inputs}\n", inputs))
    assert result.outputs == {"echo": inputs}
    # The result makes a JSON round trip: tuples become lists.
    result = run(run_code("def main():\n    return {'t': (1, 2)}\n", {}))
    assert result.outputs == {"t": [1, 2]}


def test_stdout_and_stderr_are_captured() -> None:
    source = code(
        """
        import sys
        def main(name):
            print("hello", name)
            print("warn", file=sys.stderr)
            return {}
        """
    )
    result = run(run_code(source, {"name": "世界"}))
    assert result.stdout == "hello 世界\nwarn\n"


def test_bad_code() -> None:
    error = fails("def main(:\n    return {}\n")
    assert error.kind == "bad_code" and "line 1" in error.message
    assert isinstance(error, InvalidRequest)  # the API layer answers 400
    error = fails("def helper():\n    return {}\n")
    assert error.kind == "bad_code" and "main" in error.message
    assert fails("main = 3\n").kind == "bad_code"


def test_exception_in_main_is_an_error_with_its_message() -> None:
    source = """
        def main():
            print("before")
            raise ValueError("boom 中")
        """
    error = fails(source)
    assert error.kind == "error"
    assert "ValueError: boom 中" in error.message
    assert error.traceback is not None and 'raise ValueError("boom 中")' in error.traceback
    assert error.stdout == "before\n"
    assert error.extra == {"kind": "error"}


def test_return_value_must_be_a_json_dict() -> None:
    error = fails("def main():\n    return [1, 2]\n")
    assert error.kind == "error" and "must return a dict" in error.message
    error = fails("def main():\n    return {'x': object()}\n")
    assert error.kind == "error" and "JSON" in error.message
    error = fails("def main():\n    return {'x': float('nan')}\n")
    assert error.kind == "error" and "JSON" in error.message


def test_cpu_limit_stops_a_busy_loop() -> None:
    started = time.monotonic()
    error = fails(
        "def main():\n    while True:\n        pass\n",
        limits=SandboxLimits(cpu_seconds=1, wall_seconds=20),
    )
    assert error.kind == "cpu"
    assert time.monotonic() - started < 10


def test_wall_clock_limit_stops_a_sleeper() -> None:
    started = time.monotonic()
    error = fails(
        "import time\ndef main():\n    time.sleep(60)\n",
        limits=SandboxLimits(wall_seconds=1),
    )
    assert error.kind == "timeout"
    assert time.monotonic() - started < 5
    # Closing its pipes does not get it out of the deadline.
    started = time.monotonic()
    error = fails(
        "import os, time\ndef main():\n    os.closerange(0, 30)\n    time.sleep(60)\n",
        limits=SandboxLimits(wall_seconds=1),
    )
    assert error.kind == "timeout"
    assert time.monotonic() - started < 5


def test_memory_limit() -> None:
    limits = SandboxLimits(memory_bytes=128 * 1024 * 1024)
    source = """
        def main():
            hoard = []
            while True:
                hoard.append(bytearray(1024 * 1024))
        """
    assert fails(source, limits=limits).kind == "memory"
    assert fails("def main():\n    return {'x': len(bytearray(10**10))}\n").kind == "memory"


@pytest.mark.parametrize("disable", [(), ("audit",)], ids=["all-layers", "seccomp-alone"])
def test_no_new_processes(disable: tuple[str, ...]) -> None:
    attempts = [
        "import os\ndef main():\n    os.fork()\n",
        "import subprocess\ndef main():\n    subprocess.run(['/bin/true'])\n",
        "import os, sys\ndef main():\n    os.execv(sys.executable, [sys.executable])\n",
        "import multiprocessing\ndef main():\n    multiprocessing.Process(target=print).start()\n",
    ]
    for source in attempts:
        error = fails(source, disable=disable, allow_degraded=True)
        assert error.kind == "forbidden", (source, error.message)
    # os.system reports failure as a status, not an exception: only the audit hook turns it
    # into one; under seccomp alone the shell simply never starts.
    if not disable:
        assert fails("import os\ndef main():\n    os.system('true')\n").kind == "forbidden"
    else:
        result = run(
            sandbox._execute(
                "import os\ndef main():\n    return {'status': os.system('true')}\n",
                {},
                disable=disable,
                allow_degraded=True,
            )
        )
        assert result[0].outputs["status"] != 0


@pytest.mark.parametrize("disable", [(), ("audit",)], ids=["all-layers", "seccomp-alone"])
def test_cannot_signal_or_limit_the_server(disable: tuple[str, ...]) -> None:
    for source in [
        "import os\ndef main():\n    os.kill(os.getppid(), 0)\n",
        "import os, resource\n"
        "def main():\n    resource.prlimit(os.getppid(), resource.RLIMIT_NOFILE)\n",
    ]:
        assert fails(source, disable=disable, allow_degraded=True).kind == "forbidden"


def test_landlock_alone_keeps_signals_inside() -> None:
    error = fails(
        "import os\ndef main():\n    os.kill(os.getppid(), 0)\n",
        disable=("audit", "seccomp"),
        allow_degraded=True,
    )
    assert error.kind == "forbidden"


def test_threads_and_asyncio_still_work() -> None:
    source = """
        import asyncio, os, signal, threading
        def main():
            seen = []
            thread = threading.Thread(target=lambda: seen.append(1))
            thread.start()
            thread.join()
            async def answer():
                await asyncio.sleep(0)
                return 42
            signal.signal(signal.SIGUSR1, lambda *a: seen.append(2))
            os.kill(os.getpid(), signal.SIGUSR1)  # signalling itself is fine
            return {"seen": seen, "answer": asyncio.run(answer())}
        """
    result = run(run_code(code(source), {}))
    assert result.outputs == {"seen": [1, 2], "answer": 42}


def test_stdlib_imports_work_inside() -> None:
    source = """
        def main():
            import datetime, decimal, hashlib, json, re, sqlite3, statistics
            db = sqlite3.connect(":memory:")
            db.execute("create table t (x)")
            return {"d": str(decimal.Decimal("1.10") * 3), "h": hashlib.sha256(b"").hexdigest()}
        """
    result = run(run_code(code(source), {}))
    assert result.outputs["d"] == "3.30"


def test_files_outside_the_scratch_dir_are_out_of_reach(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    for source in [
        "def main():\n    return {'x': open('/etc/passwd').read()}\n",
        f"def main():\n    return {{'x': open({str(secret)!r}).read()}}\n",
        "import os\ndef main():\n    return {'x': os.listdir('/')}\n",
        f"import os\ndef main():\n    return {{'x': os.listdir({str(tmp_path)!r})}}\n",
        "def main():\n    return {'x': open('/proc/1/environ', 'rb').read().decode()}\n",
    ]:
        error = fails(source)
        assert error.kind == "forbidden", (source, error.message)
        assert "s3cret" not in error.message


def test_scratch_dir_is_writable_and_everything_else_is_not(tmp_path: Path) -> None:
    outside = tmp_path / "escaped.txt"
    source = f"""
        import os, tempfile
        def main():
            with open("note.txt", "w") as f:
                f.write("kept")
            with tempfile.NamedTemporaryFile(delete=False) as t:
                t.write(b"x")
            home = os.environ["HOME"]
            try:
                open({str(outside)!r}, "w")
                escaped = True
            except PermissionError:
                escaped = False
            return {{
                "read_back": open("note.txt").read(),
                "cwd": os.getcwd(),
                "same_dirs": home == os.getcwd() == os.environ["TMPDIR"],
                "tmp_in_scratch": os.path.dirname(t.name) == os.getcwd(),
                "env": sorted(os.environ),
                "escaped": escaped,
            }}
        """
    outputs = run(run_code(code(source), {})).outputs
    assert outputs["read_back"] == "kept"
    assert outputs["same_dirs"] and outputs["tmp_in_scratch"]
    assert not outputs["escaped"] and not outside.exists()
    assert "PATH" in outputs["env"] and not any("KEY" in k or "TOKEN" in k for k in outputs["env"])
    assert not Path(outputs["cwd"]).exists()  # the scratch directory is removed afterwards


def test_scratch_space_is_bounded_where_namespaces_work() -> None:
    _, layers = run(sandbox._execute("def main():\n    return {}\n", {}))
    if not layers["tmpfs"].startswith("on"):
        pytest.skip(f"no tmpfs scratch here: {layers['tmpfs']}")
    source = """
        def main():
            for i in range(1000):
                with open(f"f{i}", "wb") as f:
                    f.write(b"x" * 2**20)
        """
    error = fails(source, limits=SandboxLimits(memory_bytes=64 * 1024 * 1024))
    assert error.kind == "error" and "No space left on device" in error.message


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    return server


@pytest.mark.parametrize(
    "disable",
    [(), ("audit",), ("audit", "seccomp"), ("audit", "seccomp", "landlock")],
    ids=["all-layers", "seccomp", "landlock-net", "netns"],
)
def test_no_network(disable: tuple[str, ...]) -> None:
    server = _listener()
    try:
        port = server.getsockname()[1]
        source = f"""
            import socket
            def main():
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(("127.0.0.1", {port}))
                return {{"connected": True}}
            """
        if "landlock" in disable:
            _, layers = run(sandbox._execute("def main():\n    return {}\n", {}))
            if not layers["netns"].startswith("on"):
                pytest.skip(f"no network namespace here: {layers['netns']}")
        error = fails(source, disable=disable, allow_degraded=True)
        if "landlock" in disable:
            # The empty network namespace alone: the loopback is down, nothing to reach.
            assert error.kind == "error" and "unreachable" in error.message
        else:
            assert error.kind == "forbidden", error.message
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the listener
    finally:
        server.close()


def test_fail_closed_without_landlock_or_seccomp() -> None:
    for layer in ("landlock", "seccomp"):
        error = fails("def main():\n    return {}\n", disable=(layer,))
        assert error.kind == "forbidden"
        assert layer in error.message and "allow_degraded" in error.message
        # An explicit opt-in runs it, degraded.
        result, layers = run(
            sandbox._execute(
                "def main():\n    return {'ran': 1}\n", {}, disable=(layer,), allow_degraded=True
            )
        )
        assert result.outputs == {"ran": 1} and layers[layer].startswith("off")


def test_every_layer_is_on_here() -> None:
    source = """
        def main():
            return {}
        """
    _, layers = run(sandbox._execute(code(source), {}))
    for name in ("rlimits", "capabilities", "landlock", "seccomp", "audit"):
        assert layers[name].startswith("on"), layers
    # Verify from inside (Landlock off so /proc is readable): no capabilities, filter active.
    source = """
        def main():
            fields = dict(line.split(":\\t", 1) for line in open("/proc/self/status"))
            return {k: fields[k].strip() for k in ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp")}
        """
    result, _ = run(sandbox._execute(code(source), {}, disable=("landlock",), allow_degraded=True))
    assert result.outputs == {
        "CapEff": "0000000000000000",
        "CapBnd": "0000000000000000",
        "NoNewPrivs": "1",
        "Seccomp": "2",
    }


def test_output_limits() -> None:
    limits = SandboxLimits(output_bytes=64 * 1024)
    # A result over the limit is an error...
    error = fails("def main():\n    return {'x': 'a' * 100_000}\n", limits=limits)
    assert error.kind == "output"
    # Right under the limit passes, however much the reply's escaping inflates it.
    source = "def main():\n    print('\\x00' * 60_000)\n    return {'x': '😀' * 16_000}\n"
    result = run(run_code(source, {}, limits))
    assert result.outputs == {"x": "😀" * 16_000} and result.stdout == "\x00" * 60_000 + "\n"
    # ...printing too much only truncates what is kept...
    result = run(
        run_code("def main():\n    print('中' * 10**6)\n    return {'ok': 1}\n", {}, limits)
    )
    assert result.outputs == {"ok": 1}
    assert result.stdout.startswith("中" * 1000) and "stdout truncated" in result.stdout
    assert len(result.stdout.encode()) < 64 * 1024 + 100
    # ...and flooding the raw file descriptors stops the run.
    started = time.monotonic()
    error = fails(
        "import os\ndef main():\n    while True:\n        os.write(1, b'x' * 65536)\n",
        limits=limits,
    )
    assert error.kind == "output"
    assert time.monotonic() - started < 5


def test_ten_concurrent_runs() -> None:
    async def many() -> list[SandboxResult]:
        return await asyncio.gather(
            *(run_code("def main(i):\n    return {'square': i * i}\n", {"i": i}) for i in range(10))
        )

    results = run(many())
    assert [r.outputs["square"] for r in results] == [i * i for i in range(10)]


def _children() -> list[int]:
    """This process's live child processes."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def test_cancellation_kills_the_child() -> None:
    async def scenario() -> int:
        before = set(_children())
        task = asyncio.create_task(
            run_code("def main():\n    while True:\n        pass\n", {}, SandboxLimits(60, 60))
        )
        pid = None
        for _ in range(200):
            await asyncio.sleep(0.02)
            new = set(_children()) - before
            if new:
                pid = new.pop()
                break
        assert pid is not None, "the sandbox child never started"
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    pid = run(scenario())
    assert not Path(f"/proc/{pid}").exists()


def test_limits_are_validated() -> None:
    with pytest.raises(InvalidRequest):
        SandboxLimits(cpu_seconds=0)
    with pytest.raises(InvalidRequest):
        SandboxLimits(wall_seconds=float("inf"))
    with pytest.raises(SandboxError) as info:
        run(run_code("def main():\n    return {}\n", {"x": object()}))
    assert info.value.kind == "error"


def _run_bpf(prog: list[tuple[int, int, int, int]], arch: int, nr: int, args: list[int]) -> int:
    """A tiny classic-BPF interpreter for the instructions the filter uses."""
    data = struct.pack("<iIQ6Q", nr, arch, 0, *(args + [0] * (6 - len(args))))
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == 0x20:  # ld word at k
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code in (0x15, 0x35, 0x45):  # jeq, jge, jset
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected BPF opcode {code:#x}")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_seccomp_program_decides_right_on_both_architectures(machine: str) -> None:
    from danlu.builder import _sandbox_child as child

    audit_arch, table, _ = child._ARCHES[machine]
    pid = 4242
    prog = child.seccomp_program(machine, pid)
    assert len(prog) < 4096  # BPF_MAXINSNS
    allow, eperm = child.SECCOMP_RET_ALLOW, child.SECCOMP_RET_ERRNO | errno.EPERM
    enosys = child.SECCOMP_RET_ERRNO | errno.ENOSYS

    def decide(name: str, *args: int) -> int:
        return _run_bpf(prog, audit_arch, table[name], list(args))

    assert decide("socket", socket.AF_INET) == eperm
    assert decide("socket", socket.AF_UNIX) == eperm
    assert decide("socketpair", socket.AF_UNIX) == allow
    assert decide("socketpair", socket.AF_INET) == eperm
    assert decide("clone", 0x3D0F00) == allow  # pthread_create's flags include CLONE_THREAD
    assert decide("clone", 0x11) == eperm  # fork: SIGCHLD only
    assert decide("clone3") == enosys
    for name in ("execve", "ptrace", "mount", "unshare", "bpf", "io_uring_setup", "setns"):
        assert decide(name) == eperm, name
    assert decide("kill", pid, 10) == allow and decide("kill", 1, 9) == eperm
    assert decide("kill", 2**32 - 1, 9) == eperm  # kill(-1): every process we may signal
    assert decide("tgkill", pid, pid + 1, 10) == allow and decide("tgkill", 1, 1, 9) == eperm
    assert decide("prlimit64", 0, 7) == allow and decide("prlimit64", 1, 7) == eperm
    # Calls outside the list pass; a foreign calling convention is killed outright.
    assert _run_bpf(prog, audit_arch, 0, []) == allow
    assert _run_bpf(prog, 0x40000003, table["socket"], []) == child.SECCOMP_RET_KILL_PROCESS
    if machine == "x86_64":
        assert decide("fork") == eperm and decide("vfork") == eperm
        assert _run_bpf(prog, audit_arch, 0x40000000 | 41, []) == eperm  # x32 socket()


def test_unknown_architecture_has_no_filter() -> None:
    from danlu.builder import _sandbox_child as child

    with pytest.raises(child.LayerUnavailable, match="no syscall table for architecture"):
        child.seccomp_program("riscv64", 1)
