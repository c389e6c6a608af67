"""The Keras side of the tasks' objectives: losses, metrics and validation reports, by the names the
task specs (training.tasks) declare.

A task spec names its loss, metrics and report; `compile_args` and `validation_report` look them up
here. A new task that reuses these is one module in training/tasks/; a new loss, metric or report
is one entry below.
"""

from __future__ import annotations

import numpy as np
import tf_keras

from tfhub_transfer.training.metrics import (
    MacroF1,
    MultiLabelF1,
    classification_report,
    multilabel_report,
    regression_report,
)
from tfhub_transfer.training.tasks import task_spec

# Losses on the model's logits (or its score, for regression), by name.
LOSSES = {
    "sparse_categorical_crossentropy": lambda: tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "binary_crossentropy": lambda: tf_keras.losses.BinaryCrossentropy(from_logits=True),
    "mean_squared_error": lambda: tf_keras.losses.MeanSquaredError(),
}
# Metrics by the name they log under; each takes the model's number of outputs.
METRICS = {
    "accuracy": lambda outputs: tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
    "macro_f1": MacroF1,
    "micro_f1": MultiLabelF1,
    "mae": lambda outputs: tf_keras.metrics.MeanAbsoluteError(name="mae"),
    "token_accuracy": lambda outputs: tf_keras.metrics.SparseCategoricalAccuracy(name="token_accuracy"),
    "masked_accuracy": lambda outputs: tf_keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy"),
}


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# Validation reports from the targets and the model's logits (or scores), by name.
REPORTS = {
    "classification": lambda y_true, outputs, num_outputs: classification_report(
        y_true, outputs.argmax(-1), num_outputs),
    "multilabel": lambda y_true, outputs, num_outputs: multilabel_report(y_true, sigmoid(outputs)),
    "regression": lambda y_true, outputs, num_outputs: regression_report(y_true, outputs[:, 0]),
}


def compile_args(task: str, num_outputs: int) -> dict:
    """loss and metrics for `model.compile`, as the task's spec names them (the model outputs logits, or a
    score for regression).

    Args:
        task: a registered task name.
        num_outputs: the model's outputs (classes, labels or tags).

    Returns:
        `{"loss": ..., "metrics": [...]}`, or `weighted_metrics` for tasks whose metrics count weighted
        positions only.
    """
    spec = task_spec(task)
    metrics = [METRICS[name](num_outputs) for name in spec.metrics]
    loss = LOSSES[spec.loss]() if spec.loss else None
    return {"loss": loss, ("weighted_metrics" if spec.weighted_metrics else "metrics"): metrics}


def validation_report(task: str, y_true: np.ndarray, outputs: np.ndarray, num_outputs: int) -> dict:
    """`train`'s validation report: accuracy and macro-F1, micro/macro-F1 and thresholds, or correlations
    ({} when there was no validation data)."""
    if outputs is None or not len(y_true):
        return {}
    return REPORTS[task_spec(task).report](y_true, outputs, num_outputs)
