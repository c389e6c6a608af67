"""`LayerGroupOptimizer`: per-layer-group optimizers, learning rates and freezing over one model's variables.

As fastai's `Optimizer` owns `freeze_to` over its parameter groups, this object owns what trains and at
which rate; the task model (models.base.TaskModel) keeps thin `freeze` / `unfreeze` / `freeze_to` /
`set_frozen_groups` / `group_learning_rates` methods that delegate here, and its `train_step` hands the
gradients to `apply_gradients`.

- Frozen layer groups are left out of the variables the train step differentiates,
  so they take no update and cost no weight-gradient work.
- Each encoder layer group gets its own optimizer (exact per-group rates for Adam/AdamW,
  where scaling gradients would not be the same thing; and a group that starts training
  late starts its own Adam moments and bias correction); all of them read the main
  optimizer's step counter, so schedules stay in step. The main optimizer trains the rest:
  the new head (and layer mix) at its own rate (`head_rates`, `head_schedule`).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.schedules import ScaledSchedule
from tfhub_transfer.transfer.layer_groups import LayerGroups


def dense_gradient(gradient):
    """Embedding lookups give sparse gradients whose row count is batch x length. Replicas padded
    to different lengths cannot all-gather those, so they are summed as dense tensors instead."""
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def rate_at(optimizer, step: int) -> float:
    """An optimizer's learning rate at optimizer step `step` (its schedule's clock aside)."""
    rate = optimizer._learning_rate if hasattr(optimizer, "_learning_rate") else optimizer.learning_rate
    if isinstance(rate, ScaledSchedule):
        return float(rate.at(step))
    if callable(rate) and not isinstance(rate, tf.Variable):
        return float(rate(step))
    return float(rate.numpy() if isinstance(rate, tf.Variable) else rate)


class LayerGroupOptimizer:
    """Which layer groups train, at which rate, with which optimizer; the model's main optimizer trains the rest.

    Attributes:
      layer_groups: the encoder's groups (transfer.layer_groups), None when its names do not group.
      frozen_groups: the groups the next step leaves out.
      lr_multipliers: each group's rate over the base rate (discriminative, slow embeddings).
      unused_groups: groups no gradient reaches (e.g. the pooler under mean pooling).
      fixed_variables: encoder variables the mode never trains (bitfit: all but the biases).
      group_optimizers: (group, optimizer) pairs, one per group that can train, set by `compile_groups`.
      head_rates: the head's factor over the base rate (encoder frozen, encoder training); None: no new head.
      head_schedule: the main optimizer's schedule, whose factor follows `head_rates`.

    Example:
      >>> groups = LayerGroupOptimizer()
      >>> groups.layer_groups = LayerGroups(["embeddings"], {"embeddings": []})
      >>> groups.freeze_to(1)
      ('embeddings',)
    """

    def __init__(self) -> None:
        self.layer_groups: LayerGroups | None = None
        self.frozen_groups: tuple[str, ...] = ()
        self.lr_multipliers: dict[str, float] = {}
        self.unused_groups: tuple[str, ...] = ()
        self.fixed_variables: tuple = ()
        self.group_optimizers: list[tuple[str, tf_keras.optimizers.Optimizer]] = []
        self.head_rates: tuple[float, float] | None = None
        self.head_schedule: ScaledSchedule | None = None

    # -- freezing (fastai's verbs; the model adds thawing its encoder and retracing its step) ----------
    def order(self, owner: str = "the model") -> list[str]:
        """The groups, embeddings first; a ConfigError naming `owner` when it has none."""
        if self.layer_groups is None:
            raise ConfigError(f"{owner} has no layer groups; freeze/unfreeze need an encoder whose "
                              "variables follow the Model Garden names (this package's encoders do)")
        return list(self.layer_groups.order)

    def freeze_to(self, k: int, owner: str = "the model") -> tuple[str, ...]:
        """The groups `freeze_to(k)` freezes: the bottom `k` (a negative k counts from the top)."""
        return tuple(self.order(owner)[:k])

    def checked_groups(self, groups, owner: str = "the model") -> tuple[str, ...]:
        """`groups` as a tuple, refused when the model has no groups or one is unknown."""
        groups = tuple(groups)
        if groups and self.layer_groups is None:
            raise ConfigError(f"{owner} has no layer groups to freeze (its encoder's variable names "
                              "do not follow the Model Garden pattern); use mode freeze or finetune")
        if self.layer_groups is not None:
            unknown = set(groups) - set(self.layer_groups.order)
            if unknown:
                raise ValueError(f"unknown layer groups {sorted(unknown)}; known: {self.layer_groups.order}")
        return groups

    def all_frozen(self) -> bool:
        """Whether every layer group is frozen (there is at least one)."""
        return bool(self.layer_groups) and set(self.frozen_groups) >= set(self.layer_groups.order)

    # -- which variables train ----------------------------------------------------------------------
    def step_variables(self, trainable: Sequence[tf.Variable]) -> list[tf.Variable]:
        """`trainable` minus the variables of frozen groups and those the mode never trains."""
        frozen = {id(v) for name in self.frozen_groups
                  for v in self.layer_groups.variables.get(name, [])} if self.layer_groups else set()
        frozen.update(id(v) for v in self.fixed_variables)
        return [v for v in trainable if id(v) not in frozen]

    def training_groups(self, trainable: Sequence[tf.Variable]) -> list[str]:
        """The layer groups the next step updates (gradual unfreezing adds one at a time)."""
        if self.layer_groups is None:
            return []
        training = {id(v) for v in self.step_variables(trainable)}
        return [name for name in self.layer_groups.order
                if any(id(v) in training for v in self.layer_groups.variables.get(name, []))]

    def learning_rates(self, main, trainable: Sequence[tf.Variable], step: int) -> dict[str, float]:
        """Each group's rate at optimizer step `step` (0 while frozen), and `head`'s (the main optimizer's)."""
        training, optimizers = set(self.training_groups(trainable)), dict(self.group_optimizers)
        rates = {name: rate_at(optimizers.get(name, main), step) if name in training else 0.0
                 for name in (self.layer_groups.order if self.layer_groups is not None else [])}
        return {**rates, "head": rate_at(main, step)}

    # -- the head's rate ----------------------------------------------------------------------------
    def update_head_rate(self, encoder_frozen: bool) -> bool:
        """Sets the head's factor for the current phase; True when it changed (the step must retrace)."""
        if self.head_schedule is None or self.head_rates is None:
            return False
        factor = self.head_rates[0] if encoder_frozen else self.head_rates[1]
        if factor == self.head_schedule.factor:
            return False
        self.head_schedule.factor = factor
        return True

    # -- optimizers ---------------------------------------------------------------------------------
    def compile_groups(self, make, main, base, trainable: Sequence[tf.Variable]) -> list:
        """One optimizer per layer group that can train, at its multiplier x `base`, on `main`'s clock.

        Returns the (group, optimizer) pairs (the model tracks them, so backups hold their state).
        """
        trainable_ids = {id(v) for v in trainable}
        groups = [name for name, variables in (self.layer_groups.variables.items() if self.layer_groups else [])
                  if any(id(v) in trainable_ids for v in variables)]
        self.group_optimizers = [
            (name, make(ScaledSchedule(base, self.lr_multipliers.get(name, 1.0), clock=main.iterations)))
            for name in groups]
        for optimizer, variables in self.bucket(trainable, main):
            optimizer.build(variables)  # every slot now: groups unfrozen later need no new variables
        return self.group_optimizers

    def bucket(self, variables, main):
        """(optimizer, variables) pairs: each layer group's variables with its optimizer, the rest with `main`."""
        by_group = dict(self.group_optimizers)
        optimizer_of = {id(v): by_group[name] for name, vs in (self.layer_groups.variables.items()
                                                               if self.layer_groups else []) if name in by_group
                        for v in vs}
        buckets: dict[int, tuple] = {}
        for variable in variables:
            optimizer = optimizer_of.get(id(variable), main)
            buckets.setdefault(id(optimizer), (optimizer, []))[1].append(variable)
        # The main optimizer steps last so every group reads the same clock value.
        return sorted(buckets.values(), key=lambda item: item[0] is main)

    def apply_gradients(self, pairs: list, main) -> None:
        """Applies (gradient, variable) pairs, each with its group's optimizer; `main`'s clock ticks once."""
        if not self.group_optimizers:
            main.apply_gradients(pairs)
            return
        by_var = {id(v): g for g, v in pairs}
        buckets = self.bucket([v for _, v in pairs], main)
        for optimizer, group_vars in buckets:
            optimizer.apply_gradients([(by_var[id(v)], v) for v in group_vars])
        if not any(optimizer is main for optimizer, _ in buckets):
            main.iterations.assign_add(1)  # the clock every group's schedule reads

    def variables(self, main) -> list[tf.Variable]:
        """The state of every compiled optimizer (the main one's, then each group's), in a fixed order."""
        optimizers = [main, *(o for _, o in self.group_optimizers)] if main is not None else []
        return [v for o in optimizers for v in (o.variables() if callable(o.variables) else o.variables)]
