"""Soak: danlu's resident memory stays flat over 100,000 gateway requests.

Runs ``bench/gateway_vs_litellm.py --soak``: a mock upstream that answers at once, ``danlu
serve`` in front of it, and wrk sending streamed and non-streamed chat requests in turn at 16
connections, every answer checked. The danlu process's VmRSS is sampled every 5,000 requests;
after the first 10,000 (imports, caches, connection pools and allocator arenas settling) it
may grow by less than 20 MB over the rest of the run. A leak of even 200 bytes per request
would show as 18 MB.

Marked ``benchmark`` (excluded from the default run; ``make soak`` runs it). It takes several
minutes on two cores and needs wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 100_000
WARMUP = 10_000
MAX_GROWTH_MB = 20.0


@pytest.mark.benchmark
@pytest.mark.timeout(3600)
def test_gateway_rss_flat_over_100k_requests(tmp_path: Path) -> None:
    assert shutil.which("wrk"), "the soak needs wrk, an HTTP load generator: apt-get install wrk"
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "gateway_vs_litellm.py"),
            "--soak",
            str(REQUESTS),
            "--soak-warmup",
            str(WARMUP),
            "--soak-max-growth-mb",
            str(MAX_GROWTH_MB),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
    )
    print(done.stderr[-6000:])
    print(done.stdout)
    assert out.exists(), f"the soak did not finish ({done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(out.read_text())
    print("requests  RSS (MB)")
    for sample in result["samples"]:
        print(f"{sample['requests']:8d}  {sample['rss_mb']:8.1f}")
    assert result["requests"] >= REQUESTS
    assert result["bad"] == 0, f"{result['bad']} answers were wrong"
    assert result["socket_errors"] == 0, f"{result['socket_errors']} socket errors"
    assert result["rss_growth_mb"] < MAX_GROWTH_MB, (
        f"danlu's RSS grew by {result['rss_growth_mb']:.1f} MB after {WARMUP} requests "
        f"(bound {MAX_GROWTH_MB} MB)"
    )
