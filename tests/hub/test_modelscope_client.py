"""The real modelscope client against a real danlu server, as MODELSCOPE_ENDPOINT users run it.

modelscope reads MODELSCOPE_ENDPOINT and MODELSCOPE_API_TOKEN once, when its process-wide
config is first built, keeps its login under $HOME/.modelscope and its downloads under
MODELSCOPE_CACHE. So each scenario runs the client in a fresh Python process with the
environment a user would set and a home of its own: no login or cache leaks between tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
from huggingface_hub import HfApi
from huggingface_hub import snapshot_download as hf_snapshot_download

from tests.support.server import RunningServer

CARD = """---
license: apache-2.0
tags: [demo]
---
# A model uploaded with the modelscope client
"""

_PRELUDE = """
import json, os
P = json.loads(os.environ["MS_TEST_PARAMS"])
RESULT = {}

def failure(fn):
    try:
        fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

def read(path):
    with open(path, "rb") as handle:
        return handle.read().decode("utf-8", "replace")
"""
_MARK = "@@RESULT@@"


def run_modelscope(
    server: RunningServer,
    home: Path,
    script: str,
    *,
    token: str | None = None,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``script`` with the modelscope client in a new process; return its RESULT dict.

    ``token`` goes into MODELSCOPE_API_TOKEN ("" means anonymous); None leaves it unset, so
    the client falls back to a login persisted under ``home``.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSCOPE")}
    env.update(
        HOME=str(home),
        MODELSCOPE_CACHE=str(home / "cache"),
        MODELSCOPE_ENDPOINT=server.url,
        MS_TEST_PARAMS=json.dumps(params or {}),
    )
    if token is not None:
        env["MODELSCOPE_API_TOKEN"] = token
    code = _PRELUDE + textwrap.dedent(script) + f"\nprint({_MARK!r} + json.dumps(RESULT))\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=110,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode != 0 or not lines:
        raise AssertionError(
            f"the modelscope client failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-6000:]}\n--- server log ---\n{server.log()[-3000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(_MARK) :])
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_folder(root: Path) -> Path:
    folder = root / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text(CARD)
    (folder / "config.json").write_text('{"hidden_size": 8}')
    (folder / "sub" / "notes.txt").write_text("第一行\nsecond line\n")
    # Over 1 MB (and 64 KiB, the client's own threshold): it goes LFS batch → PUT → pointer.
    (folder / "weights.safetensors").write_bytes(os.urandom(1_200_000))
    return folder


def uploaded_files(folder: Path) -> dict[str, Path]:
    """The folder's files, less the upload bookkeeping modelscope keeps in it (.ms_upload_*)."""
    return {
        p.relative_to(folder).as_posix(): p
        for p in folder.rglob("*")
        if p.is_file() and not p.relative_to(folder).parts[0].startswith(".ms_upload")
    }


def listing(server: RunningServer, kind: str, repo: str, **query: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/api/v1/{kind}/{repo}/repo/{'tree' if kind == 'datasets' else 'files'}",
        params={"Revision": "master", "Recursive": "True", **query},
        headers={"Authorization": f"Bearer {server.admin_key}"},
        timeout=30,
    )
    response.raise_for_status()
    body = response.json()
    assert body["Code"] == 200 and body["Success"] is True
    files: list[dict[str, Any]] = body["Data"]["Files"]
    return files


def test_login_upload_list_and_download(server: RunningServer, tmp_path: Path) -> None:
    folder = make_folder(tmp_path)
    home = tmp_path / "home"
    result = run_modelscope(
        server,
        home,
        """
        from modelscope import dataset_snapshot_download, model_file_download, snapshot_download
        from modelscope.hub.api import HubApi
        from modelscope.hub.file_download import dataset_file_download

        api = HubApi()
        api.login(P["token"])
        RESULT["me"] = api.whoami().username
        api.create_repo("admin/ms-model")
        api.create_repo("admin/ms-data", repo_type="dataset")
        RESULT["again"] = failure(lambda: api.create_model("admin/ms-model"))
        RESULT["exist_ok"] = api.create_repo("admin/ms-model", exist_ok=True)
        RESULT["exists"] = [
            api.repo_exists("admin/ms-model"),
            api.repo_exists("admin/ms-data", repo_type="dataset"),
            api.repo_exists("admin/ms-nothing"),
        ]
        api.upload_folder(repo_id="admin/ms-model", folder_path=P["folder"], commit_message="up")
        api.upload_folder(repo_id="admin/ms-data", folder_path=P["folder"], repo_type="dataset")
        model_files = api.list_repo_files("admin/ms-model", "model")
        RESULT["model_files"] = {f.path: [f.size, f.sha256, f.type] for f in model_files}
        RESULT["data_files"] = sorted(
            f.path for f in api.list_repo_files("admin/ms-data", "dataset") if f.type != "tree"
        )
        RESULT["model_file_sizes"] = {
            f["Path"]: f["Size"] for f in api.get_model_files("admin/ms-model")
        }
        RESULT["one"] = model_file_download("admin/ms-model", "weights.safetensors")
        RESULT["snapshot"] = snapshot_download("admin/ms-model")
        RESULT["partial"] = snapshot_download(
            "admin/ms-model", allow_patterns=["sub/*"], local_dir=P["partial"]
        )
        RESULT["data_snapshot"] = dataset_snapshot_download("admin/ms-data")
        RESULT["data_one"] = dataset_file_download("admin/ms-data", "sub/notes.txt")
        """,
        params={
            "token": server.admin_key,
            "folder": str(folder),
            "partial": str(tmp_path / "partial"),
        },
    )
    assert result["me"] == "admin"
    assert result["again"] and result["again"].startswith("AlreadyExistsError")
    assert result["exist_ok"] is None
    assert result["exists"] == [True, True, False]

    expected = uploaded_files(folder)
    files = result["model_files"]
    assert set(files) == {*expected, ".gitattributes", "sub"}
    assert files["sub"][2] == "tree"
    for name, path in expected.items():
        assert files[name] == [path.stat().st_size, sha256(path), "blob"], name
        assert result["model_file_sizes"][name] == path.stat().st_size
    assert result["data_files"] == sorted([*expected, ".gitattributes"])

    one = Path(result["one"])
    assert one.read_bytes() == (folder / "weights.safetensors").read_bytes()
    for key in ("snapshot", "data_snapshot"):
        for name, path in expected.items():
            got = Path(result[key]) / name
            assert sha256(got) == sha256(path), (key, name)
    partial = Path(result["partial"])
    assert (partial / "sub" / "notes.txt").read_bytes() == (folder / "sub/notes.txt").read_bytes()
    assert not (partial / "weights.safetensors").exists()
    assert Path(result["data_one"]).read_bytes() == (folder / "sub" / "notes.txt").read_bytes()

    # The big file went through LFS (batch → PUT → pointer commit); the small ones inline.
    lfs = {e["Path"]: e["IsLFS"] for e in listing(server, "models", "admin/ms-model")}
    assert lfs["weights.safetensors"] is True
    assert lfs["README.md"] is False and lfs["config.json"] is False

    # The login persisted (the m_session_id cookie): a new process without a token is the admin.
    again = run_modelscope(
        server,
        home,
        """
        from modelscope.hub.api import HubApi
        RESULT["me"] = HubApi().whoami().username
        """,
    )
    assert again["me"] == "admin"


def test_tags_and_revisions(server: RunningServer, tmp_path: Path) -> None:
    result = run_modelscope(
        server,
        tmp_path / "home",
        """
        import os
        from modelscope import model_file_download, snapshot_download
        from modelscope.hub.api import HubApi

        api = HubApi()
        repo = "admin/ms-tags"
        api.create_repo(repo)
        api.upload_file(path_or_fileobj=b"v1", path_in_repo="data.txt", repo_id=repo)
        api.create_model_tag(repo, "v1")
        api.upload_file(path_or_fileobj=b"v2", path_in_repo="data.txt", repo_id=repo)
        RESULT["refs"] = api.get_model_branches_and_tags(repo)
        RESULT["tag_file"] = read(model_file_download(repo, "data.txt", revision="v1"))
        RESULT["master_file"] = read(model_file_download(repo, "data.txt", revision="master"))
        RESULT["tag_snapshot"] = read(
            os.path.join(snapshot_download(repo, revision="v1"), "data.txt")
        )
        RESULT["snapshot"] = read(os.path.join(snapshot_download(repo), "data.txt"))
        RESULT["no_revision"] = failure(lambda: snapshot_download(repo, revision="nope"))
        RESULT["no_file"] = failure(
            lambda: model_file_download(repo, "missing.txt", revision="master")
        )
        """,
        token=server.admin_key,
    )
    assert result["refs"] == [["master"], ["v1"]]
    assert result["tag_file"] == "v1" and result["tag_snapshot"] == "v1"
    assert result["master_file"] == "v2" and result["snapshot"] == "v2"
    assert result["no_revision"] and "404" in result["no_revision"]
    assert result["no_file"] and "404" in result["no_file"]
    # "master" is only the ModelScope name of danlu's default branch: no branch was added.
    refs = HfApi(endpoint=server.url, token=server.admin_key).list_repo_refs("admin/ms-tags")
    assert [b.name for b in refs.branches] == ["main"] and [t.name for t in refs.tags] == ["v1"]


def test_private_repos_are_invisible_to_others(server: RunningServer, tmp_path: Path) -> None:
    run_modelscope(
        server,
        tmp_path / "owner",
        """
        from modelscope.hub.api import HubApi
        api = HubApi()
        api.create_repo("admin/ms-hidden", visibility="private")
        api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id="admin/ms-hidden")
        api.create_repo("admin/ms-open")
        """,
        token=server.admin_key,
    )
    server.cli("users", "create", "outsider-ms", check=False)
    outsider = server.create_key("outsider-ms", "--user", "outsider-ms")
    result = run_modelscope(
        server,
        tmp_path / "others",
        """
        from modelscope import model_file_download, snapshot_download
        from modelscope.hub.api import HubApi

        for who, token in (("anonymous", None), ("outsider", P["outsider"])):
            api = HubApi(token=token) if token else HubApi()
            RESULT[who] = {
                "exists": api.repo_exists("admin/ms-hidden"),
                "snapshot": failure(lambda: snapshot_download("admin/ms-hidden", token=token)),
                "file": failure(
                    lambda: model_file_download(
                        "admin/ms-hidden", "s.txt", revision="master", token=token
                    )
                ),
            }
        api = HubApi(token=P["outsider"])
        RESULT["write"] = failure(
            lambda: api.upload_file(
                path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="admin/ms-open"
            )
        )
        """,
        token="",
        params={"outsider": outsider},
    )
    for who in ("anonymous", "outsider"):
        seen = result[who]
        assert seen["exists"] is False, who
        assert seen["snapshot"] and "404" in seen["snapshot"], (who, seen)
        assert seen["file"] and "404" in seen["file"], (who, seen)
    assert result["write"] and "403" in result["write"]
    hidden = [e["Path"] for e in listing(server, "models", "admin/ms-hidden")]
    assert hidden == [".gitattributes", "s.txt"]
    assert [e["Path"] for e in listing(server, "models", "admin/ms-open")] == [".gitattributes"]


def test_bad_paths_are_refused_and_nothing_is_written(
    server: RunningServer, tmp_path: Path
) -> None:
    result = run_modelscope(
        server,
        tmp_path / "home",
        """
        from modelscope.hub.api import HubApi
        api = HubApi()
        api.create_repo("admin/ms-strict")
        RESULT["client"] = failure(
            lambda: api.upload_file(
                path_or_fileobj=b"x", path_in_repo="../escape.txt", repo_id="admin/ms-strict"
            )
        )
        """,
        token=server.admin_key,
    )
    assert result["client"]  # the client checks paths itself; the server must too
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    revisions = f"{server.url}/api/v1/models/admin/ms-strict/revisions"
    before = httpx.get(revisions, headers=auth, timeout=30).json()["Data"]
    for bad in ["../escape.txt", "a/../../b.txt", "/etc/passwd", ".git/config", "a\\b.txt"]:
        inline = {"action": "create", "type": "normal", "content": "eA==", "encoding": "base64"}
        actions = [{**inline, "path": "fine.txt"}, {**inline, "path": bad}]
        response = httpx.post(
            f"{server.url}/api/v1/repos/models/admin/ms-strict/commit/master",
            json={"commit_message": "evil", "actions": actions},
            headers=auth,
            timeout=30,
        )
        assert response.status_code == 400, (bad, response.text)
        body = response.json()
        assert body["Success"] is False and body["Code"] == 400 and "path" in body["Message"]
    download = httpx.get(
        f"{server.url}/api/v1/models/admin/ms-strict/repo",
        params={"Revision": "master", "FilePath": "../../etc/passwd"},
        timeout=30,
    )
    assert download.status_code == 400
    assert httpx.get(revisions, headers=auth, timeout=30).json()["Data"] == before
    assert [e["Path"] for e in listing(server, "models", "admin/ms-strict")] == [".gitattributes"]


def test_dataset_listing_is_paged(server: RunningServer, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    (folder / "part").mkdir(parents=True)
    for number in range(210):
        (folder / "part" / f"row{number:03d}.txt").write_text(f"row {number}\n")
    result = run_modelscope(
        server,
        tmp_path / "home",
        """
        from modelscope.hub.api import HubApi
        api = HubApi()
        api.create_repo("admin/ms-many", repo_type="dataset")
        api.upload_folder(repo_id="admin/ms-many", folder_path=P["folder"], repo_type="dataset")
        # The client pages 200 entries at a time until a page comes back short.
        RESULT["paths"] = [f.path for f in api.list_repo_files("admin/ms-many", "dataset")]
        """,
        token=server.admin_key,
        params={"folder": str(folder)},
    )
    expected = [".gitattributes", "part", *(f"part/row{n:03d}.txt" for n in range(210))]
    assert sorted(result["paths"]) == expected
    whole = listing(server, "datasets", "admin/ms-many")
    pages = [
        listing(server, "datasets", "admin/ms-many", PageNumber=str(n), PageSize="50")
        for n in range(1, 7)
    ]
    assert [len(p) for p in pages] == [50, 50, 50, 50, 12, 0]
    assert [e for p in pages for e in p] == whole
    assert [e["Path"] for e in whole] == expected


def test_the_hugging_face_and_modelscope_clients_share_repos(
    server: RunningServer, tmp_path: Path
) -> None:
    hf = HfApi(endpoint=server.url, token=server.admin_key)
    from_hf = make_folder(tmp_path / "hf")
    hf.create_repo("admin/ms-from-hf")
    hf.upload_folder(folder_path=from_hf, repo_id="admin/ms-from-hf")
    from_ms = make_folder(tmp_path / "ms")
    result = run_modelscope(
        server,
        tmp_path / "home",
        """
        from modelscope import snapshot_download
        from modelscope.hub.api import HubApi
        RESULT["snapshot"] = snapshot_download("admin/ms-from-hf")
        HubApi().upload_folder(repo_id="admin/ms-to-hf", folder_path=P["folder"])
        """,
        token=server.admin_key,
        params={"folder": str(from_ms)},
    )
    for name, path in uploaded_files(from_hf).items():
        assert sha256(Path(result["snapshot"]) / name) == sha256(path), name
    local = hf_snapshot_download(
        "admin/ms-to-hf", endpoint=server.url, token=server.admin_key, cache_dir=tmp_path / "c"
    )
    for name, path in uploaded_files(from_ms).items():
        assert sha256(Path(local) / name) == sha256(path), name
    info = hf.model_info("admin/ms-to-hf", files_metadata=True)
    weights = {s.rfilename: s for s in info.siblings or []}["weights.safetensors"]
    assert weights.lfs is not None
    assert weights.lfs.sha256 == sha256(from_ms / "weights.safetensors")
