"""Fine-tuning jobs over HTTP, without training: what is checked at once, and the queue."""

from __future__ import annotations

import json

import httpx
from huggingface_hub import HfApi

from tests.support.server import RunningServer

ROWS = [
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
]


def _http(server: RunningServer, key: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=server.api,
        timeout=60,
        headers={"Authorization": f"Bearer {key or server.admin_key}"},
    )


def test_jobs_are_checked_queued_listed_and_cancelled(server: RunningServer) -> None:
    hub = HfApi(endpoint=server.url, token=server.admin_key)
    data = hub.create_repo("admin/ft-chat", repo_type="dataset", exist_ok=True).repo_id
    hub.upload_file(
        path_or_fileobj="\n".join(json.dumps(r) for r in ROWS).encode(),
        path_in_repo="train.jsonl",
        repo_id=data,
        repo_type="dataset",
    )
    empty = hub.create_repo("admin/ft-empty", repo_type="dataset", exist_ok=True).repo_id
    hub.upload_file(
        path_or_fileobj=b"# nothing", path_in_repo="notes.md", repo_id=empty, repo_type="dataset"
    )
    with _http(server) as http:
        created = http.post("/fine-tunes", json={"dataset": data, "hyperparameters": {"epochs": 1}})
        assert created.status_code == 201, created.text
        job = created.json()
        assert job["status"] == "queued" and job["base_model"] == "danlu/smollm2-135m-instruct"
        assert job["dataset_files"] == ["train.jsonl"] and len(job["dataset_revision"]) == 40
        assert job["output_repo"].startswith("admin/smollm2-135m-instruct-ft-")

        assert next(j["id"] for j in http.get("/fine-tunes").json()["data"]) == job["id"]
        assert http.get(f"/fine-tunes/{job['id']}").json()["status"] == "queued"
        events = http.get(f"/fine-tunes/{job['id']}/events").json()["data"]
        assert [e["data"] for e in events] == [{"status": "queued"}]

        cancelled = http.post(f"/fine-tunes/{job['id']}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert http.post(f"/fine-tunes/{job['id']}/cancel").status_code == 409
        # A finished job's stream ends at once with [DONE].
        streamed = http.get(f"/fine-tunes/{job['id']}/events", params={"stream": "true"})
        assert streamed.text.rstrip().endswith("data: [DONE]")

        for body, status, says in (
            ({"dataset": "admin/nope"}, 404, "nope"),
            ({"dataset": data, "base_model": "admin/missing"}, 404, "missing"),
            ({"dataset": empty}, 400, "no training data"),
            ({"dataset": data, "dataset_files": ["other.csv"]}, 404, "other.csv"),
            ({"dataset": data, "hyperparameters": {"epoks": 3}}, 400, "unknown hyperparameter"),
            ({"dataset": data, "method": "magic"}, 400, "method"),
            ({"dataset": data, "output_repo": "no-namespace"}, 400, "namespace/name"),
        ):
            response = http.post("/fine-tunes", json=body)
            assert response.status_code == status, (body, response.text)
            assert says in response.json()["error"]["message"], response.text
        assert http.get("/fine-tunes/ft_missing").status_code == 404

    server.cli("users", "create", "ft-outsider", check=False)
    other = server.create_key("ft-outsider-key", "--user", "ft-outsider")
    with _http(server, other) as http:
        assert http.get(f"/fine-tunes/{job['id']}").status_code == 404
        assert job["id"] not in [j["id"] for j in http.get("/fine-tunes").json()["data"]]


def test_training_files_are_told_from_metadata() -> None:
    from danlu.refinery.jobs import training_files

    assert training_files(["README.md", "schema.json", "data/train.jsonl", "data/test.jsonl"]) == [
        "data/train.jsonl"
    ]
    assert training_files(["a.csv", "dataset_infos.json", "b.parquet"]) == ["a.csv", "b.parquet"]
    assert training_files(["notes.md"]) == []
