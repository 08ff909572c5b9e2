"""Base models: what loads, how, and what is refused before any weight is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from danlu.refinery.base import (
    GIB,
    Base,
    available_memory,
    check_trainable,
    load_base,
    locate,
)
from danlu.refinery.errors import BaseModelUnsupported, NotEnoughMemory


def test_the_embedded_gguf_loads_as_a_plain_float32_model(smollm2: Base) -> None:
    from llama_cpp import Llama

    model = smollm2.model
    assert smollm2.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert smollm2.parameters == 134_515_008
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    # no GGUF quantizer left behind: saving and training treat it as any other model
    assert getattr(model, "hf_quantizer", None) is None
    assert not hasattr(model.config, "quantization_config")
    # the template is the one the gateway reads through llama.cpp
    llama = Llama(model_path=str(smollm2.path), vocab_only=True, verbose=False)
    assert smollm2.template.source == llama.metadata["tokenizer.chat_template"]
    llama.close()
    assert (smollm2.template.bos_token, smollm2.template.eos_token) == (
        "<|im_start|>",
        "<|im_end|>",
    )


def test_a_transformers_directory_loads_with_its_template(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    tiny = make_tiny()
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = load_base(tmp_path, name="tiny")
    assert loaded.gguf_file is None and loaded.name == "tiny"
    assert loaded.parameters == sum(p.numel() for p in tiny.model.parameters())
    assert loaded.template.source == tiny.tokenizer.chat_template
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, tiny.model(ids).logits)


def write_config(folder: Path, config: dict[str, object]) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_encoders_are_refused(tmp_path: Path) -> None:
    folder = write_config(tmp_path / "e5", {"model_type": "bert", "architectures": ["BertModel"]})
    with pytest.raises(BaseModelUnsupported, match="is a BertModel, not a causal language model"):
        load_base(folder)


def test_unknown_architectures_are_refused(tmp_path: Path) -> None:
    folder = write_config(
        tmp_path / "odd", {"model_type": "furnace", "architectures": ["FurnaceForCausalLM"]}
    )
    with pytest.raises(BaseModelUnsupported, match=r"'furnace' .* does not know"):
        load_base(folder)


def write_gguf(path: Path, architecture: str) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_ggufs_of_unknown_or_non_causal_architectures_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnsupported, match="'furnace', which transformers cannot load"):
        load_base(write_gguf(tmp_path / "odd.gguf", "furnace"))
    with pytest.raises(BaseModelUnsupported, match="is a t5 model, not a causal language model"):
        load_base(write_gguf(tmp_path / "t5.gguf", "t5"))


def test_memory_is_checked_before_loading(tmp_path: Path) -> None:
    with pytest.raises(NotEnoughMemory) as caught:
        check_trainable("big", 7_000_000_000, "lora", available=16 * GIB)
    assert str(caught.value) == (
        "training big (7000M parameters) with lora needs about 66.2 GiB of memory, and "
        "16.0 GiB are available: free memory, use a machine with more, pick a smaller base"
    )
    assert caught.value.needed > caught.value.available == 16 * GIB
    with pytest.raises(NotEnoughMemory, match=r"or use method 'lora'"):
        check_trainable("mid", 1_000_000_000, "full", available=8 * GIB)
    with pytest.raises(BaseModelUnsupported, match="full fine-tuning on CPU is limited to 2B"):
        check_trainable("big", 3_000_000_000, "full", available=1 << 50)
    check_trainable("small", 135_000_000, "lora", available=4 * GIB)
    assert available_memory() > 0


def test_a_base_that_does_not_fit_is_refused_by_load_base(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    tiny = make_tiny()
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    with pytest.raises(NotEnoughMemory, match=r"needs about 1\.0 GiB of memory, and 0\.5 GiB"):
        load_base(tmp_path, available=GIB // 2)


def test_locating_a_model(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnsupported, match="holds no model"):
        locate(tmp_path)
    write_gguf(tmp_path / "a.gguf", "llama")
    assert locate(tmp_path) == (tmp_path, "a.gguf")
    write_gguf(tmp_path / "b.gguf", "llama")
    with pytest.raises(BaseModelUnsupported, match=r"several GGUF files \(a.gguf, b.gguf\)"):
        locate(tmp_path)
    assert locate(tmp_path, "b.gguf") == (tmp_path, "b.gguf")
    assert locate(tmp_path / "a.gguf") == (tmp_path, "a.gguf")
