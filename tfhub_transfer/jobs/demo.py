"""`make demo`: default encoder -> fine-tune on the shipped demo reviews -> export -> predict."""

from __future__ import annotations

from pathlib import Path

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import train

DEMO_DATA = Path(__file__).resolve().parent.parent / "demo_data" / "reviews.tsv"
DEMO_SENTENCES = [
    "The battery was wonderful, and it made my day.",
    "Honestly, the delivery is dreadful and I want my money back.",
    "This book felt charming from start to finish.",
]


def demo_config(**fields) -> TrainConfig:
    """A small, quick `TrainConfig` on the bundled demo reviews: 64 training examples, one epoch, 32 word pieces.

    The docstring examples and notebooks start from it; any field can be changed.

    Args:
      **fields: `TrainConfig` fields (flat names, as `TrainConfig.of` takes them) that replace the defaults.

    Returns:
      The config.

    Example:
      >>> demo_config(mode="freeze").mode, demo_config().max_train_examples
      ('freeze', 64)
    """
    quick = {"train": str(DEMO_DATA), "max_train_examples": 64, "epochs": 1, "seq_length": 32, "verbose": 0,
             "tensorboard": False}
    return TrainConfig.of(**{**quick, **fields})


def run_demo(out_dir: str | Path = "saved_models", epochs: int = 2, encoder: str = "default") -> dict:
    """Runs the whole job on the built-in defaults and prints what it did."""
    result = train(
        TrainConfig.of(
train=DEMO_DATA, encoder=encoder, mode="finetune", epochs=epochs, batch_size=16,
            validation_fraction=0.25, name="demo", output_dir=out_dir, seq_length=64,
        )
    )
    print(f"\nvalidation accuracy: {result.metrics['accuracy']:.3f} "
          f"(macro-F1 {result.metrics['macro_f1']:.3f}) on {result.metrics['examples']} reviews")
    print(f"exported raw-string SavedModel: {result.export_path}")
    predictions = ExportedClassifier(result.export_path).predict(DEMO_SENTENCES)
    for text, label, probs in zip(DEMO_SENTENCES, predictions["labels"], predictions["probabilities"]):
        print(f"  {label:>8} ({probs.max():.2f})  {text}")
    return {"result": result, "predictions": predictions}
