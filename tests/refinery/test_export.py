"""Export: the adapter and the merged model reload to the very model that was trained."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from danlu.refinery.base import Base
from danlu.refinery.evaluate import evaluate
from danlu.refinery.export import export, files_to_publish
from danlu.refinery.hyperparameters import Hyperparameters
from danlu.refinery.template import encode
from danlu.refinery.train import train
from tests.refinery.conftest import encoded

IDS = torch.tensor([[1, 4093, 198, 6004, 2, 198, 1, 520, 9531, 198]])


def logits(model: Any) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=IDS).logits


def trained_tiny(make_tiny: Callable[[], Base], method: str = "lora") -> tuple[Base, Any]:
    base = make_tiny()
    examples = encoded(base.template, base.tokenizer, 4)
    hp = Hyperparameters(max_steps=3, batch_size=2, learning_rate=2e-2, warmup_ratio=0.0)
    return base, train(base, examples, hp, method=method)


# peft 0.21 asks transformers 5 a question it renamed, when loading an adapter; not ours.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_merged_model_and_adapter_reload_to_the_trained_model(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    base, result = trained_tiny(make_tiny)
    expected = logits(result.model)
    assert not torch.allclose(expected, logits(make_tiny().model))  # training did something

    exported = export(result.model, base.tokenizer, base.template, tmp_path, base_name="tiny")
    merged = AutoModelForCausalLM.from_pretrained(exported.merged)
    torch.testing.assert_close(logits(merged), expected, rtol=1e-4, atol=1e-4)
    assert exported.adapter is not None
    adapted = PeftModel.from_pretrained(make_tiny().model, exported.adapter)
    torch.testing.assert_close(logits(adapted), expected, rtol=1e-4, atol=1e-4)

    tokenizer = AutoTokenizer.from_pretrained(exported.merged)
    assert tokenizer.chat_template == base.template.source  # served as it was trained
    generation = GenerationConfig.from_pretrained(exported.merged)
    assert generation.eos_token_id == [2] and generation.bos_token_id == 1
    assert merged.config.use_cache is True

    published = dict(files_to_publish(exported))
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json"} <= set(
        published
    )
    assert {"adapter/adapter_config.json", "adapter/adapter_model.safetensors"} <= set(published)
    assert "adapter/README.md" not in published
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_full_fine_tuning_exports_the_model_alone(
    make_tiny: Callable[[], Base], tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    base, result = trained_tiny(make_tiny, method="full")
    expected = logits(result.model)
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "stale.bin").write_bytes(b"from an earlier export")
    exported = export(result.model, base.tokenizer, base.template, tmp_path)
    assert exported.adapter is None
    assert not (exported.merged / "stale.bin").exists()  # replaced whole
    reloaded = AutoModelForCausalLM.from_pretrained(exported.merged)
    torch.testing.assert_close(logits(reloaded), expected, rtol=1e-4, atol=1e-4)
    assert all(not path.startswith("adapter/") for path, _ in files_to_publish(exported))


def test_evaluation_measures_json_answers(make_tiny: Callable[[], Base]) -> None:
    base = make_tiny()
    held_out = [
        [
            {"role": "user", "content": f"Item {i} as JSON"},
            {"role": "assistant", "content": f'{{"item": {i}}}'},
        ]
        for i in range(3)
    ]
    examples = [e for c in held_out for e in encode(c, base.template, base.tokenizer)]
    schema = {"type": "object", "required": ["item"]}
    result = evaluate(
        base.model,
        base.tokenizer,
        base.template,
        held_out,
        examples,
        json_schema=schema,
        max_new_tokens=4,
        generations=2,
        samples=1,
    )
    assert set(result.metrics) == {
        "loss",
        "perplexity",
        "exact_match",
        "rouge_l",
        "json_valid",
        "json_schema_valid",
    }
    assert result.metrics["json_valid"] == 0.0  # a random model writes no JSON
    assert result.samples == [
        {
            "prompt": "Item 0 as JSON",
            "reference": '{"item": 0}',
            "output": result.samples[0]["output"],
        }
    ]
