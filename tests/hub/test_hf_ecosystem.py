"""transformers, datasets and a plain huggingface_hub, pointed at danlu by HF_ENDPOINT alone.

These clients read HF_ENDPOINT when they are imported, exactly as users set it, so each runs
in a fresh Python process with the environment a user would have.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from tests.support.server import RunningServer


def run_client(
    server: RunningServer,
    tmp_path: Path,
    code: str,
    *,
    disable_xet: bool = False,
    timeout: int = 300,
) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "DANLU_"))}
    env.update(
        {
            "HF_ENDPOINT": server.url,
            "HF_TOKEN": server.admin_key,
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_UPDATE_DOWNLOAD_COUNTS": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
    )
    if disable_xet:
        env["HF_HUB_DISABLE_XET"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"client failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def test_an_unconfigured_client_uploads_and_downloads(
    server: RunningServer, tmp_path: Path
) -> None:
    """No HF_HUB_DISABLE_XET: files that fit inline avoid the Xet path entirely."""
    out = run_client(
        server,
        tmp_path,
        """
        import os, pathlib
        from huggingface_hub import HfApi, snapshot_download
        api = HfApi()
        api.create_repo("admin/plain-client", exist_ok=True)
        folder = pathlib.Path("up"); folder.mkdir()
        (folder / "config.json").write_text('{"x": 1}')
        (folder / "model.safetensors").write_bytes(os.urandom(2_000_000))
        api.upload_folder(folder_path=folder, repo_id="admin/plain-client")
        local = snapshot_download("admin/plain-client")
        same = all((pathlib.Path(local) / p.name).read_bytes() == p.read_bytes()
                   for p in folder.iterdir())
        print("SAME" if same else "DIFFERENT")
    """,
    )
    assert out.strip().endswith("SAME")


def test_large_file_through_lfs(server: RunningServer, tmp_path: Path) -> None:
    if server.env.get("DANLU_DATABASE_URL"):
        pytest.skip("file bytes never touch the metadata database; the SQLite run covers this")
    folder = tmp_path / "release"
    (folder / "weights").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "README.md").write_text("# big\n")
    big = folder / "weights" / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as out:
        block = os.urandom(1024 * 1024)
        for index in range(210):
            chunk = block[index % 7 :] + block[: index % 7]
            digest.update(chunk)
            out.write(chunk)
    api = HfApi(endpoint=server.url, token=server.admin_key)
    api.create_repo("admin/big-file")
    api.upload_folder(folder_path=folder, repo_id="admin/big-file")
    info = api.model_info("admin/big-file", files_metadata=True)
    entry = next(s for s in info.siblings or [] if s.rfilename == "weights/big.bin")
    assert entry.size == big.stat().st_size
    assert entry.lfs is not None and entry.lfs.sha256 == digest.hexdigest()
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(
        "admin/big-file",
        "weights/big.bin",
        endpoint=server.url,
        token=server.admin_key,
        cache_dir=tmp_path / "cache",
    )
    check = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()


def test_transformers_from_pretrained(server: RunningServer, tmp_path: Path) -> None:
    out = run_client(
        server,
        tmp_path,
        """
        import torch
        from transformers import BertConfig, BertModel
        from huggingface_hub import HfApi
        torch.manual_seed(0)
        config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                            num_attention_heads=2, intermediate_size=32,
                            max_position_embeddings=32)
        model = BertModel(config).eval()  # no dropout, as from_pretrained gives
        model.save_pretrained("tiny")
        HfApi().create_repo("admin/tiny-bert", exist_ok=True)
        HfApi().upload_folder(folder_path="tiny", repo_id="admin/tiny-bert")
        loaded = BertModel.from_pretrained("admin/tiny-bert")
        ids = torch.tensor([[1, 2, 3]])
        same = torch.allclose(model(ids).last_hidden_state, loaded(ids).last_hidden_state)
        print("SAME" if same else "DIFFERENT")
    """,
        timeout=600,
    )
    assert out.strip().endswith("SAME")


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
def test_datasets_load_dataset(server: RunningServer, tmp_path: Path, kind: str) -> None:
    rows = [{"question": f"问题 {i}", "answer": f"answer {i}", "score": i} for i in range(20)]
    data = tmp_path / "data"
    data.mkdir()
    if kind == "jsonl":
        (data / "train.jsonl").write_text(
            "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        )
    elif kind == "csv":
        lines = ["question,answer,score"] + [
            f"{r['question']},{r['answer']},{r['score']}" for r in rows
        ]
        (data / "train.csv").write_text("\n".join(lines) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), data / "train.parquet")
    api = HfApi(endpoint=server.url, token=server.admin_key)
    repo = f"admin/qa-{kind}"
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    api.upload_folder(folder_path=data, path_in_repo="data", repo_id=repo, repo_type="dataset")
    out = run_client(
        server,
        tmp_path,
        f"""
        import datasets
        ds = datasets.load_dataset("{repo}", cache_dir="ds-cache")
        train = ds["train"]
        print(len(train), train[3]["question"], train[3]["score"])
    """,
    )
    assert out.strip().splitlines()[-1] == "20 问题 3 3"
