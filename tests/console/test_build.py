"""The console shipped in the package is the build of the sources in the repository."""

from __future__ import annotations

from pathlib import Path

from danlu.console import DIST
from danlu.console.sources import built_digest, source_files, sources_digest

CONSOLE = Path(__file__).resolve().parents[2] / "console"


def test_the_shipped_build_matches_the_console_sources() -> None:
    assert (DIST / "index.html").is_file(), "run `make console` to build the console"
    built = built_digest(DIST)
    assert built is not None, "dist/build-info.json is missing: run `make console`"
    assert built == sources_digest(CONSOLE), (
        "the console's sources changed since its build: run `make console` and commit "
        "src/danlu/console/dist"
    )


def test_the_digest_covers_every_source_and_no_build_output() -> None:
    files = source_files(CONSOLE)
    assert "src/main.tsx" in files and "package-lock.json" in files
    assert not [f for f in files if f.startswith(("node_modules", "dist"))]
