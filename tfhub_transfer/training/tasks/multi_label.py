"""`multi_label`: any number of classes per text, one sigmoid each."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task


@register_task
class MultiLabel(TaskSpec):
    """Binary cross-entropy per class on the logits; micro-F1 picks the best epoch."""

    name = "multi_label"
    help = "any number of classes per text, names joined by --label-separator"
    loss = "binary_crossentropy"
    metrics = ("micro_f1",)
    activation = "sigmoid"
    target = "classes"
    report = "multilabel"
    monitor, monitor_mode, headline = "val_micro_f1", "max", "micro_f1"
    named_classes = True
    no_class_weights = "a row holds several labels at once; use --weight-column for per-example weights"
    export_outputs = ("probabilities", "predicted", "labels")
