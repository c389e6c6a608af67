"""`single_label`: one class per text (sentiment, topic), softmax over the classes."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task


@register_task
class SingleLabel(TaskSpec):
    """Sparse categorical cross-entropy on the logits; accuracy picks the best epoch."""

    name = "single_label"
    help = "one class per text"
    loss = "sparse_categorical_crossentropy"
    metrics = ("accuracy", "macro_f1")
    activation = "softmax"
    report = "classification"
    monitor, monitor_mode, headline = "val_accuracy", "max", "accuracy"
    named_classes = True
    export_outputs = ("probabilities", "label_ids", "labels")
