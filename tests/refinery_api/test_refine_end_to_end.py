"""The whole refinery flow on a real server, offline on the CPU: a hub dataset and the
embedded SmolLM2 in, a refined model repo out (card, adapter, metrics), served through the
gateway and answering the openai SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from huggingface_hub import HfApi

from tests.support.server import RunningServer, start_server

NAMES = ["Alice", "Bob", "Chen", "Dana", "Emil", "Fang", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lin"]


def _rows() -> list[dict[str, Any]]:
    # A fixed persona and JSON shape the base model cannot know (Alpaca format).
    return [
        {
            "instruction": f"Greet {name}.",
            "output": json.dumps({"greeting": f"Welcome to the furnace, {name}!", "from": "danlu"}),
        }
        for name in NAMES * 2
    ]


@pytest.fixture(scope="module")
def refinery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path_factory.mktemp("danlu-refinery"),
        {"DANLU_REFINERY_WORKERS": "1", "DANLU_LLAMA_THREADS": "1"},
    )
    yield server
    server.stop()


@pytest.mark.timeout(900)
def test_refine_publish_serve_and_chat(refinery_server: RunningServer) -> None:
    server = refinery_server
    hub = HfApi(endpoint=server.url, token=server.admin_key)
    data = hub.create_repo("admin/greetings", repo_type="dataset").repo_id
    hub.upload_file(
        path_or_fileobj="\n".join(json.dumps(r) for r in _rows()).encode(),
        path_in_repo="train.jsonl",
        repo_id=data,
        repo_type="dataset",
    )
    with httpx.Client(
        base_url=server.api, timeout=60, headers={"Authorization": f"Bearer {server.admin_key}"}
    ) as http:
        _refine_and_check(server, hub, http, data)


def _refine_and_check(server: RunningServer, hub: HfApi, http: httpx.Client, data: str) -> None:
    created = http.post(
        "/fine-tunes",
        json={
            "dataset": data,
            "output_repo": "admin/greeter",
            "serve": True,
            "hyperparameters": {
                "max_steps": 8,
                "batch_size": 4,
                "learning_rate": 1e-3,
                "max_length": 128,
                "held_out_fraction": 0.2,
                "checkpoint_every": 4,
            },
        },
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]

    deadline = time.monotonic() + 800
    while True:
        job = http.get(f"/fine-tunes/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, job
        time.sleep(2)
    log = (server.home / "refinery" / "worker-0.log").read_text(errors="replace")
    assert job["status"] == "succeeded", (job, log[-3000:])
    assert job["split"]["held_out"] == 5 and job["split"]["train"] == 19
    before, after = job["metrics"]["before"], job["metrics"]["after"]
    assert after["loss"] < before["loss"], job["metrics"]
    assert job["metrics"]["samples"], job["metrics"]

    events = http.get(f"/fine-tunes/{job_id}/events").json()["data"]
    progress = [e["data"] for e in events if e["kind"] == "progress"]
    assert progress and progress[-1]["step"] == 8
    assert {"loss", "learning_rate", "tokens_per_second", "eta_seconds"} <= set(progress[-1])
    stages = [e["data"].get("stage") for e in events if e["kind"] == "status"]
    assert stages.index("training") < stages.index("publishing")

    files = {f.rfilename for f in hub.model_info("admin/greeter", files_metadata=False).siblings}
    assert {"config.json", "model.safetensors", "README.md", "loss_curve.png"} <= files
    assert "adapter/adapter_config.json" in files
    card = hub.model_info("admin/greeter").card_data
    assert card is not None
    assert card.base_model in ("danlu/smollm2-135m-instruct", ["danlu/smollm2-135m-instruct"])

    deadline = time.monotonic() + 120
    while "greeter" not in {m["id"] for m in http.get("/models").json()["data"]}:
        assert time.monotonic() < deadline, "the refined model was not served"
        time.sleep(1)
    with openai.OpenAI(base_url=server.api, api_key=server.admin_key) as client:
        answer = client.chat.completions.create(
            model="greeter",
            messages=[{"role": "user", "content": "Greet Alice."}],
            max_tokens=24,
        )
    assert answer.choices[0].message.content
    assert answer.usage is not None and answer.usage.completion_tokens > 0
