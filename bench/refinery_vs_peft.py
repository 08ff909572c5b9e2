"""Refinery training speed: danlu against plain transformers + peft and LLaMA-Factory, in one run.

What it measures
    The same LoRA fine-tuning, in turn, by three contenders on this machine:

    * **danlu**: the refinery's training loop as a job runs it (``load_base`` on the model
      directory, then ``train()`` with a checkpoint directory, a progress callback and a stop
      check, and the thread count a job takes from ``DANLU_REFINERY_THREADS``), without the
      job's database, evaluations and publishing;
    * **anchor**: a plain script a user would write with transformers and peft alone
      (``bench/refinery_contenders.py``: ``get_peft_model``, the model's own loss, AdamW,
      gradient clipping, a hand-written loop);
    * **llamafactory**: LLaMA-Factory's SFT LoRA training (``run_exp``, what
      ``llamafactory-cli train`` runs, on transformers' ``Trainer``), from
      ``llamafactory==LLAMAFACTORY_VERSION`` in a virtual environment of its own, made on
      first use; skipped, with the reason, when it cannot be installed or run.

    Each runs in its own process, one after another (they would compete for the cores).
    Reported: training tokens per second (the non-padding tokens of the batches, the same
    tokens for everyone, over the optimizer steps after ``--warmup-steps``, which are not
    timed), the CPU time those steps took (less sensitive to other load on a shared machine
    than wall time), and the peak resident memory of the process (``ru_maxrss`` from
    ``os.wait4`` on it: loading and training), beside its memory when training began and the
    CPU the rest of the machine used meanwhile (``/proc/stat`` less the contender's own).

    With ``--rounds N`` the contenders take turns N times (the order reversed every other
    round) and the table gives medians, plus two figures that resist other load on a shared
    machine: "quietest steps" (each step's shortest wall time over the rounds; the steps
    train the same batches for every contender, so they pair up) and, in the ratios, the
    median over steps of the step-by-step speed ratio.

Same work for everyone
    The embedded SmolLM2-135M-Instruct GGUF is loaded once by danlu's loader and saved as a
    transformers checkpoint; every contender loads that directory, float32, on the CPU. The
    dataset is the persona-json example's (``examples/refinery/persona-json/make_dataset.py``,
    generated here), tokenized once by danlu (its chat template, answers learnt, prompts
    masked), trimmed to a multiple of the batch size. The batches of every step are fixed in
    advance in danlu's order (``plan.json``) and all three train them in that order (the
    anchor by hand, LLaMA-Factory from a tokenized dataset with shuffling off). The same
    hyperparameters: LoRA rank, alpha and dropout on every linear layer but the output head,
    batch size, learning rate, warmup then cosine decay, gradient clipping at 1.0, AdamW
    without weight decay, the seed, and ``torch.set_num_threads`` (plus ``OMP_NUM_THREADS``)
    set to ``--threads`` for all. LLaMA-Factory's gradient checkpointing, on by default, is
    turned off, since the others keep activations. The anchor uses danlu's learning-rate
    schedule and LoRA initialisation seed, so its losses must match danlu's step by step (the
    bench prints the largest difference): the same computation, done by other code.

The goal (from the refinery issue): danlu's tokens per second ≥ the anchor's (ratio ≥ 1).

Run: ``python bench/refinery_vs_peft.py [--steps 30] [--warmup-steps 3] [--max-length 256]
[--batch-size 4] [--threads 1] [--rounds 1] [--contenders danlu,anchor,llamafactory]
[--json PATH] [--workdir DIR] [--llamafactory-python PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info
from refinery_contenders import memory_mb, read_work, versions

LLAMAFACTORY_VERSION = "0.9.5"
# Pinned so that pip takes the CPU build; an open range would pull a multi-GB CUDA build.
LLAMAFACTORY_TORCH = "torch==2.13.0"
DEFAULT_LLAMAFACTORY_VENV = Path(tempfile.gettempdir()) / "danlu-bench-llamafactory"
CONTENDERS = ("danlu", "anchor", "llamafactory")
REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()
TICK = os.sysconf("SC_CLK_TCK")
PERSONA = REPO / "examples" / "refinery" / "persona-json" / "make_dataset.py"
# What the prepared model and examples depend on; a --workdir with the same is reused.
PREPARED_KEYS = ("max_length", "conversations", "batch_size", "steps", "warmup_steps", "seed")


# --- preparing the shared model, examples and plan (a child process, danlu's environment) ----


def persona_rows() -> list[dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("persona_make_dataset", PERSONA)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows: list[dict[str, Any]] = module.rows()
    return rows


def step_plan(examples: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """The example indices of each step, in the order danlu's ``train()`` takes them (an
    epoch's order is ``randperm`` seeded with ``seed + epoch``; the danlu child checks that
    it read exactly these tokens)."""
    import torch

    per_epoch = math.ceil(examples / batch_size)
    plan = []
    for step in range(steps):
        epoch, within = divmod(step, per_epoch)
        order = torch.randperm(
            examples, generator=torch.Generator().manual_seed(seed + epoch)
        ).tolist()
        plan.append(order[within * batch_size : (within + 1) * batch_size])
    return plan


def child_prepare(work: Path) -> None:
    from danlu.refinery.base import embedded_base_path, load_base
    from danlu.refinery.data import load_dataset
    from danlu.refinery.template import encode_dataset
    from danlu.refinery.train import pad_id

    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    base = load_base(embedded_base_path(), method="lora")
    staging = work / "model.staging"
    shutil.rmtree(staging, ignore_errors=True)
    base.model.save_pretrained(staging)
    base.tokenizer.save_pretrained(staging)
    shutil.rmtree(work / "model", ignore_errors=True)
    staging.rename(work / "model")

    rows = persona_rows()
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    dataset = load_dataset([("train.jsonl", lines.encode())])
    wanted = settings["conversations"] or len(dataset)
    indices = list(range(min(wanted, len(dataset))))
    examples = encode_dataset(
        dataset,
        indices,
        base.template,
        base.tokenizer,
        max_length=settings["max_length"],
    )
    # Full steps only: LLaMA-Factory's sampler cuts the dataset into batch_size pieces.
    examples = examples[: len(examples) // settings["batch_size"] * settings["batch_size"]]
    with (work / "examples.jsonl").open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(json.dumps({"input_ids": example.input_ids, "labels": example.labels}))
            out.write("\n")
    plan = step_plan(
        len(examples), settings["batch_size"], settings["total_steps"], settings["seed"]
    )
    (work / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    settings["pad_id"] = pad_id(base.tokenizer)
    settings["examples"] = len(examples)
    settings["base"] = base.name
    settings["parameters"] = base.parameters
    (work / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    prepared = {key: settings[key] for key in PREPARED_KEYS}
    (work / "prepared.json").write_text(json.dumps(prepared), encoding="utf-8")


# --- danlu's contender (a child process, danlu's environment) --------------------------------


def child_danlu(work: Path, result: Path) -> None:
    import torch

    from danlu.core.settings import load_settings
    from danlu.refinery.base import load_base
    from danlu.refinery.hyperparameters import Hyperparameters
    from danlu.refinery.template import Example
    from danlu.refinery.train import train

    settings, rows, plan = read_work(work)
    # What the job pipeline does with DANLU_REFINERY_THREADS (pipeline.run_job).
    threads = load_settings().refinery_threads or max(1, (os.cpu_count() or 1) - 1)
    base = load_base(work / "model", method="lora", name=settings["base"])
    examples = [Example(r["input_ids"], r["labels"]) for r in rows]
    hp = Hyperparameters.from_dict(
        {
            "learning_rate": settings["learning_rate"],
            "batch_size": settings["batch_size"],
            "max_length": settings["max_length"],
            "lora_r": settings["lora_r"],
            "lora_alpha": settings["lora_alpha"],
            "lora_dropout": settings["lora_dropout"],
            "warmup_ratio": settings["warmup_ratio"],
            "seed": settings["seed"],
            "max_steps": settings["total_steps"],
        }
    )
    checkpoint_dir = work / "danlu-checkpoints"
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # an old checkpoint would be resumed
    step_ends: list[float] = []
    cpu_ends: list[float] = []
    losses: list[float] = []
    seen_threads: list[int] = []

    def progress(report: dict[str, Any]) -> None:
        step_ends.append(time.perf_counter())
        cpu_ends.append(time.process_time())
        losses.append(float(report["loss"]))
        if not seen_threads:
            seen_threads.append(torch.get_num_threads())

    began = memory_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    done = train(
        base,
        examples,
        hp,
        method="lora",
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        should_stop=lambda: False,
        threads=threads,
    )
    expected = sum(len(rows[i]["input_ids"]) for step in plan for i in step)
    if done.tokens != expected:
        raise SystemExit(
            f"danlu read {done.tokens} tokens, the plan has {expected}: the bench's step_plan "
            "no longer follows train()'s example order"
        )
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    record = {
        "contender": "danlu",
        "start": start,
        "cpu_start": cpu_start,
        "step_ends": step_ends,
        "cpu_ends": cpu_ends,
        "losses": losses,
        "threads": seen_threads[0] if seen_threads else threads,
        "memory_at_start": began,
        "versions": versions("danlu", "torch", "transformers", "peft"),
    }
    result.write_text(json.dumps(record) + "\n", encoding="utf-8")


# --- LLaMA-Factory's environment -------------------------------------------------------------


def llamafactory_python(venv: Path) -> tuple[Path | None, str]:
    """An interpreter with llamafactory==LLAMAFACTORY_VERSION, made on first use, or None
    and why not.

    PyPI's torchvision and torchaudio wheels (which llamafactory requires) are built against
    the CUDA build of torch and fail to load beside the CPU build, breaking ``import
    transformers``' trainer; they are removed again, and ``refinery_contenders.py`` puts an
    empty torchaudio in place for LLaMA-Factory's multimodal module, which text training
    does not use.
    """
    python = venv / "bin" / "python"
    check = [
        str(python),
        "-c",
        "import importlib.metadata as m, importlib.util as u; "
        "print(m.version('llamafactory'), u.find_spec('torchvision') or u.find_spec('torchaudio'))",
    ]
    ready = f"{LLAMAFACTORY_VERSION} None"
    if python.exists():
        found = subprocess.run(check, capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip() == ready:
            return python, ""
    if not python.exists():
        print(
            f"creating {venv} with llamafactory=={LLAMAFACTORY_VERSION} and "
            f"{LLAMAFACTORY_TORCH} (once; about 2 GB)",
            file=sys.stderr,
            flush=True,
        )
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            return None, f"python -m venv {venv} failed: {made.stderr.strip()[-500:]}"
    pip = [str(python), "-m", "pip"]
    installed = subprocess.run(
        [*pip, "install", "--quiet", f"llamafactory=={LLAMAFACTORY_VERSION}", LLAMAFACTORY_TORCH],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        return None, f"pip install llamafactory failed: {installed.stderr.strip()[-1000:]}"
    subprocess.run(
        [*pip, "uninstall", "--yes", "--quiet", "torchvision", "torchaudio"],
        capture_output=True,
        check=False,
    )
    found = subprocess.run(check, capture_output=True, text=True, check=False)
    if found.returncode != 0 or found.stdout.strip() != ready:
        return None, f"llamafactory's environment is not usable: {found.stderr.strip()[-500:]}"
    return python, ""


# --- running the contenders -------------------------------------------------------------------


def child_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "DANLU_REFINERY_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            # Nothing is downloaded: every contender reads the prepared directory.
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all cores), from /proc/stat."""
    with open("/proc/stat", encoding="utf-8") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class Measured:
    """A finished child process: exit code, peak resident memory, wall time, and the CPU
    that the rest of the machine used meanwhile (in cores: 1.0 is one core busy)."""

    code: int
    peak_mb: float
    seconds: float
    others_cores: float


def run_measured(command: list[str], env: dict[str, str], log: Path, timeout: float) -> Measured:
    """Run ``command`` and measure it.

    ``os.wait4`` gives the child's own ``ru_maxrss`` and CPU time, whatever else this process
    has waited for.
    """
    busy = busy_seconds()
    began = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - began
    proc.returncode = os.waitstatus_to_exitcode(status)
    others = busy_seconds() - busy - usage.ru_utime - usage.ru_stime
    return Measured(proc.returncode, usage.ru_maxrss / 1024, seconds, max(0.0, others) / seconds)


def summarize_run(
    name: str,
    record: dict[str, Any],
    plan: list[list[int]],
    lengths: list[int],
    warmup: int,
    measured: Measured,
) -> dict[str, Any]:
    ends = record["step_ends"]
    steps = len(plan)
    if len(ends) != steps:
        raise RuntimeError(f"{name} reported {len(ends)} steps of {steps}")
    first = ends[warmup - 1] if warmup else record["start"]
    seconds = ends[-1] - first
    tokens = sum(lengths[i] for step in plan[warmup:] for i in step)
    # Each timed step's wall time: the batches are the same for everyone, so steps pair up.
    bounds = [first, *ends[warmup:]]
    step_seconds = [after - before for before, after in itertools.pairwise(bounds)]
    cpu = None
    if record.get("cpu_ends"):
        cpu_ends = record["cpu_ends"]
        cpu = cpu_ends[-1] - (cpu_ends[warmup - 1] if warmup else record["cpu_start"])
    return {
        "contender": name,
        "timed_steps": steps - warmup,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "seconds_per_step": seconds / (steps - warmup),
        "step_seconds": step_seconds,
        "step_tokens": [sum(lengths[i] for i in step) for step in plan[warmup:]],
        "cpu_seconds": cpu,
        "tokens_per_cpu_second": tokens / cpu if cpu else None,
        "peak_rss_mb": measured.peak_mb,
        "rss_at_start_mb": record["memory_at_start"]["rss_mb"],
        "hwm_at_start_mb": record["memory_at_start"]["hwm_mb"],
        "process_seconds": measured.seconds,
        "others_cores": measured.others_cores,
        "threads": record["threads"],
        "losses": record["losses"],
        "versions": record["versions"],
    }


def contender_command(name: str, work: Path, result: Path, lf_python: Path | None) -> list[str]:
    if name == "danlu":
        return [sys.executable, str(HERE), "--child", "danlu", str(work), str(result)]
    python = sys.executable if name == "anchor" else str(lf_python)
    return [python, str(HERE.parent / "refinery_contenders.py"), name, str(work), str(result)]


def prepare(work: Path, settings: dict[str, Any], env: dict[str, str], timeout: float) -> None:
    wanted = {key: settings[key] for key in PREPARED_KEYS}
    with contextlib.suppress(OSError, ValueError):
        if json.loads((work / "prepared.json").read_text(encoding="utf-8")) == wanted:
            stored = json.loads((work / "settings.json").read_text(encoding="utf-8"))
            # The rest (learning rate, LoRA, threads) may differ between runs of one workdir.
            stored.update(settings)
            (work / "settings.json").write_text(json.dumps(stored, indent=2), encoding="utf-8")
            print(f"reusing the model and examples prepared in {work}", file=sys.stderr)
            return
    (work / "prepared.json").unlink(missing_ok=True)
    (work / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    print(
        "preparing: the embedded SmolLM2 through danlu's loader, saved as a transformers "
        "checkpoint; the persona-json dataset, tokenized",
        file=sys.stderr,
        flush=True,
    )
    command = [sys.executable, str(HERE), "--child", "prepare", str(work)]
    done = run_measured(command, env, work / "prepare.log", timeout)
    if done.code != 0:
        sys.exit(f"preparing failed ({done.code}):\n{(work / 'prepare.log').read_text()[-4000:]}")
    print(f"prepared in {done.seconds:.0f} s", file=sys.stderr, flush=True)


def compare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    total = args.warmup_steps + args.steps
    settings = {
        "threads": args.threads,
        "seed": 42,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lora_r": args.lora_r,
        "lora_alpha": args.lora_alpha,
        "lora_dropout": args.lora_dropout,
        "warmup_ratio": args.warmup_ratio,
        # danlu's train() warms the learning rate up over ceil(warmup_ratio × steps) steps.
        "lr_warmup_steps": math.ceil(args.warmup_ratio * total),
        "steps": args.steps,
        "warmup_steps": args.warmup_steps,
        "total_steps": total,
        "conversations": args.conversations,
    }
    env = child_env(args.threads)
    info = machine_info()
    info["load_average_before"] = os.getloadavg()
    prepare(work, settings, env, args.timeout)
    settings, rows, plan = read_work(work)
    lengths = [len(r["input_ids"]) for r in rows]

    skipped: dict[str, str] = {}
    lf_python: Path | None = None
    if "llamafactory" in args.contenders:
        if args.llamafactory_python is not None:
            lf_python = args.llamafactory_python
        else:
            lf_python, why = llamafactory_python(args.llamafactory_venv)
            if lf_python is None:
                skipped["llamafactory"] = why
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in args.contenders}
    for round_ in range(args.rounds):
        # Alternate the order, so that no contender always runs first (or last).
        order = [n for n in args.contenders if n not in skipped]
        if round_ % 2:
            order.reverse()
        for name in order:
            if name in skipped:
                continue
            result = work / f"result-{name}.json"
            result.unlink(missing_ok=True)
            log = work / f"{name}-{round_ + 1}.log"
            print(f"round {round_ + 1}: {name} ...", file=sys.stderr, flush=True)
            command = contender_command(name, work, result, lf_python)
            done = run_measured(command, env, log, args.timeout)
            if done.code != 0 or not result.exists():
                tail = log.read_text(errors="replace")[-3000:]
                print(f"{name} failed ({done.code}); its log ends:\n{tail}", file=sys.stderr)
                last = (tail.strip().splitlines() or ["(no output)"])[-1]
                skipped[name] = f"exited with {done.code}: {last[:300]}"
                continue
            record = json.loads(result.read_text(encoding="utf-8"))
            run = summarize_run(name, record, plan, lengths, args.warmup_steps, done)
            runs[name].append(run)
            speed, cpu_speed = run["tokens_per_second"], run["tokens_per_cpu_second"]
            print(
                f"  {speed:.1f} tokens/s ({cpu_speed:.1f} per CPU-second), "
                f"{run['seconds_per_step']:.2f} s/step, peak RSS {done.peak_mb:.0f} MB, "
                f"process {done.seconds:.0f} s, others' CPU {done.others_cores:.2f} cores",
                file=sys.stderr,
                flush=True,
            )
    info["load_average_after"] = os.getloadavg()
    summary = {name: summarize(rs) for name, rs in runs.items() if rs}
    return {
        "machine": info,
        "settings": {**settings, "rounds": args.rounds, "tokens_per_step": mean_tokens(plan, rows)},
        "runs": runs,
        "summary": summary,
        "ratios": ratios(summary),
        "loss_check": loss_check(runs),
        "skipped": skipped,
    }


def mean_tokens(plan: list[list[int]], rows: list[dict[str, Any]]) -> float:
    return statistics.mean(sum(len(rows[i]["input_ids"]) for i in step) for step in plan)


def quietest_steps(runs: list[dict[str, Any]]) -> list[float]:
    """Each timed step's shortest wall time over the rounds: the least disturbed figure."""
    return [min(times) for times in zip(*(r["step_seconds"] for r in runs), strict=True)]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the rounds (one round: that round), and the quietest steps."""

    def median(key: str) -> Any:
        values = [r[key] for r in runs if r[key] is not None]
        return statistics.median(values) if values else None

    keys = (
        "tokens_per_second",
        "seconds_per_step",
        "tokens_per_cpu_second",
        "peak_rss_mb",
        "rss_at_start_mb",
        "hwm_at_start_mb",
        "process_seconds",
        "others_cores",
    )
    quiet = quietest_steps(runs)
    return {
        **{key: median(key) for key in keys},
        "tokens_per_second_quietest": runs[0]["tokens"] / sum(quiet),
        "quietest_step_seconds": quiet,
        "rounds": len(runs),
        "threads": runs[0]["threads"],
        "first_loss": runs[0]["losses"][0],
        "last_loss": runs[0]["losses"][-1],
        "versions": runs[0]["versions"],
    }


def ratios(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """danlu over each other contender (above 1: danlu faster, or using more memory)."""
    if "danlu" not in summary:
        return {}
    ours = summary["danlu"]
    out = {}
    for name, theirs in summary.items():
        if name == "danlu":
            continue
        paired = [
            their / our
            for our, their in zip(
                ours["quietest_step_seconds"], theirs["quietest_step_seconds"], strict=True
            )
        ]
        out[name] = {
            "tokens_per_second": ours["tokens_per_second"] / theirs["tokens_per_second"],
            "tokens_per_second_quietest": ours["tokens_per_second_quietest"]
            / theirs["tokens_per_second_quietest"],
            # Speed ratio of the same batch, step by step; the median shrugs off the steps
            # that other processes on the machine disturbed.
            "per_step_median": statistics.median(paired),
            "peak_rss": ours["peak_rss_mb"] / theirs["peak_rss_mb"],
        }
        if ours["tokens_per_cpu_second"] and theirs["tokens_per_cpu_second"]:
            out[name]["tokens_per_cpu_second"] = (
                ours["tokens_per_cpu_second"] / theirs["tokens_per_cpu_second"]
            )
    return out


def loss_check(runs: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """The largest step-loss difference of each contender from danlu's (first rounds)."""
    if not runs.get("danlu"):
        return {}
    ours = runs["danlu"][0]["losses"]
    return {
        name: max(abs(a - b) for a, b in zip(ours, rs[0]["losses"], strict=False))
        for name, rs in runs.items()
        if name != "danlu" and rs and rs[0]["losses"]
    }


def render(result: dict[str, Any]) -> str:
    summary, versus = result["summary"], result["ratios"]

    def cell(value: Any, fmt: str) -> str:
        return "" if value is None else format(value, fmt)

    lines = [
        "| contender | tokens/s | tokens/s, quietest steps | tokens/CPU-s | s/step "
        "| peak RSS MB | RSS after load MB | others' CPU (cores) | loss, first → last |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['tokens_per_second']:.1f} | {s['tokens_per_second_quietest']:.1f} "
            f"| {cell(s['tokens_per_cpu_second'], '.1f')} | {s['seconds_per_step']:.2f} "
            f"| {s['peak_rss_mb']:.0f} | {s['rss_at_start_mb']:.0f} | {s['others_cores']:.2f} "
            f"| {s['first_loss']:.3f} → {s['last_loss']:.3f} |"
        )
    if versus:
        lines += [
            "",
            "| danlu / | tokens/s | tokens/s, quietest steps | per step (median) "
            "| tokens/CPU-s | peak RSS |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, v in versus.items():
            lines.append(
                f"| {name} | {v['tokens_per_second']:.3f} "
                f"| {v['tokens_per_second_quietest']:.3f} | {v['per_step_median']:.3f} "
                f"| {cell(v.get('tokens_per_cpu_second'), '.3f')} | {v['peak_rss']:.3f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=30, help="timed optimizer steps")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--max-length", type=int, default=256, help="tokens per example, at most")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--warmup-ratio", type=float, default=0.03, help="of the learning rate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, every contender")
    parser.add_argument(
        "--conversations", type=int, default=0, help="of the persona dataset (0: all 302)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat, alternating; medians")
    parser.add_argument(
        "--contenders",
        type=lambda s: [c for c in s.split(",") if c],
        default=list(CONTENDERS),
        help="comma-separated, from danlu,anchor,llamafactory",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per process")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) the prepared files here")
    parser.add_argument("--llamafactory-venv", type=Path, default=DEFAULT_LLAMAFACTORY_VENV)
    parser.add_argument("--llamafactory-python", type=Path, help="an interpreter with it")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        if kind == "prepare":
            child_prepare(Path(paths[0]))
        else:
            child_danlu(Path(paths[0]), Path(paths[1]))
        return
    unknown = set(args.contenders) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {', '.join(sorted(unknown))}; known: {CONTENDERS}")
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="danlu-rf-bench-")))
        else:
            work = args.workdir
            work.mkdir(parents=True, exist_ok=True)
        result = compare(args, work)
    m, s = result["machine"], result["settings"]
    print(
        f"\n{m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory']}; Python {m['python']}; "
        f"load average before {m['load_average_before'][0]:.2f}, after "
        f"{m['load_average_after'][0]:.2f}"
    )
    for name, summary in result["summary"].items():
        found = ", ".join(f"{k} {v}" for k, v in summary["versions"].items())
        print(f"{name}: {found}; {summary['threads']} torch thread(s)")
    print(
        f"{s['base']} ({s['parameters'] / 1e6:.0f}M), float32, LoRA r {s['lora_r']} α "
        f"{s['lora_alpha']} dropout {s['lora_dropout']} on all linear layers; batch "
        f"{s['batch_size']}, max length {s['max_length']}, {s['examples']} examples, "
        f"{s['tokens_per_step']:.0f} tokens a step on average; {s['steps']} timed steps after "
        f"{s['warmup_steps']} untimed; lr {s['learning_rate']}; {s['threads']} thread(s); "
        f"{s['rounds']} round(s)\n"
    )
    print(render(result))
    for name, diff in result["loss_check"].items():
        print(f"largest step-loss difference, danlu vs {name}: {diff:.2e}")
    for name, why in result["skipped"].items():
        print(f"{name} skipped: {why}")
    versus = result["ratios"].get("anchor")
    if versus:
        print(
            "goal danlu/anchor tokens/s ≥ 1: "
            + ", ".join(
                f"{label} {versus[key]:.3f} {'met' if versus[key] >= 1 else 'not met'}"
                for label, key in (
                    ("median of rounds", "tokens_per_second"),
                    ("quietest steps", "tokens_per_second_quietest"),
                    ("per step", "per_step_median"),
                )
            )
        )
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
