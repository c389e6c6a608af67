"""Scores an exported model on labelled data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfhub_transfer.data.tables import label_key, read_table
from tfhub_transfer.errors import DataError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.training.metrics import classification_report


def evaluate_exported(
    model_path: str | Path, data, text_column: str = "text", label_column: str = "label"
) -> dict:
    """Accuracy, macro-F1 and confusion matrix of an export on a labelled file or frame."""
    model = ExportedClassifier(model_path)
    table = read_table(data, text_column, label_column)
    names = model.info.get("labels")
    if not names:
        raise DataError(f"{model_path} has no label list in its assets.extra; re-export it.")
    index = {name: i for i, name in enumerate(names)}
    keys = [label_key(y) for y in table.labels]
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        raise DataError(f"{table.source}: labels {unknown} are not among the model's {names}.")
    predicted = model.predict(table.texts)["label_ids"]
    return classification_report(np.array([index[k] for k in keys]), predicted, len(names))
