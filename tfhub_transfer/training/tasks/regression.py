"""`regression`: one number per text (a score), mean squared error."""

from __future__ import annotations

from tfhub_transfer.training.tasks.base import TaskSpec, register_task


@register_task
class Regression(TaskSpec):
    """Mean squared error on one output; the validation loss picks the best epoch, Pearson r headlines."""

    name = "regression"
    help = "a number per text (a score)"
    loss = "mean_squared_error"
    metrics = ("mae",)
    target = "number"
    report = "regression"
    monitor, monitor_mode, headline = "val_loss", "min", "pearson"
    no_class_weights = "regression targets are numbers, not classes; use --weight-column for per-example weights"
    refuses = {"label_names": "a regression target is a number, not a class id to name"}
    export_outputs = ("score",)
