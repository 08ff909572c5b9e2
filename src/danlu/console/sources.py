"""The digest of the console's sources, computed as console/scripts/build-info.mjs does.

The build writes it into dist/build-info.json; a test recomputes it from the repository,
so sources changed without a rebuild (or a hand-edited build) fail CI.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

TOP_FILES = ("index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts")
TOP_DIRS = ("src", "public", "scripts")


def source_files(root: Path) -> list[str]:
    files = list(TOP_FILES)
    for folder in TOP_DIRS:
        files += [
            path.relative_to(root).as_posix()
            for path in (root / folder).rglob("*")
            if path.is_file()
        ]
    return sorted(files)


def sources_digest(root: Path) -> str:
    """sha256 over "path NUL sha256(content) LF" lines, in sorted path order."""
    lines = "".join(
        f"{rel}\0{hashlib.sha256((root / rel).read_bytes()).hexdigest()}\n"
        for rel in source_files(root)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def built_digest(dist: Path) -> str | None:
    info = dist / "build-info.json"
    if not info.is_file():
        return None
    return str(json.loads(info.read_text())["sources_sha256"])
