"""Per-task losses, metrics, best-epoch monitors and validation reports for sentence-level heads."""

from __future__ import annotations

import dataclasses

import numpy as np
import tf_keras

from tfhub_transfer.training.metrics import (
    MacroF1,
    MultiLabelF1,
    classification_report,
    multilabel_report,
    regression_report,
)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    monitor: str
    monitor_mode: str
    headline: str  # the report's main score


TASK_SPECS = {
    "single_label": TaskSpec("single_label", "val_accuracy", "max", "accuracy"),
    "multi_label": TaskSpec("multi_label", "val_micro_f1", "max", "micro_f1"),
    "regression": TaskSpec("regression", "val_loss", "min", "pearson"),
    "tokens": TaskSpec("tokens", "val_token_accuracy", "max", "f1"),
    "masked_lm": TaskSpec("masked_lm", "val_loss", "min", "masked_accuracy"),
}


def compile_args(task: str, num_outputs: int) -> dict:
    """loss and metrics for `model.compile` (the model outputs logits, or a score for regression)."""
    if task == "multi_label":
        return {"loss": tf_keras.losses.BinaryCrossentropy(from_logits=True),
                "metrics": [MultiLabelF1(num_outputs)]}
    if task == "masked_lm":  # the model computes its loss over the masked positions itself
        return {"loss": None,
                "weighted_metrics": [tf_keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")]}
    if task == "tokens":
        return {"loss": tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "weighted_metrics": [tf_keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")]}
    if task == "regression":
        return {"loss": tf_keras.losses.MeanSquaredError(),
                "metrics": [tf_keras.metrics.MeanAbsoluteError(name="mae")]}
    return {"loss": tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy"), MacroF1(num_outputs)]}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def validation_report(task: str, y_true: np.ndarray, outputs: np.ndarray, num_outputs: int) -> dict:
    """`train`'s validation report: accuracy and macro-F1, micro/macro-F1 and thresholds, or correlations
    ({} when there was no validation data)."""
    if outputs is None or not len(y_true):
        return {}
    if task == "multi_label":
        return multilabel_report(y_true, sigmoid(outputs))
    if task == "regression":
        return regression_report(y_true, outputs[:, 0])
    return classification_report(y_true, outputs.argmax(-1), num_outputs)
