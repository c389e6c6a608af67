"""`similarity`: the cosine of two texts' embeddings against the pair's target (`--mode contrastive`'s pair
fit, SetFit's body stage); not a `train --task`."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task


@register_task
class Similarity(TaskSpec):
    """Mean squared error between the cosine and the target; the validation loss picks the best epoch."""

    name = "similarity"
    help = "the cosine of two texts' embeddings (the contrastive mode's pair fit)"
    trainable = False
    loss = "mean_squared_error"
    target = "number"
    monitor, monitor_mode, headline = "val_loss", "min", "loss"
    export_outputs = ()  # the pair encoder is not exported: its encoder is the classifier's
