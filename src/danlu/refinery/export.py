"""A refined model on disk: the LoRA adapter alone, and the merged model that serves as is.

The merged directory is a plain transformers model (safetensors, config, generation
config) with the tokenizer and, in it, the chat template the model was trained with,
so whatever serves it renders prompts the way training did. Each directory is written
under a temporary name and renamed into place: a reader never sees half of one.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from danlu.refinery.template import ChatTemplate, stop_token_ids

ADAPTER_PREFIX = "adapter/"  # where the adapter goes in a published repo


@dataclass(frozen=True)
class Exported:
    merged: Path
    adapter: Path | None  # None after full fine-tuning: there is no adapter


@contextmanager
def _atomic_directory(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final`` to write into, renamed to ``final`` on success."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".old-{final.name}-{os.getpid()}")
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def is_adapter_model(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def save_adapter(model: Any, directory: Path, *, base_name: str | None = None) -> Path:
    """The LoRA adapter (``adapter_config.json``, ``adapter_model.safetensors``)."""
    if not is_adapter_model(model):
        raise TypeError("save_adapter needs the peft model that LoRA training returned")
    if base_name is not None:
        for config in model.peft_config.values():
            config.base_model_name_or_path = base_name
    with _atomic_directory(directory) as tmp:
        # Embeddings are never adapted ("all-linear" skips them); saying so stops peft from
        # looking the base up on the Hugging Face Hub to compare vocabularies.
        model.save_pretrained(tmp, save_embedding_layers=False)
        (tmp / "README.md").unlink(missing_ok=True)  # peft's blank card; the repo has one
    return directory


def save_merged(model: Any, tokenizer: Any, template: ChatTemplate, directory: Path) -> Any:
    """The full model with any adapter merged in; returns that merged model.

    Merging folds the adapter into the base weights in place, so the peft model is spent
    afterwards: save the adapter first (:func:`export` does).
    """
    from transformers import GenerationConfig

    merged = model.merge_and_unload() if is_adapter_model(model) else model
    merged.config.use_cache = True  # training turned it off; serving wants it
    generation = GenerationConfig(  # type: ignore[no-untyped-call]
        bos_token_id=_token_id(tokenizer, template.bos_token) or tokenizer.bos_token_id,
        eos_token_id=stop_token_ids(tokenizer, template),
        pad_token_id=tokenizer.pad_token_id,
    )
    merged.generation_config = generation
    original = tokenizer.chat_template
    with _atomic_directory(directory) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.chat_template = template.source  # the template it was trained with
        try:
            tokenizer.save_pretrained(tmp)
        finally:
            tokenizer.chat_template = original
    return merged


def export(
    model: Any,
    tokenizer: Any,
    template: ChatTemplate,
    directory: Path,
    *,
    base_name: str | None = None,
) -> Exported:
    """``directory/adapter`` (LoRA only) then ``directory/merged``, in the order that works."""
    adapter = None
    if is_adapter_model(model):
        adapter = save_adapter(model, directory / "adapter", base_name=base_name)
    merged = directory / "merged"
    save_merged(model, tokenizer, template, merged)
    return Exported(merged, adapter)


def files_to_publish(exported: Exported) -> list[tuple[str, Path]]:
    """``(path in the repo, file on disk)``: the merged model at the root, the adapter
    under ``adapter/``, in a stable order."""
    files = [
        (p.relative_to(exported.merged).as_posix(), p)
        for p in sorted(exported.merged.rglob("*"))
        if p.is_file()
    ]
    if exported.adapter is not None:
        files += [
            (ADAPTER_PREFIX + p.relative_to(exported.adapter).as_posix(), p)
            for p in sorted(exported.adapter.rglob("*"))
            if p.is_file()
        ]
    return files


def _token_id(tokenizer: Any, token: str) -> int | None:
    if not token:
        return None
    found = tokenizer.convert_tokens_to_ids(token)
    return found if isinstance(found, int) and found != tokenizer.unk_token_id else None
