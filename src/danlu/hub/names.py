"""Validation of repo names and file paths: the hub's first line of defence.

Every name and path that reaches storage passes through here, so ``..``,
absolute paths, backslashes, NUL bytes and over-long names are refused in one
place with a message that says what is allowed.
"""

from __future__ import annotations

import re

from danlu.core.accounts import validate_slug
from danlu.core.errors import InvalidRequest

_REPO_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$")
MAX_PATH_BYTES = 1024
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


def split_repo_id(repo_id: str) -> tuple[str, str]:
    """``owner/name`` → (owner, name), both validated."""
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidRequest(f"repo id {repo_id!r} must look like 'owner/name'", param="repo_id")
    namespace, name = parts
    validate_slug(namespace, "namespace")
    return namespace, validate_repo_name(name)


def validate_repo_name(name: str) -> str:
    if not _REPO_NAME.match(name) or ".." in name or name.lower().endswith(".git"):
        raise InvalidRequest(
            f"repo name {name!r} is not allowed: use 1-96 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit, without '..' and not ending in '.git'",
            param="name",
        )
    return name


def validate_path(path: str) -> str:
    """A file path inside a repo: relative, forward slashes, no tricks."""
    problem = None
    if not path:
        problem = "is empty"
    elif "\x00" in path:
        problem = "contains a NUL byte"
    elif "\\" in path:
        problem = "contains a backslash; use '/'"
    elif path.startswith("/"):
        problem = "is absolute; give it relative to the repo root"
    elif len(path.encode("utf-8")) > MAX_PATH_BYTES:
        problem = f"is longer than {MAX_PATH_BYTES} bytes"
    elif any(part in {"", ".", ".."} for part in path.split("/")):
        problem = "has an empty, '.' or '..' segment"
    elif path == ".git" or path.startswith(".git/"):
        problem = "is inside .git"
    elif any(ord(char) < 32 for char in path):
        problem = "contains a control character"
    if problem:
        raise InvalidRequest(f"path {path!r} {problem}", param="path")
    return path


def validate_folder(path: str) -> str:
    """A folder prefix: like a path, but may end with '/' and may be empty (the root)."""
    stripped = path.strip("/")
    return validate_path(stripped) if stripped else ""


def validate_ref_name(name: str) -> str:
    if not _BRANCH.match(name) or ".." in name or name.endswith("/") or "//" in name:
        raise InvalidRequest(
            f"{name!r} is not a valid branch or tag name: letters, digits, '.', '_', '-' and '/'",
            param="revision",
        )
    return name
