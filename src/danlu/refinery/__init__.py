"""The refinery: fine-tuning jobs, training, evaluation and publishing (docs/refinery.md)."""
