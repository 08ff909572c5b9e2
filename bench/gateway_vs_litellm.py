"""Gateway overhead: danlu's gateway against LiteLLM's proxy, side by side, in one run.

What it measures
    Three targets answer the same OpenAI chat request on this machine:

    * **direct**: ``bench/mock_openai.py``, an OpenAI-compatible upstream that answers at once
      (a raw asyncio protocol on uvloop with the httptools parser, in its own process): the
      limit any gateway in front of it can reach with this client on these cores;
    * **danlu**: ``danlu serve`` (this checkout's virtual environment, a temporary home,
      ``DANLU_EMBEDDED_MODELS=0``), with the mock as an ``openai_compatible`` provider in
      ``providers.toml`` and an API key made by ``danlu keys create``;
    * **litellm**: LiteLLM's proxy (``litellm --config ... --num_workers 1``) from
      ``litellm==LITELLM_VERSION`` in a virtual environment of its own, with the mock as an
      ``openai/`` model with ``api_base``, and a master key.

    For each mode (not streamed; streamed, with ``stream_options.include_usage``) and
    concurrency (1, 16, 64 connections, keep-alive), in that order, the three targets take
    turns: a short warm-up (``--warmup`` s), then ``--duration`` s of load from ``wrk`` (one
    thread: the client must stay cheap on two shared cores), which reports requests per second
    and the latency percentiles of whole answers (for a stream, to ``data: [DONE]``).
    "Added latency" is a target's latency minus direct's at the same mode and concurrency.
    Beside the figures: the target's CPU time per request (from /proc, all its threads and
    child processes), and the CPU that the rest of the machine used during the run (busy time
    less the target's, the mock's and wrk's), since the machine may be shared and these
    figures swing with anything else running.

Correctness
    Before the load, a few requests per target and mode are checked in full (status 200, the
    mock's answer reassembled from the JSON or the SSE chunks, ``[DONE]``, usage). During the
    load, wrk's Lua ``response`` hook checks every response (status 200, the answer's first and
    last pieces, and ``[DONE]`` for streams); a run with any bad response or socket error is
    reported as failed, so a fast error path cannot win.

Fairness
    Both gateways run one process (one worker) on uvloop with uvicorn's httptools parser (the
    LiteLLM environment gets ``httptools`` added, as uvicorn's "standard" extra would bring;
    without it LiteLLM's uvicorn parses HTTP with h11, more slowly), log at warning level and
    require a key on every request. They differ in what they do per request, which is what is
    being compared: LiteLLM runs without a database, so it checks the master key by comparing
    strings and keeps no spend logs; danlu looks the key up in its database (SQLite here),
    applies its limits, and writes a ledger row for every request (metering on, billing off:
    its defaults). Neither retries or caches. All processes share the machine's cores; the
    mock's and wrk's own costs are in every target's figures alike, and "direct" shows them
    alone.

The goals (from the gateway issue): danlu at least 3x LiteLLM's requests per second, at most
a third of its added latency, and at least 70% of the direct limit's requests per second.

Soak
    ``--soak N`` skips the comparison: it sends N requests through danlu (streamed and not,
    alternately, at 16 connections) and samples the danlu process's resident memory (VmRSS)
    every few thousand requests; growth after the first ``--soak-warmup`` requests must stay
    under ``--soak-max-growth-mb``. ``tests/bench/test_gateway_soak.py`` runs it (``make
    soak``).

Needs ``wrk`` (Debian: ``apt-get install wrk``). LiteLLM's environment is created on first use
in the temporary directory (about 800 MB, a minute or two); ``--litellm-python`` reuses one.
Where the package index lacks ``litellm-proxy`` (a package split out of litellm that the
``proxy`` extra pins to the same release), the extra's other requirements are installed one by
one instead; the proxy server itself ships in the ``litellm`` package.

Run: ``python bench/gateway_vs_litellm.py [--duration 10] [--warmup 2] [--concurrency 1,16,64]
[--rounds 1] [--json PATH] [--litellm-python PATH]`` or ``... --soak 100000 [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import danlu
import mock_openai
from common import machine_info

LITELLM_VERSION = "1.110.2"
# litellm's "proxy" extra pins litellm-proxy, litellm-proxy-extras and litellm-enterprise to
# the same release; the first is a new package some package mirrors do not carry. When the
# extra cannot be installed, the proxy's other requirements are installed instead (the two
# helper packages at the newest version available).
LITELLM_PROXY_EXTRA_FALLBACK = [
    "gunicorn>=23.0.0,<24.0",
    "uvicorn>=0.33.0,<1.0",
    "granian>=2.7.4,<3.0",
    "uvloop>=0.22.1,<1.0",
    "fastapi>=0.136.3,<1.0",
    "starlette>=1.0.1,<2.0",
    "backoff>=2.2.1,<3.0",
    "pyyaml>=6.0.3,<7.0",
    "rq>=2.7.0,<3.0",
    "orjson>=3.11.6,<4.0",
    "hiredis>=3.0.0,<4.0",
    "apscheduler>=3.11.2,<4.0",
    "fastapi-sso>=0.19.0,<1.0",
    "pyjwt>=2.13.0,<3.0",
    "python-multipart>=0.0.27,<1.0",
    "cryptography>=49.0.0,<51.0",
    "pynacl>=1.6.2,<2.0",
    "websockets>=15.0.1,<16.0",
    "boto3>=1.43.117,<2.0",
    "azure-identity>=1.25.2,<2.0",
    "azure-storage-blob>=12.28.0,<13.0",
    "mcp>=2.3.0,<3",
    "httpx2>=2.10.0,<3",
    "pydantic>=2.12.0,<3",
    "litellm-proxy-extras",
    "litellm-enterprise",
    "restrictedpython>=8.5,<9.0",
    "rich>=13.9.4,<14.0",
    "inquirerpy>=0.3.4,<1.0",
    "tomlkit>=0.13.3,<1.0",
    "polars>=1.38.1,<2.0",
    "soundfile>=0.12.1,<1.0",
    "pyroscope-io>=0.8.16,<1.0",
    "expression>=5.6.0,<6.0",
    "backports-zstd>=1.0.0,<2.0",
    "semver>=3.0.4,<4",
]
DEFAULT_LITELLM_VENV = Path(tempfile.gettempdir()) / f"danlu-bench-litellm-{LITELLM_VERSION}"
MODEL = mock_openai.MODEL
UPSTREAM_KEY = "mock-upstream-key"
LITELLM_MASTER_KEY = "sk-litellm-bench-master-key"
TARGETS = ("direct", "danlu", "litellm")
MODES = ("plain", "stream")
GOAL_RPS_VS_LITELLM = 3.0
GOAL_ADDED_LATENCY_VS_LITELLM = 1 / 3
GOAL_RPS_VS_DIRECT = 0.7
REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def request_body(stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Is the pill ready?"}],
        "max_tokens": 32,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(proc: subprocess.Popen[bytes], port: int, path: str, log: Path, what: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        time.sleep(0.25)
    sys.exit(f"{what} was not ready after 180 s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Target:
    name: str
    url: str  # of /v1/chat/completions
    key: str
    pid: int | None  # None: nothing between the client and the mock


@contextlib.contextmanager
def started(
    cmd: list[str], env: dict[str, str], port: int, health: str, log: Path, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(proc, port, health, log, what)
        yield proc
    finally:
        stop(proc)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("DANLU_", "LITELLM_"))}


@contextlib.contextmanager
def mock_upstream(workdir: Path) -> Iterator[tuple[Target, int]]:
    """The mock as the "direct" target (no process between client and mock), and its pid."""
    port = free_port()
    cmd = [sys.executable, str(REPO / "bench" / "mock_openai.py"), "--port", str(port)]
    cmd += ["--key", UPSTREAM_KEY]
    log = workdir / "mock.log"
    with started(cmd, clean_env(), port, "/healthz", log, "the mock upstream") as proc:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        yield Target("direct", url, UPSTREAM_KEY, None), proc.pid


@contextlib.contextmanager
def danlu_gateway(workdir: Path, upstream: Target) -> Iterator[Target]:
    home = workdir / "danlu-home"
    home.mkdir()
    base_url = upstream.url.removesuffix("/chat/completions")
    (home / "providers.toml").write_text(
        textwrap.dedent(f"""
        [[providers]]
        name = "mock"
        type = "openai_compatible"
        base_url = "{base_url}"
        api_key = "{UPSTREAM_KEY}"
        models = ["{MODEL}"]
        """),
        encoding="utf-8",
    )
    env = clean_env()
    env.update(
        {
            "DANLU_HOME": str(home),
            "DANLU_EMBEDDED_MODELS": "0",
            "DANLU_LOG_LEVEL": "warning",
            "DANLU_ADMIN_PASSWORD": "bench-admin-password",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "danlu", "keys", "create", "--name", "bench"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = done.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    cmd = [sys.executable, "-m", "danlu", "serve", "--port", str(port)]
    with started(cmd, env, port, "/healthz", workdir / "danlu.log", "danlu serve") as proc:
        yield Target("danlu", f"http://127.0.0.1:{port}/v1/chat/completions", key, proc.pid)


def litellm_python(venv: Path) -> Path:
    """An interpreter with litellm==LITELLM_VERSION and its proxy; made on first use."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"]
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == LITELLM_VERSION:
            return python
    print(
        f"creating {venv} with litellm[proxy]=={LITELLM_VERSION} (once; about 800 MB)",
        file=sys.stderr,
        flush=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    extra = subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}", "httptools"], check=False)
    if extra.returncode != 0:
        print(
            "litellm's proxy extra did not install; installing its requirements one by one",
            file=sys.stderr,
            flush=True,
        )
        fallback = [f"litellm=={LITELLM_VERSION}", "httptools", *LITELLM_PROXY_EXTRA_FALLBACK]
        subprocess.run([*pip, *fallback], check=True)
    subprocess.run(check, check=True, capture_output=True)
    return python


def package_version(python: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "not installed"


@contextlib.contextmanager
def litellm_proxy(workdir: Path, upstream: Target, python: Path) -> Iterator[Target]:
    config = workdir / "litellm.yaml"
    base_url = upstream.url.removesuffix("/chat/completions")
    config.write_text(
        textwrap.dedent(f"""
        model_list:
          - model_name: {MODEL}
            litellm_params:
              model: openai/{MODEL}
              api_base: {base_url}
              api_key: {UPSTREAM_KEY}
        general_settings:
          master_key: {LITELLM_MASTER_KEY}
        litellm_settings:
          telemetry: false
        """),
        encoding="utf-8",
    )
    env = clean_env()
    # Warning-level logs, like danlu; the bundled model price map instead of a download.
    env.update({"LITELLM_LOG": "WARNING", "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    port = free_port()
    cli = python.parent / "litellm"
    cmd = [str(cli), "--config", str(config), "--port", str(port), "--num_workers", "1"]
    log = workdir / "litellm.log"
    with started(cmd, env, port, "/health/liveliness", log, "litellm") as proc:
        yield Target("litellm", f"http://127.0.0.1:{port}/v1/chat/completions", "", proc.pid)


# --- correctness ---------------------------------------------------------------------------


def check_answer(target: Target, key: str, stream: bool) -> None:
    """One request read in full: 200, the mock's answer, usage, and [DONE] for a stream."""
    host_port = target.url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    conn.request("POST", "/v1/chat/completions", json.dumps(request_body(stream)), headers)
    response = conn.getresponse()
    raw = response.read().decode()
    where = f"{target.name} ({'streamed' if stream else 'not streamed'})"
    if response.status != 200:
        sys.exit(f"{where} answered {response.status}: {raw[:500]}")
    usage: Any = None
    if stream:
        events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            sys.exit(f"{where}: the stream does not end with [DONE]: {raw[-500:]}")
        text = ""
        for event in events[:-1]:
            chunk = json.loads(event)
            for choice in chunk.get("choices") or []:
                text += (choice.get("delta") or {}).get("content") or ""
            usage = chunk.get("usage") or usage
    else:
        answer = json.loads(raw)
        text = answer["choices"][0]["message"]["content"]
        usage = answer.get("usage")
    if text != mock_openai.ANSWER:
        sys.exit(f"{where}: answered {text!r}, expected {mock_openai.ANSWER!r}")
    if not usage or usage.get("completion_tokens") != mock_openai.COMPLETION_TOKENS:
        sys.exit(f"{where}: usage {usage!r} is not the mock's")


# --- the load: wrk with a Lua script that checks every response ----------------------------

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local bodies = {%(bodies)s}
local markers = {%(markers)s}  -- every answer must contain each
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  bad = 0
  checked = 0
  first_bad = ""
end

function request()
  sent = sent + 1
  return wrk.format(nil, nil, nil, bodies[(sent - 1) %% #bodies + 1])
end

function response(status, headers, body)
  checked = checked + 1
  local ok = status == 200
  if ok then
    for _, marker in ipairs(markers) do
      if not string.find(body, marker, 1, true) then
        ok = false
      end
    end
  end
  if not ok then
    bad = bad + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.sub(body, 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local b, c, first = 0, 0, ""
  for _, t in ipairs(threads) do
    b = b + t:get("bad")
    c = c + t:get("checked")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "mean_us": %%.1f, "max_us": %%d, "bad": %%d, "checked": %%d, ' ..
    '"socket_errors": %%d, "first_bad": %%q}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, latency.max, b, c,
    e.connect + e.read + e.write + e.timeout, first))
end
"""


def lua_string(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid Lua string literal here


def lua_script(key: str, modes: list[bool]) -> str:
    """The wrk script: requests cycle through ``modes`` (streamed or not); every answer checked.

    wrk's hooks do not say which connection an answer came on, so with several modes (the
    soak) an answer cannot be matched to its request: then only the markers common to both
    modes (the answer's first and last pieces) are checked.
    """
    bodies = ", ".join(
        lua_string(json.dumps(request_body(stream), separators=(",", ":"))) for stream in modes
    )
    first, last = mock_openai.PIECES[0], mock_openai.PIECES[-1]
    if len(set(modes)) == 1:
        want = [first, last, "[DONE]"] if modes[0] else [mock_openai.ANSWER]
    else:
        want = [first, last]
    markers = ", ".join(lua_string(m) for m in want)
    return LUA % {"key": key, "bodies": bodies, "markers": markers}


@dataclass
class Run:
    target: str
    mode: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    bad: int
    socket_errors: int
    target_cpu_ms_per_request: float | None
    mock_cpu_ms_per_request: float
    others_cpu_cores: float  # CPU other processes on the machine used, in cores
    first_bad: str = ""

    @property
    def failed(self) -> bool:
        return self.bad > 0 or self.socket_errors > 0 or self.requests == 0


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        sys.exit(
            "this benchmark needs wrk, a compiled HTTP load generator: "
            "apt-get install wrk (Debian, Ubuntu), brew install wrk (macOS)"
        )
    return found


def wrk(script: Path, url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    cmd = [wrk_binary(), "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s"]
    cmd += ["--timeout", "60s", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    sys.exit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


# --- CPU accounting from /proc ---------------------------------------------------------------


def busy_ticks() -> int:
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # minus idle and iowait


def process_ticks(pid: int | None) -> int:
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def tree_ticks(pid: int | None) -> int:
    """CPU ticks of a process and its descendants (danlu starts a refinery worker)."""
    if pid is None:
        return 0
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{entry}/stat", encoding="ascii") as stat,
            ):
                parents[int(entry)] = int(stat.read().rpartition(")")[2].split()[1])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent and child not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(process_ticks(p) for p in tree)


def children_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * TICK


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def wait_quiet(pids: list[int | None], limit: float) -> None:
    """Wait up to ``limit`` s for a second in which other processes use < 0.2 of a core."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        busy, ours = busy_ticks(), sum(tree_ticks(p) for p in pids)
        time.sleep(1.0)
        others = (busy_ticks() - busy) - (sum(tree_ticks(p) for p in pids) - ours)
        if others / TICK < 0.2:
            return


def measure(
    target: Target, mock_pid: int, mode: str, concurrency: int, args: argparse.Namespace
) -> Run:
    key = target.key or LITELLM_MASTER_KEY
    script = Path(args.workdir) / f"{target.name}-{mode}.lua"
    script.write_text(lua_script(key, [mode == "stream"]), encoding="utf-8")
    wrk(script, target.url, concurrency, args.warmup)  # warm-up, not counted
    wait_quiet([target.pid, mock_pid, os.getpid()], args.quiet_wait)
    start = (
        busy_ticks(),
        tree_ticks(target.pid),
        process_ticks(mock_pid),
        children_ticks(),
        time.monotonic(),
    )
    result = wrk(script, target.url, concurrency, args.duration)
    wall = time.monotonic() - start[4]
    target_ticks = tree_ticks(target.pid) - start[1]
    mock_ticks = process_ticks(mock_pid) - start[2]
    wrk_ticks = children_ticks() - start[3]
    others = (busy_ticks() - start[0]) - target_ticks - mock_ticks - wrk_ticks
    requests = int(result["requests"])
    seconds = result["duration_us"] / 1e6
    per = max(1, requests)
    run = Run(
        target=target.name,
        mode=mode,
        concurrency=concurrency,
        requests=requests,
        seconds=seconds,
        rps=requests / seconds,
        p50_ms=result["p50_us"] / 1000,
        p90_ms=result["p90_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        mean_ms=result["mean_us"] / 1000,
        max_ms=result["max_us"] / 1000,
        bad=int(result["bad"]),
        socket_errors=int(result["socket_errors"]),
        target_cpu_ms_per_request=(
            target_ticks / TICK * 1000 / per if target.pid is not None else None
        ),
        mock_cpu_ms_per_request=mock_ticks / TICK * 1000 / per,
        others_cpu_cores=max(0.0, others / TICK / wall),
        first_bad=str(result["first_bad"]),
    )
    print(
        f"  {target.name:8s} {mode:6s} c={concurrency:<3d} {run.rps:9.1f} req/s  "
        f"p50 {run.p50_ms:8.2f} ms  p99 {run.p99_ms:8.2f} ms  "
        f"others {run.others_cpu_cores:.2f} cores"
        + (f"  FAILED: {run.bad} bad, {run.socket_errors} socket errors" if run.failed else ""),
        file=sys.stderr,
        flush=True,
    )
    return run


# --- the comparison --------------------------------------------------------------------------


@dataclass
class Cell:
    """Medians over rounds of one target, mode and concurrency."""

    target: str
    mode: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    added_p50_ms: float = 0.0
    added_p99_ms: float = 0.0
    target_cpu_ms_per_request: float | None = None
    others_cpu_cores: float = 0.0
    failed: bool = False
    rounds: list[Run] = field(default_factory=list, repr=False)


def cells(runs: list[Run]) -> dict[tuple[str, str, int], Cell]:
    grouped: dict[tuple[str, str, int], list[Run]] = {}
    for run in runs:
        grouped.setdefault((run.target, run.mode, run.concurrency), []).append(run)
    out: dict[tuple[str, str, int], Cell] = {}
    for key, group in grouped.items():
        cpu = [r.target_cpu_ms_per_request for r in group if r.target_cpu_ms_per_request]
        out[key] = Cell(
            target=key[0],
            mode=key[1],
            concurrency=key[2],
            rps=statistics.median(r.rps for r in group),
            p50_ms=statistics.median(r.p50_ms for r in group),
            p99_ms=statistics.median(r.p99_ms for r in group),
            target_cpu_ms_per_request=statistics.median(cpu) if cpu else None,
            others_cpu_cores=statistics.median(r.others_cpu_cores for r in group),
            failed=any(r.failed for r in group),
            rounds=group,
        )
    for (target, mode, concurrency), cell in out.items():
        direct = out.get(("direct", mode, concurrency))
        if direct is not None and target != "direct":
            cell.added_p50_ms = cell.p50_ms - direct.p50_ms
            cell.added_p99_ms = cell.p99_ms - direct.p99_ms
    return out


def verdicts(table: dict[tuple[str, str, int], Cell]) -> list[dict[str, Any]]:
    rows = []
    for mode in MODES:
        for concurrency in sorted({k[2] for k in table}):
            d = table.get(("direct", mode, concurrency))
            a = table.get(("danlu", mode, concurrency))
            b = table.get(("litellm", mode, concurrency))
            if d is None or a is None or b is None:
                continue
            rows.append(
                {
                    "mode": mode,
                    "concurrency": concurrency,
                    "rps_vs_litellm": a.rps / b.rps,
                    "added_p50_vs_litellm": _ratio(a.added_p50_ms, b.added_p50_ms),
                    "added_p99_vs_litellm": _ratio(a.added_p99_ms, b.added_p99_ms),
                    "rps_vs_direct": a.rps / d.rps,
                    "failed": a.failed or b.failed or d.failed,
                }
            )
    return rows


def _ratio(ours: float, theirs: float) -> float:
    if theirs <= 0:
        return float("inf") if ours > 0 else 0.0
    return max(0.0, ours) / theirs


def mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def render(table: dict[tuple[str, str, int], Cell], rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | conc. | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| target CPU ms/req | others' CPU (cores) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        for concurrency in sorted({k[2] for k in table}):
            for target in TARGETS:
                c = table.get((target, mode, concurrency))
                if c is None:
                    continue
                added = (
                    ("", "")
                    if target == "direct"
                    else (f"{c.added_p50_ms:.2f}", f"{c.added_p99_ms:.2f}")
                )
                cpu = f"{c.target_cpu_ms_per_request:.2f}" if c.target_cpu_ms_per_request else ""
                lines.append(
                    f"| {mode} | {concurrency} | {target}{' (FAILED)' if c.failed else ''} "
                    f"| {c.rps:.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | {added[0]} | {added[1]} "
                    f"| {cpu} | {c.others_cpu_cores:.2f} |"
                )
    lines += [
        "",
        "| mode | conc. | danlu/LiteLLM req/s (≥ 3) | danlu/LiteLLM added p50 (≤ 0.33) "
        "| added p99 (≤ 0.33) | danlu/direct req/s (≥ 0.7) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['concurrency']} "
            f"| {r['rps_vs_litellm']:.2f} {mark(r['rps_vs_litellm'] >= GOAL_RPS_VS_LITELLM)} "
            f"| {r['added_p50_vs_litellm']:.2f} "
            f"{mark(r['added_p50_vs_litellm'] <= GOAL_ADDED_LATENCY_VS_LITELLM)} "
            f"| {r['added_p99_vs_litellm']:.2f} "
            f"{mark(r['added_p99_vs_litellm'] <= GOAL_ADDED_LATENCY_VS_LITELLM)} "
            f"| {r['rps_vs_direct']:.3f} {mark(r['rps_vs_direct'] >= GOAL_RPS_VS_DIRECT)} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> list[str]:
    def count(key: str, ok: Any) -> str:
        met = sum(1 for r in rows if ok(r[key]))
        worst = (min if key.startswith("rps") else max)(r[key] for r in rows)
        return f"met in {met} of {len(rows)} cells (worst {worst:.3g})"

    return [
        f"danlu ≥ 3× LiteLLM's req/s: "
        f"{count('rps_vs_litellm', lambda v: v >= GOAL_RPS_VS_LITELLM)}",
        f"danlu's added latency ≤ ⅓ of LiteLLM's, p50: "
        f"{count('added_p50_vs_litellm', lambda v: v <= GOAL_ADDED_LATENCY_VS_LITELLM)}",
        f"danlu's added latency ≤ ⅓ of LiteLLM's, p99: "
        f"{count('added_p99_vs_litellm', lambda v: v <= GOAL_ADDED_LATENCY_VS_LITELLM)}",
        f"danlu ≥ 70% of direct req/s: {count('rps_vs_direct', lambda v: v >= GOAL_RPS_VS_DIRECT)}",
    ]


def wrk_version() -> str:
    done = subprocess.run([wrk_binary(), "-v"], capture_output=True, text=True, check=False)
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout else "wrk"


def compare(args: argparse.Namespace) -> dict[str, Any]:
    python = args.litellm_python or litellm_python(args.litellm_venv)
    workdir = Path(args.workdir)
    info = machine_info()
    info.update(
        {
            "danlu": danlu.__version__,
            "litellm": package_version(python, "litellm"),
            "litellm_uvicorn": package_version(python, "uvicorn"),
            "litellm_httptools": package_version(python, "httptools"),
            "wrk": wrk_version(),
            "load_average_before": os.getloadavg(),
        }
    )
    runs: list[Run] = []
    with (
        mock_upstream(workdir) as (direct, mock_pid),
        danlu_gateway(workdir, direct) as ours,
        litellm_proxy(workdir, direct, python) as theirs,
    ):
        targets = [direct, ours, theirs]
        for target in targets:
            for stream in (False, True):
                key = target.key or LITELLM_MASTER_KEY
                for _ in range(3):
                    check_answer(target, key, stream)
        for round_ in range(args.rounds):
            print(f"round {round_ + 1} of {args.rounds}", file=sys.stderr, flush=True)
            for mode in MODES:
                for concurrency in args.concurrency:
                    for target in targets:
                        runs.append(measure(target, mock_pid, mode, concurrency, args))
    info["load_average_after"] = os.getloadavg()
    table = cells(runs)
    rows = verdicts(table)
    return {
        "machine": info,
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
        },
        "cells": [{k: v for k, v in asdict(c).items() if k != "rounds"} for c in table.values()],
        "runs": [asdict(r) for r in runs],
        "ratios": rows,
        "summary": summary(rows),
        "markdown": render(table, rows),
    }


# --- the soak --------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> dict[str, Any]:
    """N requests through danlu, streamed and not in turn; RSS sampled between slices."""
    workdir = Path(args.workdir)
    samples: list[dict[str, float]] = []
    total = bad = errors = 0
    began = time.monotonic()
    with mock_upstream(workdir) as (direct, _), danlu_gateway(workdir, direct) as ours:
        assert ours.pid is not None
        for stream in (False, True):
            check_answer(ours, ours.key, stream)
        script = workdir / "soak.lua"
        # Per connection the requests alternate; the markers are common to both modes.
        script.write_text(lua_script(ours.key, [False, True]), encoding="utf-8")
        samples.append({"requests": 0, "rss_mb": rss_mb(ours.pid), "seconds": 0.0})
        rate = 0.0
        while total < args.soak:
            left = args.soak - total
            # Slices of about --soak-every requests, from the rate so far.
            seconds = 3.0 if rate == 0 else min(30.0, max(1.0, min(left, args.soak_every) / rate))
            result = wrk(script, ours.url, args.soak_concurrency, seconds)
            total += int(result["requests"])
            bad += int(result["bad"])
            errors += int(result["socket_errors"])
            rate = int(result["requests"]) / (result["duration_us"] / 1e6)
            sample = {
                "requests": total,
                "rss_mb": rss_mb(ours.pid),
                "seconds": time.monotonic() - began,
            }
            samples.append(sample)
            print(
                f"  {total:8d} requests  RSS {sample['rss_mb']:7.1f} MB  "
                f"({rate:.0f} req/s, {bad} bad, {errors} socket errors)",
                file=sys.stderr,
                flush=True,
            )
    after_warmup = [s for s in samples if s["requests"] >= args.soak_warmup]
    base = after_warmup[0] if after_warmup else samples[-1]
    growth = samples[-1]["rss_mb"] - base["rss_mb"]
    peak_growth = max(s["rss_mb"] for s in after_warmup or samples) - base["rss_mb"]
    return {
        "machine": {**machine_info(), "danlu": danlu.__version__, "wrk": wrk_version()},
        "requests": total,
        "bad": bad,
        "socket_errors": errors,
        "concurrency": args.soak_concurrency,
        "warmup_requests": args.soak_warmup,
        "baseline": base,
        "rss_growth_mb": growth,
        "peak_growth_mb": peak_growth,
        "max_growth_mb": args.soak_max_growth_mb,
        "ok": bad == 0 and errors == 0 and growth < args.soak_max_growth_mb,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(v) for v in s.split(",")],
        default=[1, 16, 64],
        help="comma-separated connection counts (default 1,16,64)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything; medians")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=10.0,
        help="before each run, wait up to this long for other processes to leave the CPU",
    )
    parser.add_argument("--litellm-venv", type=Path, default=DEFAULT_LITELLM_VENV)
    parser.add_argument(
        "--litellm-python", type=Path, help="an interpreter that has litellm's proxy"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--soak", type=int, default=0, help="run the soak: N requests via danlu")
    parser.add_argument("--soak-every", type=int, default=5000, help="requests between samples")
    parser.add_argument("--soak-warmup", type=int, default=10000)
    parser.add_argument("--soak-concurrency", type=int, default=16)
    parser.add_argument("--soak-max-growth-mb", type=float, default=20.0)
    args = parser.parse_args()
    wrk_binary()
    with tempfile.TemporaryDirectory(prefix="danlu-gw-bench-") as workdir:
        args.workdir = workdir
        if args.soak:
            result = soak(args)
            print(
                f"soak: {result['requests']} requests, {result['bad']} bad, "
                f"{result['socket_errors']} socket errors; RSS "
                f"{result['baseline']['rss_mb']:.1f} MB after {result['baseline']['requests']} "
                f"requests -> {result['samples'][-1]['rss_mb']:.1f} MB at the end: "
                f"growth {result['rss_growth_mb']:+.1f} MB (peak {result['peak_growth_mb']:+.1f}"
                f"; bound {args.soak_max_growth_mb:.0f}) {mark(result['ok'])}"
            )
        else:
            result = compare(args)
            m = result["machine"]
            print(
                f"\n{m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory']}; Python "
                f"{m['python']}; danlu {m['danlu']}; LiteLLM {m['litellm']} (uvicorn "
                f"{m['litellm_uvicorn']}, httptools {m['litellm_httptools']}); {m['wrk']}; "
                f"load average before {m['load_average_before'][0]:.2f}, after "
                f"{m['load_average_after'][0]:.2f}\n"
            )
            print(result["markdown"])
            print()
            print("\n".join(result["summary"]))
        if args.json is not None:
            args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.soak and not result["ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
