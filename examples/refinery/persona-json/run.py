"""Refine the embedded SmolLM2 into "炉守", a game NPC that answers in one JSON shape.

The whole product, over HTTP, against a running danlu:

1. upload ``train.jsonl`` (and the card) to the hub as a dataset repo, with huggingface_hub;
2. ``POST /v1/fine-tunes`` with the JSON schema and the hyperparameters below;
3. follow ``/v1/fine-tunes/{id}/events?stream=true``, printing the stages and progress;
4. print the held-out metrics before and after, and samples side by side;
5. chat with the served refined model (and the embedded base, for contrast) through the
   openai SDK.

    danlu serve --port 8765 &                 # DANLU_REFINERY_THREADS=1 on a small machine
    danlu keys create --name demo --admin     # the key is the last line
    python examples/refinery/persona-json/run.py --url http://127.0.0.1:8765 --key sk-danlu-…

Needs only what danlu installs (huggingface_hub, httpx, openai). ``--report FILE`` writes the
job, its figures and the chats as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Chosen for 2 shared CPU cores and one PyTorch thread: ~270 training conversations of
# ~150 tokens, 3 epochs of batch 4 is ~200 steps. A high LoRA learning rate, because the
# run is short and the task is narrow.
HYPERPARAMETERS: dict[str, Any] = {
    "epochs": 3,
    "learning_rate": 1e-3,
    "batch_size": 4,
    "max_length": 192,
    "lora_r": 16,
    "lora_alpha": 32,
    "warmup_ratio": 0.05,
    "held_out_fraction": 0.1,
    "seed": 42,
    "checkpoint_every": 100,
}

# Questions that are not in the dataset (new wordings, a place and item mixed), for the chat.
CHAT = [
    "Good evening! I'm Kai.",
    "北峰怎么走？",
    "Is the Old Well safe for a child?",
    "雪莲是干什么用的？",
    "Got any quests at the Market?",
    "What's the capital of France?",
]


def value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def system_prompt() -> str:
    first = (HERE / "train.jsonl").read_text("utf-8").splitlines()[0]
    return str(json.loads(first)["messages"][0]["content"])


def upload(url: str, key: str, repo: str) -> str:
    """The dataset repo on the hub with train.jsonl and the card; its commit."""
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
    from huggingface_hub import HfApi

    api = HfApi(endpoint=url, token=key)
    api.create_repo(repo, repo_type="dataset", exist_ok=True)
    info = api.upload_folder(
        folder_path=str(HERE),
        repo_id=repo,
        repo_type="dataset",
        allow_patterns=["train.jsonl", "README.md"],
        commit_message="Furnace Keeper: a game NPC that answers in JSON",
    )
    return str(getattr(info, "oid", "") or "")


def follow(client: Any, job_id: str) -> None:
    """Print the job's events as they come, until it ends."""
    last_progress = 0.0
    with client.stream(
        "GET", f"/v1/fine-tunes/{job_id}/events", params={"stream": "true"}, timeout=None
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            payload = line[len("data: ") :]
            if payload == "[DONE]":
                return
            event = json.loads(payload)
            kind, data = event["kind"], event["data"]
            stamp = time.strftime("%H:%M:%S")
            if kind == "status":
                if "stage" in data:
                    print(f"{stamp}  stage: {data['stage']}", flush=True)
                else:
                    print(f"{stamp}  job {data.get('status')}", flush=True)
            elif kind == "log" and "message" in data:
                print(f"{stamp}  {data['message']}", flush=True)
            elif kind == "log" and "served_as" in data:
                print(f"{stamp}  served as {data['served_as']!r}", flush=True)
            elif kind == "progress":
                now = time.monotonic()
                final = data.get("step") == data.get("total_steps")
                if now - last_progress >= 30 or final:
                    last_progress = now
                    print(
                        f"{stamp}  step {data['step']}/{data['total_steps']}  "
                        f"epoch {data.get('epoch', 0):.2f}  loss {data.get('loss', 0):.4f}  "
                        f"{data.get('tokens_per_second', 0):.0f} tok/s  "
                        f"eta {data.get('eta_seconds', 0):.0f} s",
                        flush=True,
                    )
            else:
                print(f"{stamp}  {kind}: {json.dumps(data, ensure_ascii=False)}", flush=True)


METRICS = ["json_valid", "json_schema_valid", "exact_match", "rouge_l", "loss", "perplexity"]


def _figure(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def show_metrics(metrics: dict[str, Any]) -> None:
    before, after = metrics.get("before", {}), metrics.get("after", {})
    names = [n for n in METRICS if n in before or n in after]
    names += sorted((set(before) | set(after)) - set(names))
    print(f"\n{'held-out metric':20s} {'before':>10s} {'after':>10s}")
    for name in names:
        b, a = before.get(name), after.get(name)
        print(f"{name:20s} {_figure(b):>10s} {_figure(a):>10s}")
    for i, sample in enumerate(metrics.get("samples", []), 1):
        print(f"\n--- sample {i}: {sample['prompt']}")
        print(f"reference: {sample['reference']}")
        print(f"before:    {sample['before']}")
        print(f"after:     {sample['after']}")


def wait_served(client: Any, job_id: str, timeout: float = 600) -> str | None:
    """The served model's name once the server serves it (it does so on its sync timer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/fine-tunes/{job_id}").json()
        if job.get("served_model"):
            models = client.get("/v1/models").json().get("data", [])
            if any(m.get("id") == job["served_model"] for m in models):
                return str(job["served_model"])
        time.sleep(3)
    return None


def chat(url: str, key: str, models: list[str]) -> list[dict[str, str]]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key=key, timeout=600)
    system = system_prompt()
    out = []
    for question in CHAT:
        row = {"question": question}
        print(f"\nplayer: {question}")
        for model in models:
            answer = client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": question},
                ],
                temperature=0,
                max_tokens=80,
            )
            text = (answer.choices[0].message.content or "").strip()
            row[model] = text
            print(f"  {model:28s} {text}")
        out.append(row)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("DANLU_URL", "http://127.0.0.1:8765"))
    parser.add_argument("--key", default=os.environ.get("DANLU_KEY"), help="a hub:write key")
    parser.add_argument("--dataset", default=None, help="dataset repo (default NS/furnace-keeper)")
    parser.add_argument(
        "--output", default=None, help="model repo to publish (default NS/furnace-keeper-smollm2)"
    )
    parser.add_argument("--base", default="danlu/smollm2-135m-instruct")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a hyperparameter",
    )
    parser.add_argument("--no-serve", action="store_true", help="do not serve and chat")
    parser.add_argument("--report", type=Path, help="write the figures and chats as JSON here")
    args = parser.parse_args()
    if not args.key:
        parser.error("--key (or DANLU_KEY) is required: danlu keys create --name demo --admin")
    url = args.url.rstrip("/")

    import httpx

    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {args.key}"}, timeout=60)
    namespace = client.get("/api/whoami-v2").raise_for_status().json()["name"]
    dataset = args.dataset or f"{namespace}/furnace-keeper"
    output = args.output or f"{namespace}/furnace-keeper-smollm2"
    hyperparameters = dict(HYPERPARAMETERS)
    for item in args.settings:
        name, _, text = item.partition("=")
        hyperparameters[name.strip()] = value(text.strip())
    schema = json.loads((HERE / "schema.json").read_text("utf-8"))
    hyperparameters["json_schema"] = schema

    print(f"uploading the dataset to {url} as {dataset} …", flush=True)
    commit = upload(url, args.key, dataset)
    print(f"  at {commit[:12] or '?'}")
    started = time.monotonic()
    response = client.post(
        "/v1/fine-tunes",
        json={
            "base_model": args.base,
            "dataset": dataset,
            "dataset_files": ["train.jsonl"],
            "method": "lora",
            "hyperparameters": hyperparameters,
            "output_repo": output,
            "serve": not args.no_serve,
        },
    )
    if response.status_code >= 400:
        print(f"creating the job failed: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    job = response.json()
    shown = {k: v for k, v in hyperparameters.items() if k != "json_schema"}
    print(f"job {job['id']}: {job['base_model']} on {job['dataset']} → {job['output_repo']}")
    print(f"  hyperparameters {json.dumps(shown)} + json_schema")
    follow(client, job["id"])
    wall = time.monotonic() - started
    job = client.get(f"/v1/fine-tunes/{job['id']}").raise_for_status().json()
    print(f"\njob {job['status']} in {wall / 60:.1f} min (stage {job['stage']})")
    if job["status"] != "succeeded":
        print(f"error: {job.get('error')}", file=sys.stderr)
        return 1
    show_metrics(job["metrics"] or {})

    chats: list[dict[str, str]] = []
    served = None
    if not args.no_serve:
        print("\nwaiting for the server to serve the refined model …", flush=True)
        served = wait_served(client, job["id"])
        if served is None:
            print("it was not served within 10 minutes; see the job's events", file=sys.stderr)
        else:
            print(f"served as {served!r}; chatting (questions not in the dataset):")
            chats = chat(url, args.key, ["smollm2-135m-instruct", served])
    if args.report:
        args.report.write_text(
            json.dumps(
                {
                    "job": job,
                    "wall_seconds": wall,
                    "served_model": served,
                    "chats": chats,
                },
                ensure_ascii=False,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(f"\nreport written to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
