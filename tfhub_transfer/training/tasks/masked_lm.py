"""`masked_lm`: continued masked-LM pretraining (`tfhub-transfer pretrain`), not a `train --task`."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task


@register_task
class MaskedLM(TaskSpec):
    """The model computes its loss over the masked positions; masked accuracy counts only those."""

    name = "masked_lm"
    help = "predict masked word pieces (continued pretraining)"
    trainable = False
    loss = None
    metrics = ("masked_accuracy",)
    weighted_metrics = True
    activation = "softmax"
    target = "piece"
    monitor, monitor_mode, headline = "val_loss", "min", "masked_accuracy"
    no_class_weights = "masked-LM pretraining has no labels"
    per_token = True
    export_outputs = ()  # it writes an encoder (a SavedModel for `train --encoder`), not a serving signature
