"""The learning-rate range test (Smith, 2017; fastai's `lr_find`): which peak rate to train at.

The model trains for up to `num_steps` batches while the rate grows exponentially from
`start_lr` to `end_lr`; the loss is recorded per step and smoothed (a debiased moving
average). The test stops when the smoothed loss passes `stop_factor` times its best, and
the weights, frozen groups and optimizer state are put back afterwards, so the model is
exactly as it was. Two suggestions are read off the smoothed curve:

- `steepest`: the rate where the loss falls fastest per factor of learning rate (before its minimum);
- `valley` (fastai's default): halfway along the longest stretch over which the loss keeps
  falling, a little below its minimum, which is robust to noisy curves.

Frozen groups stay frozen and per-group multipliers apply during the sweep, so the
suggestion is for the base rate (`compile(learning_rate=...)`, CLI `--lr`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import field_default
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.optimizers import copy_factory, optimizer_factory
from tfhub_transfer.training.plots import lr_finder_png

SMOOTHING = 0.98  # fastai's beta
MIN_STEPS = 6


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class ExponentialSweep(tf_keras.optimizers.schedules.LearningRateSchedule):
    """`start` x (end / start) ^ (step / (steps - 1)): from `start` at step 0 to `end` at the last step."""

    def __init__(self, start: float, end: float, steps: int):
        self.start = float(start)
        self.end = float(end)
        self.steps = max(int(steps), 2)

    def __call__(self, step):
        fraction = tf.cast(step, tf.float32) / float(self.steps - 1)
        return self.start * tf.pow(self.end / self.start, fraction)

    def value(self, step: int) -> float:
        return self.start * (self.end / self.start) ** (step / (self.steps - 1))

    def get_config(self) -> dict:
        return {"start": self.start, "end": self.end, "steps": self.steps}


def smooth(losses, beta: float = SMOOTHING) -> np.ndarray:
    """Debiased exponential moving average (fastai's `AvgSmoothLoss`)."""
    values, average = [], 0.0
    for step, loss in enumerate(np.asarray(losses, np.float64), start=1):
        average = beta * average + (1 - beta) * loss
        values.append(average / (1 - beta ** step))
    return np.asarray(values)


def steepest(lrs, losses) -> int:
    """Index of the steepest descent: the most negative d loss / d log(lr) (the rate at its start)."""
    lrs, losses = np.asarray(lrs, np.float64), np.asarray(losses, np.float64)
    if len(lrs) < 2:
        return 0
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    return int(np.argmin(slopes))


def valley(losses) -> int:
    """fastai's valley: halfway along the longest strictly falling run (subsequence) of the loss."""
    losses = np.asarray(losses, np.float64)
    if len(losses) == 0:
        return 0
    run = np.ones(len(losses), int)  # run[i]: longest falling subsequence ending at i
    for i in range(1, len(losses)):
        higher = losses[:i] > losses[i]
        if higher.any():
            run[i] = run[:i][higher].max() + 1
    end = int(np.argmax(run))  # the first index that ends a longest run
    start = end - int(run[end])
    third = (end - start) / 3
    return max(0, min(len(losses) - 1, start + int(third) + int(third / 2)))


def suggestion_window(count: int) -> slice:
    """The part of the curve suggestions read (fastai): skip the first tenth and the last five steps."""
    first, last = count // 10, count - 5
    if last - first < 3:  # a short run: use what there is
        return slice(0, count)
    return slice(first, last)


@dataclasses.dataclass
class LRFinderResult:
    """What the range test measured and suggests; `suggestion` is the valley rate."""

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    steepest: float
    valley: float
    stopped_early: bool

    @property
    def suggestion(self) -> float:
        return self.valley

    def points(self) -> dict[str, tuple[float, float]]:
        """(rate, smoothed loss) of each suggestion, for the plot."""
        lrs, smoothed = np.asarray(self.learning_rates), np.asarray(self.smoothed)
        return {name: (rate, float(smoothed[int(np.argmin(np.abs(np.log(lrs) - math.log(rate))))]))
                for name, rate in (("valley", self.valley), ("steepest", self.steepest))}

    def plot_png(self) -> bytes:
        return lr_finder_png(self.learning_rates, self.losses, self.smoothed, self.points())

    def summary(self) -> str:
        stop = f", stopped at {self.learning_rates[-1]:.2e} as the loss diverged" if self.stopped_early else ""
        return (f"suggested learning rate {self.valley:.2e} (valley); steepest descent at {self.steepest:.2e}; "
                f"{len(self.losses)} steps from {self.learning_rates[0]:.2e}{stop}")


def suggest(learning_rates, losses, stopped_early: bool = False) -> LRFinderResult:
    """Smooths the recorded losses and reads the steepest-descent and valley rates off them."""
    smoothed = smooth(losses)
    window = suggestion_window(len(losses))
    lrs, curve = np.asarray(learning_rates)[window], smoothed[window]
    descent = slice(0, int(np.argmin(curve)) + 1)  # a descent ends at the minimum; past it the loss diverges
    return LRFinderResult([float(v) for v in learning_rates], [float(v) for v in losses],
                          [float(v) for v in smoothed], float(lrs[steepest(lrs[descent], curve[descent])]),
                          float(lrs[valley(curve)]), stopped_early)


def sweep_optimizer(compile_options: dict | None, schedule) -> tf_keras.optimizers.Optimizer:
    """An optimizer of the kind the model is compiled with (AdamW when it is not), on the sweep's rate."""
    options = compile_options or {}
    chosen = options.get("optimizer", field_default("optimizer"))
    if isinstance(chosen, str):
        return optimizer_factory(chosen, options.get("weight_decay", field_default("weight_decay")))(schedule)
    return copy_factory(chosen)(schedule)


@contextlib.contextmanager
def state_restored(model):
    """Puts back the weights, frozen groups and compiled optimizer state of `model` when the block ends.

    A model that was not compiled ends compiled with the defaults (what `fit` would have done).
    """
    weights = model.weight_values()
    frozen = model.frozen_groups
    options = model.compile_options
    stale = model.needs_recompile
    slots = [v.numpy() for v in model.optimizer_variables()] if options is not None else []
    try:
        yield
    finally:
        model.set_weight_values(weights)
        model.set_frozen_groups(frozen)
        model.compile(**(options or {}))
        now = model.optimizer_variables()
        if not stale and len(now) == len(slots) and all(v.shape == s.shape for v, s in zip(now, slots)):
            for variable, value in zip(now, slots):
                variable.assign(value)


def range_test(model, batches: tf.data.Dataset, start_lr: float = 1e-7, end_lr: float = 10.0,
               num_steps: int = 100, stop_factor: float = 4.0, verbose: int = 1) -> LRFinderResult:
    """Trains `model` (a TaskModel) on up to `num_steps` of `batches` at an exponentially rising rate,
    records each step's loss and puts the model back as it was; returns the curve and suggestions."""
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"the learning-rate sweep needs 0 < start ({start_lr}) < end ({end_lr})")
    if num_steps < MIN_STEPS:
        raise ConfigError(f"the learning-rate sweep needs at least {MIN_STEPS} steps, not {num_steps}")
    if stop_factor <= 1:
        raise ConfigError(f"stop_factor must be > 1 (the loss may rise to that many times its best), "
                          f"not {stop_factor}")
    schedule = ExponentialSweep(start_lr, end_lr, num_steps)
    rates, losses, stopped = [], [], False
    progress = tf_keras.utils.Progbar(num_steps, verbose=verbose, unit_name="step")
    with state_restored(model):
        task_loss = (model.compile_options or {}).get("loss", "auto")
        model.compile(sweep_optimizer(model.compile_options, schedule), loss=task_loss, metrics=[])
        average, best = 0.0, math.inf
        for step, batch in enumerate(batches.take(num_steps)):
            x, y, weights = tf_keras.utils.unpack_x_y_sample_weight(batch)
            logs = model.train_on_batch(x, y, sample_weight=weights, return_dict=True)
            loss = float(logs["loss"])
            progress.update(step + 1, [("loss", loss), ("lr", schedule.value(step))])
            if not math.isfinite(loss):
                stopped = True  # a non-finite loss is left out of the curve
                break
            rates.append(schedule.value(step))
            losses.append(loss)
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            current = average / (1 - SMOOTHING ** len(losses))
            best = min(best, current)
            if current > stop_factor * best:
                stopped = True
                break
    if len(losses) < 2:
        raise ConfigError(f"the learning-rate sweep recorded {len(losses)} finite loss(es): give it more "
                          "training data, a smaller batch size or a lower start rate")
    return suggest(rates, losses, stopped)
