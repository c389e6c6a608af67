"""`TaskModel`: the Keras model every task builds on; its `compile` and `fit` honour the transfer mode.

- Frozen layer groups are left out of the variables the train step differentiates,
  so they take no update and cost no weight-gradient work.
- Each encoder layer group gets its own optimizer (exact per-group rates for Adam/AdamW,
  where scaling gradients would not be the same thing; and a group that starts training
  late starts its own Adam moments and bias correction); all of them read the main
  optimizer's step counter, so schedules stay in step. The main optimizer trains the rest:
  the new head (and layer mix) at its own rate, `head_learning_rate` while the encoder is
  frozen (1e-3) and `head_lr_multiplier` x the encoder's rate while it trains.
- `compile()` with no arguments picks the task's loss and metrics and AdamW on a
  warmup + linear-decay schedule whose length `fit` fills in; a user's own optimizer
  or learning rate is the base that per-group multipliers scale.
- `fit()` takes model inputs, or raw strings (and label names) that the input pipeline
  tokenises; it adds the mode's phases itself (the head alone first, gradual unfreezing).
- `freeze()`, `unfreeze()`, `freeze_to(k)` work on the encoder's layer groups (fastai verbs).
- `save(dir)` writes the config, label names and weights; `tfhub_transfer.load(dir)` rebuilds.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import HEAD_LEARNING_RATE, default_learning_rate, field_default
from tfhub_transfer.errors import ConfigError, TransferError
from tfhub_transfer.export.formats import export_model
from tfhub_transfer.export.serving import check_format
from tfhub_transfer.files import atomic_directory, replace_file
from tfhub_transfer.models.inputs import TEXT_FORMS, Given, as_values, check_scores, class_ids, normalise
from tfhub_transfer.preprocessing.text import make_string_dataset, make_training_dataset
from tfhub_transfer.training.callbacks import EarlyStopping, fit_progress, summary_verbosity
from tfhub_transfer.training.loop import inputs_only, predict_outputs
from tfhub_transfer.training.lr_finder import LRFinderResult, range_test
from tfhub_transfer.training.objectives import TASK_SPECS, compile_args
from tfhub_transfer.training.optimizers import OPTIMIZERS, copy_factory, optimizer_factory
from tfhub_transfer.training.schedules import SCHEDULES, DeferredSchedule, ScaledSchedule
from tfhub_transfer.training.weighting import (
    BALANCED,
    check_task,
    class_weights,
    parse_class_weight,
    with_class_weights,
)
from tfhub_transfer.transfer.layer_groups import LayerGroups
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.unfreezing import TransferPhases, phase_callback

CLASS_TASKS = ("single_label", "multi_label")  # tasks whose outputs are named classes
MODEL_FILE = "tfhub_transfer_model.json"
WEIGHTS_FILE = "weights.npz"
DEFAULT_BATCH_SIZE = 32
_REGISTRY: dict[str, type] = {}


def register(cls):
    """Registers a task model class for `load` and Keras serialization."""
    _REGISTRY[cls.__name__] = cls
    return tf_keras.utils.register_keras_serializable(package="tfhub_transfer")(cls)


def registered(name: str) -> type:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task model class {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def _dense(gradient):
    """Embedding lookups give sparse gradients whose row count is batch x length. Replicas padded
    to different lengths cannot all-gather those, so they are summed as dense tensors instead."""
    return tf.convert_to_tensor(gradient) if isinstance(gradient, tf.IndexedSlices) else gradient


def _rate_at(optimizer, step: int) -> float:
    """An optimizer's learning rate at optimizer step `step` (its schedule's clock aside)."""
    rate = optimizer._learning_rate if hasattr(optimizer, "_learning_rate") else optimizer.learning_rate
    if isinstance(rate, ScaledSchedule):
        return float(rate.at(step))
    if callable(rate) and not isinstance(rate, tf.Variable):
        return float(rate(step))
    return float(rate.numpy() if isinstance(rate, tf.Variable) else rate)


def _is_text(values) -> bool:
    if isinstance(values, (str, bytes)):
        return False
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "USO"
    try:
        first = next(iter(values))
    except (TypeError, StopIteration):
        return False
    return isinstance(first, str)


class TaskModel(tf_keras.Model):
    """A Keras model on a pretrained backbone that knows its task, preprocessor and transfer mode.

    Subclasses build their functional graph, call `super().__init__(inputs=, outputs=)` and
    then `self._setup(...)`. They implement `get_config`, and `encode_examples` when they
    take something other than (strings, labels).
    """

    task = "single_label"
    new_head = False  # a freshly initialised head on a pretrained encoder: it gets the head's learning rates
    takes_texts = False  # fit / evaluate / predict read texts in every form models.inputs accepts

    def _setup(self, config, mode: TransferMode, spec=None, preprocessor=None,
               label_names: Sequence[str] | None = None) -> None:
        self.config = config
        self.mode = mode
        self.spec = spec
        self.preprocessor = preprocessor  # None for models whose first layer takes strings
        self.label_names = label_names
        self.layer_groups: LayerGroups | None = None
        self.frozen_groups: tuple[str, ...] = ()
        self.lr_multipliers: dict[str, float] = {}
        self.unused_groups: tuple[str, ...] = ()  # layer groups no gradient reaches (e.g. the pooler)
        self.fixed_variables: tuple = ()  # encoder variables the mode never trains (bitfit: all but biases)
        self._group_optimizers: list[tuple[str, tf_keras.optimizers.Optimizer]] = []
        self._head_rates: tuple[float, float] | None = None  # head factor (frozen encoder, training encoder)
        self._head_schedule: ScaledSchedule | None = None
        self._steps_per_epoch: int | None = None
        self._compile_options: dict | None = None
        self._schedule: DeferredSchedule | None = None
        self._stale_compile = False

    # -- class names -------------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str] | None:
        """The class names (class id i is `label_names[i]`) as a plain list: those given, else "0".."n-1" for a
        classifier built with `num_classes`; None for tasks without classes (regression, taggers built without
        tag names)."""
        given = self.__dict__.get("_given_label_names")
        if given:
            return [str(name) for name in given]  # Keras tracks attribute lists as ListWrapper: hand out a list
        if self.task in CLASS_TASKS and getattr(self, "outputs", None):
            return [str(i) for i in range(self.num_outputs)]
        return None

    @label_names.setter
    def label_names(self, names: Sequence[str] | None) -> None:
        self._given_label_names = [str(name) for name in names] if names else None

    # -- config: the constructor's arguments (keras-hub style), so from_config rebuilds the model --------
    def get_config(self) -> dict:
        given = self.__dict__.get("_given_label_names")
        return {"config": dataclasses.asdict(self.config), "label_names": list(given) if given else None,
                "name": self.name}

    @classmethod
    def from_config(cls, config: dict, custom_objects=None):
        return cls(**config)

    # -- what the task is -------------------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return int(self.outputs[0].shape[-1])

    @property
    def objective(self):
        """Loss/metric family, best-epoch monitor and report headline of the task."""
        return TASK_SPECS[self.task]

    @property
    def seq_length(self) -> int:
        return int(getattr(self.config, "seq_length", 128))

    # -- which variables train --------------------------------------------------------------------
    def step_variables(self) -> list[tf.Variable]:
        """Trainable variables minus those of frozen groups and those the mode never trains."""
        frozen = {id(v) for name in self.frozen_groups
                  for v in self.layer_groups.variables.get(name, [])} if self.layer_groups else set()
        frozen.update(id(v) for v in self.fixed_variables)
        return [v for v in self.trainable_variables if id(v) not in frozen]

    def training_groups(self) -> list[str]:
        """The layer groups the next step updates (gradual unfreezing adds one at a time)."""
        if self.layer_groups is None:
            return []
        training = {id(v) for v in self.step_variables()}
        return [name for name in self.layer_groups.order
                if any(id(v) in training for v in self.layer_groups.variables.get(name, []))]

    def group_learning_rates(self, step: int | None = None) -> dict[str, float]:
        """The learning rate of each layer group at optimizer step `step` (default: the current one; 0 while
        frozen), and `head`'s: the variables outside the groups (the head, a layer mix, an RNN)."""
        if self.optimizer is None:
            return {}
        step = int(self.optimizer.iterations.numpy()) if step is None else int(step)
        training, optimizers = set(self.training_groups()), dict(self._group_optimizers)
        rates = {name: _rate_at(optimizers.get(name, self.optimizer), step) if name in training else 0.0
                 for name in (self.layer_groups.order if self.layer_groups is not None else [])}
        return {**rates, "head": _rate_at(self.optimizer, step)}

    def set_frozen_groups(self, groups) -> None:
        """Freezes exactly `groups`; takes effect at the next step, also in the middle of `fit`."""
        groups = tuple(groups)
        if groups and self.layer_groups is None:
            raise ConfigError(f"{self.name} has no layer groups to freeze (its encoder's variable names "
                              "do not follow the Model Garden pattern); use mode freeze or finetune")
        if self.layer_groups is not None:
            unknown = set(groups) - set(self.layer_groups.order)
            if unknown:
                raise ValueError(f"unknown layer groups {sorted(unknown)}; known: {self.layer_groups.order}")
        if groups != self.frozen_groups:
            self.frozen_groups = groups
            self._retrace()
        if self._update_head_rate():
            self._retrace()

    def _retrace(self) -> None:
        if getattr(self, "train_function", None) is not None:
            self.train_function = self.make_train_function(force=True)

    def encoder_frozen(self) -> bool:
        """Whether no encoder weight trains now (freeze mode, or every layer group frozen)."""
        encoder = self._encoder_layer()
        if not self.mode.encoder_trainable or (encoder is not None and not encoder.trainable):
            return True
        return bool(self.layer_groups) and set(self.frozen_groups) >= set(self.layer_groups.order)

    def _update_head_rate(self) -> bool:
        """Sets the head's factor for the current phase; True when it changed (the step must retrace)."""
        if self._head_schedule is None or self._head_rates is None:
            return False
        factor = self._head_rates[0] if self.encoder_frozen() else self._head_rates[1]
        if factor == self._head_schedule.factor:
            return False
        self._head_schedule.factor = factor
        return True

    def _encoder_layer(self):
        try:
            return self.get_layer("encoder")
        except ValueError:
            return None

    def freeze(self) -> None:
        """Trains the head only (every encoder layer group frozen; the encoder keeps its dropout)."""
        self.freeze_to(len(self._group_order()))

    def unfreeze(self) -> None:
        """Trains everything."""
        self._make_encoder_trainable()
        self.set_frozen_groups(())

    def freeze_to(self, k: int) -> None:
        """Freezes the bottom `k` layer groups (embeddings first); a negative k counts from the top."""
        order = self._group_order()
        self._make_encoder_trainable()
        self.set_frozen_groups(order[:k])

    def _group_order(self) -> list[str]:
        if self.layer_groups is None:
            raise ConfigError(f"{self.name} has no layer groups; freeze/unfreeze need an encoder whose "
                              "variables follow the Model Garden names (this package's encoders do)")
        return list(self.layer_groups.order)

    def _make_encoder_trainable(self) -> None:
        """A model built in `freeze` mode runs its encoder untrainable; thawing it needs new optimizer slots."""
        encoder = self._encoder_layer()
        if encoder is not None and not encoder.trainable:
            encoder.trainable = True
            self._stale_compile = self._compile_options is not None
            self.train_function = None

    # -- compile ----------------------------------------------------------------------------------
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
            self._head_rates = self._head_factors(rate, head_learning_rate, head_lr_multiplier)
            self._head_schedule = ScaledSchedule(self._schedule, 1.0)
            self._update_head_rate()
            main = make(self._head_schedule)
        else:
            if head_learning_rate is not None or head_lr_multiplier is not None:
                raise ConfigError("head_learning_rate / head_lr_multiplier apply to a named optimizer ('adamw', "
                                  "'adam', 'sgd'); with your own optimizer instance the head trains with it")
            self._schedule, self._head_rates, self._head_schedule = None, None, None
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
        trainable = {id(v) for v in self.trainable_variables}
        groups = [name for name, variables in (self.layer_groups.variables.items() if self.layer_groups else [])
                  if any(id(v) in trainable for v in variables)]
        self._group_optimizers = [
            (name, make(ScaledSchedule(base, self.lr_multipliers.get(name, 1.0), clock=main.iterations)))
            for name in groups]
        for optimizer, variables in self._bucket(self.trainable_variables):
            optimizer.build(variables)  # every slot now: groups unfrozen later need no new variables

    def _bucket(self, variables):
        """(optimizer, variables) pairs: each layer group's variables with its optimizer, the rest with the main one."""
        by_group = dict(self._group_optimizers)
        optimizer_of = {id(v): by_group[name] for name, vs in (self.layer_groups.variables.items()
                                                               if self.layer_groups else []) if name in by_group
                        for v in vs}
        buckets: dict[int, tuple] = {}
        for variable in variables:
            optimizer = optimizer_of.get(id(variable), self.optimizer)
            buckets.setdefault(id(optimizer), (optimizer, []))[1].append(variable)
        # The main optimizer steps last so every group reads the same clock value.
        return sorted(buckets.values(), key=lambda item: item[0] is self.optimizer)

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
        optimizers = [self.optimizer, *(o for _, o in self._group_optimizers)] if self.optimizer is not None else []
        return [v for o in optimizers for v in (o.variables() if callable(o.variables) else o.variables)]

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, data):
        x, y, sample_weight = tf_keras.utils.unpack_x_y_sample_weight(data)
        variables = self.step_variables()
        with tf.GradientTape() as tape:
            y_pred = self.training_outputs(x)
            loss = self.compute_loss(x, y, y_pred, sample_weight)
        gradients = tape.gradient(loss, variables)
        if self.distribute_strategy.num_replicas_in_sync > 1:
            gradients = [_dense(g) for g in gradients]
        # Variables the output does not depend on (e.g. the pooler under mean pooling) get None.
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if self._group_optimizers:
            by_var = {id(v): g for g, v in pairs}
            buckets = self._bucket([v for _, v in pairs])
            for optimizer, group_vars in buckets:
                optimizer.apply_gradients([(by_var[id(v)], v) for v in group_vars])
            if not any(optimizer is self.optimizer for optimizer, _ in buckets):
                self.optimizer.iterations.assign_add(1)  # the clock every group's schedule reads
        else:
            self.optimizer.apply_gradients(pairs)
        return self.compute_metrics(x, y, y_pred, sample_weight)

    # -- data in ----------------------------------------------------------------------------------
    def encode_examples(self, x, y=None, batch_size: int = DEFAULT_BATCH_SIZE, shuffle: bool = False,
                        seed: int = 0, sample_weight=None) -> tf.data.Dataset:
        """Batches of model inputs (and targets, and per-example weights when given) from raw examples;
        subclasses that take text override it."""
        raise ConfigError(f"{type(self).__name__} takes model inputs, not raw examples")

    def encode_labels(self, y) -> np.ndarray | None:
        """Class ids from label names (or ids) for single-label tasks; subclasses extend it."""
        if y is None:
            return None
        values = as_values(y, "y")
        if self.task == "single_label":
            return class_ids(values, self.num_outputs, self.label_names)
        if self.task == "regression":
            return check_scores(values)
        return np.asarray(values)

    def _given(self, x, y=None, sample_weight=None, method: str = "fit") -> Given:
        """`x` (with `y`, `sample_weight`) in one form, checked (see models.inputs); as given for models that
        take their own inputs."""
        if not self.takes_texts:
            return Given(x, y, sample_weight, raw=False)
        given = normalise(x, y, sample_weight, pair=bool(getattr(self.config, "pair", False)), method=method)
        expected = sorted(getattr(self, "input_names", None) or [])
        if isinstance(given.x, dict) and expected and sorted(given.x) != expected:
            raise ConfigError(f"{method}(): x is a dict with keys {sorted(given.x)[:6]}; encoder inputs are a dict "
                              f"with exactly {expected}, and texts come as {TEXT_FORMS}")
        return given

    def _validation_dataset(self, validation_data, batch: int):
        """`validation_data` in any form `fit`'s x takes ((x, y), (x, y, weights), a DataFrame, a dataset)."""
        if validation_data is None:
            return None
        if not self.takes_texts:
            if isinstance(validation_data, tuple) and self._is_raw(validation_data[0]):
                return self.encode_examples(validation_data[0], validation_data[1], batch)
            if isinstance(validation_data, tf.data.Dataset):
                return self._inputs_from(validation_data, None, batch, False)
            return validation_data
        parts = validation_data if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) else None
        x, y, weights = (*parts, None)[:3] if parts else (validation_data, None, None)
        try:
            given = self._given(x, y, weights, "fit")
        except TransferError as err:
            raise type(err)(f"validation_data: {err}") from None
        if not given.raw:
            return self._inputs_from(given.x, None, batch, False) if isinstance(given.x, tf.data.Dataset) \
                else validation_data
        return self.encode_examples(given.x, given.y, given.batch_size or batch, sample_weight=given.sample_weight)

    def _inputs_from(self, x, y, batch_size, shuffle, seed=0, sample_weight=None):
        """A dataset the graph takes: raw examples and string datasets go through the pipeline."""
        if isinstance(x, tf.data.Dataset):
            if sample_weight is not None:
                raise ConfigError("with a tf.data dataset, the sample weights go inside it: give (inputs, targets, "
                                  "weights) elements instead of sample_weight")
            return self.encode_dataset(x, batch_size) if self._takes_strings(x) else x
        if self._is_raw(x) and sample_weight is not None:
            if self.task in ("tokens", "masked_lm"):
                raise ConfigError(f"sample_weight does not apply to {type(self).__name__}: it weights "
                                  "sentence-level examples")
            return self.encode_examples(x, y, batch_size, shuffle, seed, sample_weight=sample_weight)
        if self._is_raw(x):
            return self.encode_examples(x, y, batch_size, shuffle, seed)
        return None

    def class_weight_vector(self, class_weight, y=None) -> np.ndarray | None:
        """One weight per class id from {label name or class id: weight} (unnamed classes weigh 1),
        `label=weight,...` or `balanced` (n / (classes x count), counted in `y`)."""
        if class_weight is None:
            return None
        check_task(self.task, "class_weight")
        if parse_class_weight(class_weight) == BALANCED and y is None:
            raise ConfigError("class_weight='balanced' counts the labels: pass the labels as y (or give a "
                              "weight per label, e.g. {'positive': 1, 'negative': 5})")
        ids = self.encode_labels(y) if y is not None else np.zeros(0, np.int64)
        return class_weights(class_weight, ids, self.num_outputs, self.label_names)

    def _weighted(self, x, y, sample_weight, per_class):
        """Class weights folded into the sample weights: mapped over a dataset, multiplied into arrays.
        (Keras' own `class_weight` fails on batches that already carry sample weights.)"""
        if per_class is None:
            return x, sample_weight
        if isinstance(x, tf.data.Dataset):
            return with_class_weights(x, per_class), None
        by_class = per_class[np.asarray(self.encode_labels(y)).reshape(-1)]
        return x, by_class if sample_weight is None else by_class * np.asarray(sample_weight, np.float32)

    def _is_raw(self, x) -> bool:
        if isinstance(x, dict):
            return any(_is_text(v) for v in x.values())
        if isinstance(x, tuple):
            return any(_is_text(v) for v in x)
        return _is_text(x)

    def _takes_strings(self, dataset: tf.data.Dataset) -> bool:
        spec = dataset.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        leaves = tf.nest.flatten(first)
        return self.preprocessor is not None and all(s.dtype == tf.string for s in leaves)

    def encode_dataset(self, dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
        raise ConfigError(f"{type(self).__name__} cannot read a tf.data dataset of strings")

    def training_outputs(self, x) -> tf.Tensor:
        """The outputs a training step scores: the model's, in training mode."""
        return self(x, training=True)

    def packed_for_training(self, x):
        """What a training step reads from `x`'s batches: the batches themselves, unless the model packs
        them (see TextClassifier)."""
        return x

    # -- fit / evaluate / predict -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_data=None, shuffle=True, steps_per_epoch=None, seed: int = 0, *, class_weight=None,
            sample_weight=None, early_stopping: int = 0, **kwargs):
        """`tf_keras.Model.fit` that also takes raw strings and label names, compiles with the
        defaults when not compiled, sizes the default schedule, and adds gradual unfreezing.

        `class_weight`: {label name or class id: weight} (unnamed classes weigh 1), `label=weight,...`,
        or `balanced` (n / (classes x count), from `y`); single-label tasks only. `sample_weight`: one
        weight per example, also with raw strings (it rides through the input pipeline).
        `early_stopping=PATIENCE`: stop after that many epochs without a better validation score
        (`objective.monitor`) and end with the best epoch's weights.

        `x` takes every form Keras users pass (see models.inputs): texts as a list, array, Series or string
        tensor with `y` their label names or class ids; a DataFrame with `text` (`text_b` for pairs) and
        `label` columns; a tf.data dataset of (strings, labels) or (strings, labels, weights), batched (its
        batch size is used unless `batch_size` is given; it is read in its own order) or not. Bad input gets
        one ConfigError / DataError naming the argument (`x`, `y`, `sample_weight`) before any training.
        """
        given = self._given(x, y, sample_weight, "fit")
        x, y, sample_weight = given.x, given.y, given.sample_weight
        if given.from_dataset:
            batch_size, shuffle = batch_size or given.batch_size, False  # Keras reads a dataset as it comes
        if self.optimizer is None:
            self.compile()
        elif self._stale_compile:
            self.compile(**self._compile_options)
        batch = batch_size or DEFAULT_BATCH_SIZE
        per_class = self.class_weight_vector(class_weight, y)
        dataset = self._inputs_from(x, y, batch, shuffle, seed, sample_weight)
        if dataset is not None:
            x, y, batch_size, sample_weight = dataset, None, None, None
        x, sample_weight = self._weighted(x, y, sample_weight, per_class)
        x = self.packed_for_training(x)
        validation_data = self._validation_dataset(validation_data, batch)
        steps = self._epoch_steps(x, batch, steps_per_epoch)
        phases = self.transfer_callbacks(callbacks or [], steps, epochs)
        head_steps = phases[0].frozen_steps if phases and phases[0].frozen_steps else 0
        self._size_schedule(steps, epochs, head_steps)
        callbacks = [*phases, *(callbacks or [])]
        if early_stopping:
            if validation_data is None:
                raise ConfigError("early_stopping watches the validation score: pass validation_data")
            callbacks.append(EarlyStopping(early_stopping, self.objective.monitor, self.objective.monitor_mode))
        verbose, progress = fit_progress(verbose, epochs)  # lines, not `\r` bars, when logged to a file
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                           callbacks=callbacks + progress,
                           validation_data=validation_data, shuffle=shuffle, steps_per_epoch=steps_per_epoch,
                           sample_weight=sample_weight, **kwargs)

    @staticmethod
    def _epoch_steps(x, batch, steps_per_epoch) -> int | None:
        """Steps per epoch of a fit on `x`, or None when the input does not say."""
        if steps_per_epoch is not None:
            return int(steps_per_epoch)
        if isinstance(x, tf.data.Dataset):
            cardinality = int(x.cardinality())
            return cardinality if cardinality > 0 else None
        if x is not None:
            return -(-len(tf.nest.flatten(x)[0]) // batch)
        return None

    def _size_schedule(self, steps: int | None, epochs: int, head_steps: int = 0) -> None:
        """Sizes the default schedule for this fit; a head-only phase of `head_steps` gets its own cycle."""
        if self._schedule is None:
            return
        start = int(self.optimizer.iterations.numpy())
        # Unknown length: keep the last one, but start this fit's own warmup and decay where it begins.
        total = steps * epochs if steps else self._schedule.total_steps
        if self._schedule.set_total_steps(total, start, head_steps):
            self.train_function = None

    def transfer_callbacks(self, given: Sequence, steps_per_epoch: int | None = None, epochs: int = 1) -> list:
        """The callbacks the transfer mode needs (its phases: the head alone first, gradual unfreezing) for
        a fit of `epochs` x `steps_per_epoch`, unless `given` already holds such a callback."""
        if self.layer_groups is None or any(isinstance(c, TransferPhases) for c in given):
            return []
        callback = phase_callback(self.mode, self.layer_groups, self.unused_groups, steps_per_epoch, epochs)
        return [callback] if callback is not None else []

    def lr_find(self, x, y=None, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
                batch_size: int | None = None, *, stop_factor: float = 4.0, sample_weight=None, class_weight=None,
                seed: int = 0, plot_to: str | Path | None = None, verbose: int = 1) -> LRFinderResult:
        """Smith's learning-rate range test (fastai's `lr_find`): which base learning rate to train at.

        Trains on up to `num_steps` batches of `x` (the same inputs as `fit`; repeated when shorter)
        while the rate grows exponentially from `start_lr` to `end_lr`, stopping once the smoothed
        loss passes `stop_factor` x its best. Frozen groups stay frozen and per-group multipliers
        apply, as in `fit`. The weights, frozen groups and optimizer state are then put back.
        Returns the curve with the `valley` (the `suggestion`) and `steepest` rates; `plot_to`
        writes the loss-vs-rate PNG (`result.plot_png()` gives its bytes).
        """
        given = self._given(x, y, sample_weight, "lr_find")
        x, y, sample_weight = given.x, given.y, given.sample_weight
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        per_class = self.class_weight_vector(class_weight, y)
        dataset = self._inputs_from(x, y, batch, True, seed, sample_weight)
        if dataset is None:  # model inputs as arrays
            parts = tuple(part for part in (x, y, sample_weight) if part is not None)
            dataset = tf.data.Dataset.from_tensor_slices(parts).shuffle(4096, seed=seed).batch(batch)
        dataset, _ = self._weighted(dataset, None, None, per_class)
        result = range_test(self, self.packed_for_training(dataset).repeat(), start_lr, end_lr, num_steps,
                            stop_factor, verbose)
        if plot_to is not None:
            replace_file(plot_to, lambda handle: handle.write(result.plot_png()))
        return result

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """`tf_keras.Model.evaluate`; `x` and `y` take the forms `fit` takes (texts go through the input
        pipeline); no texts, or no labels, is a DataError naming the argument."""
        given = self._given(x, y, kwargs.pop("sample_weight", None), "evaluate")
        kwargs["verbose"] = summary_verbosity(kwargs.get("verbose", "auto"))
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        dataset = self._inputs_from(given.x, given.y, batch, False, sample_weight=given.sample_weight)
        if dataset is not None:
            return super().evaluate(dataset, None, batch_size=None, **kwargs)
        return super().evaluate(given.x, given.y, batch_size=batch_size, sample_weight=given.sample_weight,
                                **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """`tf_keras.Model.predict`: logits, [examples, classes] (a score for regression), in `x`'s order.

        `x` takes the forms `fit` takes (labels in it are ignored). One string is a batch of one (one row
        back); an empty list gives an empty [0, classes] array. Texts must be str (UTF-8 bytes are decoded):
        anything else is one ConfigError / DataError naming `x`.
        """
        given = self._given(x, None, None, "predict")
        kwargs["verbose"] = summary_verbosity(kwargs.get("verbose", "auto"))
        if given.raw and given.count == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        dataset = self._inputs_from(given.x, None, batch, False)
        if dataset is not None:
            return super().predict(dataset.map(inputs_only), batch_size=None, **kwargs)
        return super().predict(given.x, batch_size=batch_size, **kwargs)

    def outputs_on(self, dataset: tf.data.Dataset):
        """The model's outputs on every batch of `dataset` (inputs, targets), in order, on this process."""
        return predict_outputs(self, dataset)

    # -- out --------------------------------------------------------------------------------------
    def predict_labels(self, x, batch_size: int = 32) -> list[str]:
        """The predicted label name of each text (single-label models), in `x`'s order.

        `x` takes the forms `predict` takes. A model built with `num_classes` names its classes
        "0".."n-1" (give `labels=[...]` to name them).

        Example:
          >>> model.predict_labels(["great film", "dull"])
          ['pos', 'neg']
        """
        if self.task != "single_label" or not self.label_names:
            raise ConfigError(f"predict_labels picks one class per text: it applies to single-label models, not "
                              f"task={self.task!r}; use predict() for its scores")
        names = self.label_names
        ids = np.argmax(self.predict(x, batch_size=batch_size, verbose=0), axis=-1)
        return [names[i] for i in ids]

    def export(self, out_dir: str | Path, name: str | None = None, version: int | None = None,
               format: str = "saved_model", quantize: str | None = None, **options) -> Path:
        """Writes `out_dir/name/version`: a raw-string SavedModel (see export.saved_model), a raw-string
        TFLite model (`format="tflite"`) or an ONNX model on token ids (`format="onnx"`); `quantize="int8"`
        gives the last two dynamic-range int8 weights (see export.formats)."""
        check_export_arguments(out_dir, format, quantize)
        names = self.label_names or [str(i) for i in range(self.num_outputs if self.task != "regression" else 0)]
        return export_model(self, names, out_dir, name or self.name, version, format, quantize, **options)

    # -- save / load ------------------------------------------------------------------------------
    def weight_values(self) -> list[np.ndarray]:
        # By position, not by object graph: a rebuilt model's graph can differ in bookkeeping.
        return [v.numpy() for v in self.weights if isinstance(v, tf.Variable)]

    def set_weight_values(self, values: Sequence[np.ndarray]) -> None:
        variables = [v for v in self.weights if isinstance(v, tf.Variable)]
        if len(variables) != len(values):
            raise ConfigError(f"saved weights hold {len(values)} arrays; {self.name} has {len(variables)} "
                              "variables (was it saved from another model?)")
        for variable, value in zip(variables, values):
            variable.assign(value)

    def save(self, filepath, overwrite: bool = False, **kwargs) -> None:
        """Writes `filepath/` (config, label names, transfer mode, encoder reference, weights) atomically.

        `tfhub_transfer.load(filepath)` rebuilds the model, ready to predict or train on. An existing
        directory is replaced only with `overwrite=True`, and only when this package wrote it.
        For serving, use `export()` (a raw-string SavedModel).
        """
        target = checked_save_path(filepath, overwrite)
        record = {"class": type(self).__name__, "config": self.get_config(), "format": 1}
        try:
            with atomic_directory(target, overwrite) as tmp:
                (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
                with open(tmp / WEIGHTS_FILE, "wb") as handle:
                    np.savez(handle, *self.weight_values())
                    handle.flush()
                    os.fsync(handle.fileno())
        except ConfigError as err:
            raise ConfigError(python_arguments(str(err))) from None


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


def python_arguments(message: str) -> str:
    """A message written for CLI users, with the flags a Python caller of `save` / `export` sets as arguments."""
    return message.replace("pass --overwrite", "pass overwrite=True").replace("--overwrite", "overwrite=True") \
        .replace("choose another --out", "choose another directory")


def checked_save_path(filepath, overwrite: bool) -> Path:
    """`filepath` as a Path, refused (naming the Python arguments) when it is not a path or holds files
    and `overwrite` is not True."""
    if not isinstance(filepath, (str, os.PathLike)) or not str(filepath):
        raise ConfigError(f"save(filepath={filepath!r}): filepath must be a directory path (str or pathlib.Path)")
    if not isinstance(overwrite, bool):
        raise ConfigError(f"save(overwrite={overwrite!r}): overwrite must be True or False")
    target = Path(filepath)
    if target.is_file():
        raise ConfigError(f"save(filepath={str(target)!r}): that is a file; save() writes a directory. Choose "
                          "another filepath")
    if not overwrite and target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"save(): {target} exists and is not empty; pass overwrite=True to replace a model "
                          "saved there (only a directory tfhub_transfer wrote is replaced), or choose another "
                          "filepath")
    return target


def check_export_arguments(out_dir, format, quantize) -> None:
    """`export`'s arguments, refused naming the Python argument (the CLI's checks name its flags)."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ConfigError(f"export(out_dir={out_dir!r}): out_dir must be a directory path (str or pathlib.Path)")
    check_format(format, quantize, "export(format=...)", "export(quantize=...)")


class StringInputModel(TaskModel):
    """A task model whose first layer takes raw strings (TextVectorization, a text-embedding module)."""

    takes_texts = True

    def default_learning_rate(self) -> float:
        return HEAD_LEARNING_RATE  # small models (an RNN, a bag of word vectors) train well at the head's rate

    def encode_examples(self, x, y=None, batch_size=32, shuffle=False, seed=0, sample_weight=None) -> tf.data.Dataset:
        return make_string_dataset(list(x), self.encode_labels(y), batch_size, shuffle, seed, sample_weight)

    def _takes_strings(self, dataset: tf.data.Dataset) -> bool:
        return False  # strings are this model's inputs

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        dataset, _ = make_training_dataset(examples.texts, examples.targets, None, batch_size, 0, epochs,
                                           seed=seed, shuffle=shuffle, bucket=False, start_epoch=start.epoch,
                                           start_step=start.step, drop_remainder=drop_remainder)
        return dataset

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        return make_string_dataset(examples.texts, examples.targets, batch_size)


