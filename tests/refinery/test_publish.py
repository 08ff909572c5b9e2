"""The model card a refined model is published with."""

from __future__ import annotations

from danlu.refinery.job_tables import FineTune
from danlu.refinery.publish import loss_curve_png, model_card


def test_the_card_carries_lineage_metrics_and_readable_values() -> None:
    job = FineTune(
        id="ft_abc123",
        base_model="danlu/smollm2-135m-instruct",
        base_revision="a" * 40,
        dataset="admin/npc",
        dataset_revision="b" * 40,
        dataset_files=["train.jsonl"],
        method="lora",
        hyperparameters={"epochs": 3, "json_schema": {"type": "object", "required": ["npc"]}},
        output_repo="admin/npc-lora",
        split={"seed": 42, "total": 100, "held_out": 10},
    )
    metrics = {
        "before": {"loss": 1.8571, "json_valid": 0.0},
        "after": {"loss": 0.05, "json_valid": 1.0},
    }
    samples = [{"prompt": "hi", "before": "line one\nline two", "after": '{"npc": "炉守"}'}]
    card = model_card(job, metrics, samples)
    assert card.startswith("---\nbase_model: danlu/smollm2-135m-instruct\ndatasets:\n- admin/npc\n")
    assert "| loss | 1.8571 | 0.0500 |" in card and "| json_valid | 0.0000 | 1.0000 |" in card
    # JSON, not a Python repr; samples kept on one line each.
    assert '`{"type": "object", "required": ["npc"]}`' in card
    assert "- base: line one ⏎ line two" in card
    png = loss_curve_png([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    assert png.startswith(b"\x89PNG")
