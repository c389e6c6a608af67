"""Compiling a task model with its transfer mode's per-group learning rates, and its train step.

- `compile()` with no arguments picks the task's loss and metrics and AdamW on a
  warmup + linear-decay schedule whose length `fit` fills in; a user's own optimizer
  or learning rate is the base that per-group multipliers scale.
- The new head (and layer mix) trains with the main optimizer at its own rate:
  `head_learning_rate` while the encoder is frozen (1e-3) and `head_lr_multiplier` x the
  encoder's rate while it trains. Each encoder layer group has its own optimizer
  (training.group_optimizer.LayerGroupOptimizer owns them, and which groups are frozen).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import HEAD_LEARNING_RATE, default_learning_rate, field_default
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.group_optimizer import dense_gradient
from tfhub_transfer.training.objectives import compile_args
from tfhub_transfer.training.optimizers import OPTIMIZERS, copy_factory, optimizer_factory
from tfhub_transfer.training.schedules import SCHEDULES, DeferredSchedule, ScaledSchedule

_COMPILE_RANGES = {  # argument -> (lowest, lowest allowed, highest, what)
    "learning_rate": (0.0, False, None, "a number > 0"), "head_learning_rate": (0.0, False, None, "a number > 0"),
    "head_lr_multiplier": (0.0, False, None, "a number > 0"), "warmup_fraction": (0.0, True, 1.0, "between 0 and 1"),
    "weight_decay": (0.0, True, None, "a number >= 0"), "total_steps": (1, True, None, "a whole number >= 1"),
}


def check_compile_arguments(optimizer, **numbers) -> None:
    """`compile`'s arguments: a known optimizer name (or an optimizer), a known schedule, numbers in range.

    Args:
      optimizer: an optimizer name or instance.
      **numbers: `learning_rate`, `schedule`, `warmup_fraction`, ... as given to `compile` (None: unset).
    Example:
      >>> check_compile_arguments("adamw", learning_rate=3e-5, schedule="linear")
    """
    if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
        raise ConfigError(f"compile(optimizer={optimizer!r}): give one of {OPTIMIZERS} or a tf_keras optimizer")
    if not isinstance(optimizer, (str, tf_keras.optimizers.Optimizer)):
        raise ConfigError(f"compile(optimizer={optimizer!r}): give one of {OPTIMIZERS} or a tf_keras optimizer "
                          f"instance, not {type(optimizer).__name__}")
    schedule = numbers.pop("schedule", "linear")
    if schedule not in (*SCHEDULES, "constant"):
        raise ConfigError(f"compile(schedule={schedule!r}): give one of {[*SCHEDULES, 'constant']}")
    for name, value in numbers.items():
        if value is None:
            continue
        low, inclusive, high, what = _COMPILE_RANGES[name]
        number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        whole = name != "total_steps" or isinstance(value, (int, np.integer))
        if not (number and whole and np.isfinite(value) and (value >= low if inclusive else value > low)
                and (high is None or value <= high)):
            raise ConfigError(f"compile({name}={value!r}): {name} must be {what}")


class GroupCompiling:
    """Mixin of `TaskModel`: `compile` with the task's defaults and per-group optimizers, and the train step
    that differentiates only the variables that train now and applies each group's gradients with its own
    optimizer (see training.group_optimizer)."""

    def default_learning_rate(self) -> float:
        """The peak rate when none is given: the head's in freeze mode, else the encoder's (centred on the
        usual one when the mode spreads rates over the layer groups, see TransferMode.default_rate)."""
        return self.mode.default_rate(default_learning_rate(self.mode.encoder_trainable))

    def compile(self, optimizer="adamw", loss="auto", metrics="auto", *, learning_rate: float | None = None,
                schedule: str = "linear", warmup_fraction: float = 0.1, weight_decay: float = 0.01,
                total_steps: int | None = None, head_learning_rate: float | None = None,
                head_lr_multiplier: float | None = None, **kwargs) -> None:
        """Compiles with the task's loss and metrics and the transfer mode's per-group learning rates.

        Args:
          optimizer: `adamw` (default), `adam`, `sgd`, or an optimizer instance. Per-group
            multipliers (discriminative, slow embeddings) scale its learning rate: each encoder
            group gets a copy of it whose rate is multiplier x yours, stepping on your optimizer's
            clock; your optimizer itself trains the head (the head rates below are for named ones).
          loss, metrics: `auto` picks the task's (cross-entropy on logits, accuracy + macro-F1;
            binary cross-entropy + micro-F1; MSE + MAE; token accuracy).
          learning_rate: the peak rate of a named optimizer: the encoder's (default 5e-5), or in
            `freeze` mode, where only a head trains, the head's (default 1e-3).
          head_learning_rate: a new head's peak rate whenever the encoder is frozen (the head-only
            epochs of gradual / discriminative / `frozen_epochs`, and freeze mode); default 1e-3.
          head_lr_multiplier: while the encoder trains, the head's rate is this x `learning_rate`
            (default 1: BERT's recipe; 10-100 is common for heads that start from scratch).
          schedule: `linear` (warmup then linear decay), `slanted_triangular`, `one_cycle`,
            `constant`; its length is set by `fit` unless `total_steps` is given.
          warmup_fraction, weight_decay: for the schedule and AdamW.
          **kwargs: passed to `tf_keras.Model.compile` (steps_per_execution, jit_compile, ...).

        A value out of range is one ConfigError naming the argument.
        """
        check_compile_arguments(optimizer, learning_rate=learning_rate, schedule=schedule,
                                warmup_fraction=warmup_fraction, weight_decay=weight_decay, total_steps=total_steps,
                                head_learning_rate=head_learning_rate, head_lr_multiplier=head_lr_multiplier)
        self._compile_options = dict(optimizer=optimizer, loss=loss, metrics=metrics,
                                     learning_rate=learning_rate, schedule=schedule,
                                     warmup_fraction=warmup_fraction, weight_decay=weight_decay,
                                     total_steps=total_steps, head_learning_rate=head_learning_rate,
                                     head_lr_multiplier=head_lr_multiplier, **kwargs)
        self._stale_compile = False
        if isinstance(optimizer, str):
            rate = learning_rate or self.default_learning_rate()
            self._schedule = base = DeferredSchedule(schedule, rate, warmup_fraction, total_steps)
            make = optimizer_factory(optimizer, weight_decay)
            groups = self.group_optimizer
            groups.head_rates = self._head_factors(rate, head_learning_rate, head_lr_multiplier)
            groups.head_schedule = ScaledSchedule(self._schedule, 1.0)
            groups.update_head_rate(self.encoder_frozen())
            main = make(groups.head_schedule)
        else:
            if head_learning_rate is not None or head_lr_multiplier is not None:
                raise ConfigError("head_learning_rate / head_lr_multiplier apply to a named optimizer ('adamw', "
                                  "'adam', 'sgd'); with your own optimizer instance the head trains with it")
            self._schedule = self.group_optimizer.head_rates = self.group_optimizer.head_schedule = None
            main, make = optimizer, copy_factory(optimizer)
            base = main._learning_rate if hasattr(main, "_learning_rate") else main.learning_rate
            if isinstance(base, tf.Variable):
                base = float(base.numpy())
        with self.distribute_strategy.scope():  # metrics must be created in the model's strategy scope
            defaults = compile_args(self.task, self.num_outputs)
            kwargs["loss"] = defaults["loss"] if loss == "auto" else loss
            if metrics == "auto":
                kwargs.update({k: v for k, v in defaults.items() if k != "loss"})
            else:
                kwargs["metrics"] = metrics
            super().compile(optimizer=main, **kwargs)
            self._compile_group_optimizers(make, main, base)

    def _head_factors(self, rate: float, head_learning_rate: float | None,
                      head_lr_multiplier: float | None) -> tuple[float, float] | None:
        """The head's rate over `rate` while the encoder is frozen, and while it trains (None: no new head)."""
        if not self.new_head:
            if head_learning_rate is not None or head_lr_multiplier is not None:
                raise ConfigError(f"{type(self).__name__} has no new head on a pretrained encoder; "
                                  "head_learning_rate / head_lr_multiplier (--head-lr, --head-lr-multiplier) do "
                                  "not apply: set its rate with learning_rate (--lr)")
            return None
        if head_learning_rate is not None:
            frozen = head_learning_rate
        else:  # freeze mode: the given rate is the head's, as it is the only thing that trains
            frozen = rate if not self.mode.encoder_trainable else HEAD_LEARNING_RATE
        multiplier = field_default("head_lr_multiplier") if head_lr_multiplier is None else head_lr_multiplier
        return frozen / rate, float(multiplier)


    def _compile_group_optimizers(self, make, main, base) -> None:
        """One optimizer per encoder layer group that can train, at its multiplier x `base`, on `main`'s clock."""
        # Tracked as a model attribute, so backups (BackupAndRestore) hold every group optimizer's state.
        self._group_optimizers = self.group_optimizer.compile_groups(make, main, base, self.trainable_variables)

    @property
    def compile_options(self) -> dict | None:
        """The arguments of the last `compile` (None before the first)."""
        return dict(self._compile_options) if self._compile_options is not None else None

    @property
    def needs_recompile(self) -> bool:
        """Whether the encoder was thawed after `compile` (the next `fit` compiles again)."""
        return self._stale_compile

    def optimizer_variables(self) -> list[tf.Variable]:
        """The state of every compiled optimizer (the main one's, then each group's), in a fixed order."""
        return self.group_optimizer.variables(self.optimizer)

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, data):
        x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        variables = self.step_variables()
        with tf.GradientTape() as tape:
            y_pred = self.training_outputs(x)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        gradients = tape.gradient(loss, variables)
        if self.distribute_strategy.num_replicas_in_sync > 1:
            gradients = [dense_gradient(g) for g in gradients]
        # Variables the output does not depend on (e.g. the pooler under mean pooling) get None.
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        self.group_optimizer.apply_gradients(pairs, self.optimizer)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def training_outputs(self, x) -> tf.Tensor:
        """The outputs a training step scores: the model's, in training mode."""
        return self(x, training=True)

