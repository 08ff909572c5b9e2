"""The contenders of ``bench/refinery_vs_peft.py`` that are not danlu, one process each.

Run by the bench, not by hand::

    python bench/refinery_contenders.py {anchor|llamafactory} WORKDIR RESULT.json

``WORKDIR`` is what the bench prepared: ``settings.json`` (the shared hyperparameters and
thread count), ``examples.jsonl`` (the tokenized examples, danlu's encoding of the dataset),
``plan.json`` (the example indices of every optimizer step, in danlu's order) and ``model/``
(the base as a transformers checkpoint). This file imports no danlu: the anchor is what a
user would write with transformers and peft alone, and LLaMA-Factory runs in a virtual
environment of its own, where danlu is not installed.

* **anchor**: a hand-written loop: ``AutoModelForCausalLM.from_pretrained``, ``get_peft_model``
  with a ``LoraConfig``, the model's own loss (``labels=``), ``torch.optim.AdamW``, gradient
  clipping, the same learning-rate schedule as danlu's, the same batches in the same order.
* **llamafactory**: ``llamafactory.train.tuner.run_exp`` (what ``llamafactory-cli train`` calls)
  with an SFT LoRA config; the examples go in as a tokenized dataset (``tokenized_path``) laid
  out in the plan's order with shuffling off, so it trains the same batches.

Each writes ``RESULT.json``: the time at the end of every optimizer step, the step losses, the
thread count torch used, versions, and the resident memory when training began.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

IGNORE = -100


def memory_mb() -> dict[str, float]:
    """This process's VmRSS and VmHWM (peak so far), in MB."""
    found: dict[str, float] = {}
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return {"rss_mb": found.get("VmRSS", 0.0), "hwm_mb": found.get("VmHWM", 0.0)}


def versions(*names: str) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def read_work(work: Path) -> tuple[dict[str, Any], list[dict[str, list[int]]], list[list[int]]]:
    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    with (work / "examples.jsonl").open(encoding="utf-8") as lines:
        examples = [json.loads(line) for line in lines]
    plan = json.loads((work / "plan.json").read_text(encoding="utf-8"))
    return settings, examples, plan


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warmup from the first step, then cosine to 0 (danlu's schedule, so that the
    anchor's losses can be compared with danlu's step by step)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    done = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))


# --- the anchor: transformers + peft, a plain loop -------------------------------------------


def run_anchor(work: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    settings, examples, plan = read_work(work)
    torch.set_num_threads(settings["threads"])
    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype=torch.float32)
    model.config.use_cache = False
    began = memory_mb()  # after loading, as danlu's is
    torch.manual_seed(settings["seed"])
    model = get_peft_model(
        model,
        LoraConfig(
            r=settings["lora_r"],
            lora_alpha=settings["lora_alpha"],
            lora_dropout=settings["lora_dropout"],
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=settings["learning_rate"], weight_decay=0.0)
    total, warmup = settings["total_steps"], settings["lr_warmup_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, warmup, total)
    )
    pad = settings["pad_id"]

    def batch(indices: list[int]) -> dict[str, Any]:
        rows = [examples[i] for i in indices]
        ids = [torch.tensor(r["input_ids"]) for r in rows]
        labels = [torch.tensor(r["labels"]) for r in rows]
        pad_seq = torch.nn.utils.rnn.pad_sequence
        return {
            "input_ids": pad_seq(ids, batch_first=True, padding_value=pad),
            "attention_mask": pad_seq(
                [torch.ones_like(i) for i in ids], batch_first=True, padding_value=0
            ),
            "labels": pad_seq(labels, batch_first=True, padding_value=IGNORE),
        }

    losses: list[float] = []
    step_ends: list[float] = []
    cpu_ends: list[float] = []
    model.train()
    start, cpu_start = time.perf_counter(), time.process_time()
    for indices in plan[:total]:
        loss = model(**batch(indices), use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        step_ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
    return {
        "start": start,
        "cpu_start": cpu_start,
        "step_ends": step_ends,
        "cpu_ends": cpu_ends,
        "losses": losses,
        "threads": torch.get_num_threads(),
        "memory_at_start": began,
        "versions": versions("torch", "transformers", "peft"),
    }


# --- LLaMA-Factory --------------------------------------------------------------------------


def llamafactory_dataset(
    work: Path, examples: list[dict[str, list[int]]], plan: list[list[int]]
) -> Path:
    """The plan's examples, step after step, as the tokenized dataset LLaMA-Factory loads."""
    from datasets import Dataset

    path = work / "llamafactory-tokenized"
    rows = [examples[i] for step in plan for i in step]
    Dataset.from_dict(
        {
            "input_ids": [r["input_ids"] for r in rows],
            "attention_mask": [[1] * len(r["input_ids"]) for r in rows],
            "labels": [r["labels"] for r in rows],
        }
    ).save_to_disk(str(path))
    return path


def stub_torchaudio() -> None:
    """An empty ``torchaudio`` when none is installed.

    PyPI's torchaudio and torchvision wheels are linked against the CUDA build of torch and
    fail to load beside the CPU build, so the bench's environment removes them (see
    ``llamafactory_python`` in ``refinery_vs_peft.py``). LLaMA-Factory imports torchaudio at
    the top of its multimodal plugin module, which text training never calls.
    """
    import importlib.machinery
    import importlib.util
    import types

    if importlib.util.find_spec("torchaudio") is None:
        stub = types.ModuleType("torchaudio")
        stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
        sys.modules["torchaudio"] = stub


def run_llamafactory(work: Path) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback

    settings, examples, plan = read_work(work)
    total = settings["total_steps"]
    if any(len(step) != settings["batch_size"] for step in plan[:total]):
        raise SystemExit("LLaMA-Factory needs every step to hold batch_size examples")
    tokenized = llamafactory_dataset(work, examples, plan[:total])
    torch.set_num_threads(settings["threads"])
    stub_torchaudio()

    from llamafactory.train.tuner import run_exp

    record: dict[str, Any] = {"step_ends": [], "cpu_ends": [], "losses": []}

    class Clock(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            record["memory_at_start"] = memory_mb()
            record["threads"] = torch.get_num_threads()
            record["start"], record["cpu_start"] = time.perf_counter(), time.process_time()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            record["step_ends"].append(time.perf_counter())
            record["cpu_ends"].append(time.process_time())

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                record["losses"].append(float(logs["loss"]))

    run_exp(
        {
            "stage": "sft",
            "do_train": True,
            "model_name_or_path": str(work / "model"),
            "finetuning_type": "lora",
            "lora_rank": settings["lora_r"],
            "lora_alpha": settings["lora_alpha"],
            "lora_dropout": settings["lora_dropout"],
            "lora_target": "all",
            # With tokenized_path the dataset and template are not read, but must be named.
            "dataset": "danlu_bench",
            "template": "empty",
            "tokenized_path": str(tokenized),
            "cutoff_len": settings["max_length"],
            "disable_shuffling": True,  # the plan's order, as danlu trains it
            # LLaMA-Factory turns gradient checkpointing on by default; danlu and the anchor
            # keep activations, so it is off here to compare the same computation.
            "disable_gradient_checkpointing": True,
            "output_dir": str(work / "llamafactory-output"),
            "overwrite_output_dir": True,
            "per_device_train_batch_size": settings["batch_size"],
            "gradient_accumulation_steps": 1,
            "learning_rate": settings["learning_rate"],
            "max_steps": total,
            "lr_scheduler_type": "cosine",
            "warmup_steps": settings["lr_warmup_steps"],
            "weight_decay": 0.0,
            "max_grad_norm": 1.0,
            "seed": settings["seed"],
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": "none",
            "dataloader_num_workers": 0,
            "plot_loss": False,
        },
        callbacks=[Clock()],
    )
    record["versions"] = versions(
        "llamafactory", "torch", "transformers", "peft", "accelerate", "datasets"
    )
    return record


def main() -> None:
    contender, work, result = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    run = {"anchor": run_anchor, "llamafactory": run_llamafactory}[contender]
    record = run(work)
    record["contender"] = contender
    record["pid"] = os.getpid()
    result.write_text(json.dumps(record) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
