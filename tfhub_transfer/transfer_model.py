"""`TransferModel`: a functional tf_keras model whose train step honours the transfer mode.

Frozen layer groups are left out of the variables the step differentiates, so they
take no update and cost no weight-gradient work. Each distinct learning-rate
multiplier gets its own optimizer (exact per-group LRs for Adam/AdamW, where
scaling gradients would not be the same thing); all of them read the main
optimizer's step counter, so schedules stay in step. Changing the frozen set
during `fit` (gradual unfreezing) rebuilds the train function; no recompile.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tf_keras

from tfhub_transfer.layer_groups import LayerGroups
from tfhub_transfer.schedules import ScaledSchedule


def _dense(gradient):
    """Embedding lookups give sparse gradients whose row count is batch x length. Replicas padded
    to different lengths cannot all-gather those, so they are summed as dense tensors instead."""
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


class TransferModel(tf_keras.Model):
    """A functional model that also remembers its encoder, preprocessor and transfer mode."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Set by the builders. `preprocessor` is None for models that take raw strings.
        self.spec = None
        self.preprocessor = None
        self.config = None
        self.mode = None
        self.layer_groups: LayerGroups | None = None
        self.frozen_groups: tuple[str, ...] = ()
        self.lr_multipliers: dict[str, float] = {}
        self._group_optimizers: list[tuple[float, tf_keras.optimizers.Optimizer]] = []

    # -- which variables train -------------------------------------------------------------
    def _group_of_variable(self) -> dict[int, str]:
        if self.layer_groups is None:
            return {}
        return {id(v): name for name, vs in self.layer_groups.variables.items() for v in vs}

    def step_variables(self) -> list[tf.Variable]:
        """Trainable variables minus those of frozen groups."""
        frozen = {
            id(v) for name in self.frozen_groups for v in self.layer_groups.variables.get(name, [])
        } if self.layer_groups else set()
        return [v for v in self.trainable_variables if id(v) not in frozen]

    def set_frozen_groups(self, groups) -> None:
        """Freezes exactly `groups`; takes effect at the next step, also in the middle of `fit`."""
        groups = tuple(groups)
        if self.layer_groups is not None:
            unknown = set(groups) - set(self.layer_groups.order)
            if unknown:
                raise ValueError(f"unknown layer groups {sorted(unknown)}; known: {self.layer_groups.order}")
        if groups != self.frozen_groups:
            self.frozen_groups = groups
            if getattr(self, "train_function", None) is not None:
                self.train_function = self.make_train_function(force=True)

    # -- optimizers ----------------------------------------------------------------------------
    def compile_transfer(
        self,
        make_optimizer: Callable[[object], tf_keras.optimizers.Optimizer],
        learning_rate,
        **compile_kwargs,
    ) -> None:
        """Compiles with one optimizer per distinct LR multiplier.

        `make_optimizer(learning_rate)` must return a fresh optimizer; `learning_rate`
        is a float or schedule for multiplier 1, scaled for the other groups.
        """
        main = make_optimizer(learning_rate)
        self.compile(optimizer=main, **compile_kwargs)
        factors = sorted({f for f in self.lr_multipliers.values() if f != 1.0})
        self._group_optimizers = []
        for factor in factors:
            scaled = ScaledSchedule(learning_rate, factor, clock=main.iterations)
            self._group_optimizers.append((factor, make_optimizer(scaled)))
        self._build_optimizers()

    def _optimizer_for(self, variable) -> tf_keras.optimizers.Optimizer:
        group = self._group_of_variable().get(id(variable))
        factor = self.lr_multipliers.get(group, 1.0)
        for value, optimizer in self._group_optimizers:
            if value == factor:
                return optimizer
        return self.optimizer

    def _build_optimizers(self) -> None:
        """Creates every slot now, so groups unfrozen later need no new variables in a graph."""
        buckets = self._bucket(self.trainable_variables)
        for optimizer, variables in buckets:
            optimizer.build(variables)

    def _bucket(self, variables):
        buckets: dict[int, tuple] = {}
        for variable in variables:
            optimizer = self._optimizer_for(variable)
            buckets.setdefault(id(optimizer), (optimizer, []))[1].append(variable)
        # The main optimizer steps last so every group reads the same clock value.
        return sorted(buckets.values(), key=lambda item: item[0] is self.optimizer)

    # -- the step -------------------------------------------------------------------------------
    def train_step(self, data):
        x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        variables = self.step_variables()
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        gradients = tape.gradient(loss, variables)
        if self.distribute_strategy.num_replicas_in_sync > 1:
            gradients = [_dense(g) for g in gradients]
        # Variables the output does not depend on (e.g. the pooler under mean pooling) get None.
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if self._group_optimizers:
            by_var = {id(v): g for g, v in pairs}
            for optimizer, group_vars in self._bucket([v for _, v in pairs]):
                optimizer.apply_gradients([(by_var[id(v)], v) for v in group_vars])
        else:
            self.optimizer.apply_gradients(pairs)
        return self.compute_metrics(x, y, y_pred, sample_weight)
