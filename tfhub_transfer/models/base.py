"""`TaskModel`: the Keras model every task builds on; its `compile` and `fit` honour the transfer mode.

- Frozen layer groups are left out of the variables the train step differentiates,
  so they take no update and cost no weight-gradient work.
- Each distinct learning-rate multiplier gets its own optimizer (exact per-group rates
  for Adam/AdamW, where scaling gradients would not be the same thing); all of them
  read the main optimizer's step counter, so schedules stay in step.
- `compile()` with no arguments picks the task's loss and metrics and AdamW on a
  warmup + linear-decay schedule whose length `fit` fills in; a user's own optimizer
  or learning rate is the base that per-group multipliers scale.
- `fit()` takes model inputs, or raw strings (and label names) that the input pipeline
  tokenises; it adds gradual unfreezing itself when the mode asks for it.
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

from tfhub_transfer.config import HEAD_LEARNING_RATE, default_learning_rate
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import export_classifier
from tfhub_transfer.files import atomic_directory
from tfhub_transfer.preprocessing.text import make_string_dataset, make_training_dataset
from tfhub_transfer.training.loop import predict_outputs
from tfhub_transfer.training.objectives import TASK_SPECS, compile_args
from tfhub_transfer.training.optimizers import copy_factory, optimizer_factory
from tfhub_transfer.training.schedules import DeferredSchedule, ScaledSchedule
from tfhub_transfer.transfer.layer_groups import LayerGroups
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.unfreezing import GradualUnfreezing

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

    def _setup(self, config, mode: TransferMode, spec=None, preprocessor=None,
               label_names: Sequence[str] | None = None) -> None:
        self.config = config
        self.mode = mode
        self.spec = spec
        self.preprocessor = preprocessor  # None for models whose first layer takes strings
        self.label_names = list(label_names) if label_names else None
        self.layer_groups: LayerGroups | None = None
        self.frozen_groups: tuple[str, ...] = ()
        self.lr_multipliers: dict[str, float] = {}
        self._group_optimizers: list[tuple[float, tf_keras.optimizers.Optimizer]] = []
        self._compile_options: dict | None = None
        self._schedule: DeferredSchedule | None = None
        self._stale_compile = False

    # -- config: the constructor's arguments (keras-hub style), so from_config rebuilds the model --------
    def get_config(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "label_names": self.label_names, "name": self.name}

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
        """Trainable variables minus those of frozen groups."""
        frozen = {id(v) for name in self.frozen_groups
                  for v in self.layer_groups.variables.get(name, [])} if self.layer_groups else set()
        return [v for v in self.trainable_variables if id(v) not in frozen]

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
            if getattr(self, "train_function", None) is not None:
                self.train_function = self.make_train_function(force=True)

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
        return default_learning_rate(self.mode.encoder_trainable)

    def compile(self, optimizer="adamw", loss="auto", metrics="auto", *, learning_rate: float | None = None,
                schedule: str = "linear", warmup_fraction: float = 0.1, weight_decay: float = 0.01,
                total_steps: int | None = None, **kwargs) -> None:
        """Compiles with the task's loss and metrics and the transfer mode's per-group learning rates.

        Args:
          optimizer: `adamw` (default), `adam`, `sgd`, or an optimizer instance. Per-group
            multipliers (discriminative, slow embeddings) scale its learning rate: each group
            gets a copy of it whose rate is multiplier x yours, stepping on your optimizer's clock.
          loss, metrics: `auto` picks the task's (cross-entropy on logits, accuracy + macro-F1;
            binary cross-entropy + micro-F1; MSE + MAE; token accuracy).
          learning_rate: the peak rate of a named optimizer; default 5e-5 when the encoder
            trains, 1e-3 when only a head does.
          schedule: `linear` (warmup then linear decay), `slanted_triangular`, `one_cycle`,
            `constant`; its length is set by `fit` unless `total_steps` is given.
          warmup_fraction, weight_decay: for the schedule and AdamW.
          **kwargs: passed to `tf_keras.Model.compile` (steps_per_execution, jit_compile, ...).
        """
        self._compile_options = dict(optimizer=optimizer, loss=loss, metrics=metrics,
                                     learning_rate=learning_rate, schedule=schedule,
                                     warmup_fraction=warmup_fraction, weight_decay=weight_decay,
                                     total_steps=total_steps, **kwargs)
        self._stale_compile = False
        if isinstance(optimizer, str):
            rate = learning_rate or self.default_learning_rate()
            self._schedule = DeferredSchedule(schedule, rate, warmup_fraction, total_steps)
            make = optimizer_factory(optimizer, weight_decay)
            main = make(self._schedule)
        else:
            self._schedule, main, make = None, optimizer, copy_factory(optimizer)
        with self.distribute_strategy.scope():  # metrics must be created in the model's strategy scope
            defaults = compile_args(self.task, self.num_outputs)
            kwargs["loss"] = defaults["loss"] if loss == "auto" else loss
            if metrics == "auto":
                kwargs.update({k: v for k, v in defaults.items() if k != "loss"})
            else:
                kwargs["metrics"] = metrics
            super().compile(optimizer=main, **kwargs)
            self._compile_group_optimizers(make, main)

    def _compile_group_optimizers(self, make, main) -> None:
        base = main._learning_rate if hasattr(main, "_learning_rate") else main.learning_rate
        if isinstance(base, tf.Variable):
            base = float(base.numpy())
        factors = sorted({f for f in self.lr_multipliers.values() if f != 1.0})
        self._group_optimizers = [(f, make(ScaledSchedule(base, f, clock=main.iterations))) for f in factors]
        for optimizer, variables in self._bucket(self.trainable_variables):
            optimizer.build(variables)  # every slot now: groups unfrozen later need no new variables

    def _optimizer_for(self, variable, group_of: dict[int, str]):
        factor = self.lr_multipliers.get(group_of.get(id(variable)), 1.0)
        for value, optimizer in self._group_optimizers:
            if value == factor:
                return optimizer
        return self.optimizer

    def _bucket(self, variables):
        group_of = ({id(v): name for name, vs in self.layer_groups.variables.items() for v in vs}
                    if self.layer_groups else {})
        buckets: dict[int, tuple] = {}
        for variable in variables:
            optimizer = self._optimizer_for(variable, group_of)
            buckets.setdefault(id(optimizer), (optimizer, []))[1].append(variable)
        # The main optimizer steps last so every group reads the same clock value.
        return sorted(buckets.values(), key=lambda item: item[0] is self.optimizer)

    # -- the step ---------------------------------------------------------------------------------
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

    # -- data in ----------------------------------------------------------------------------------
    def encode_examples(self, x, y=None, batch_size: int = DEFAULT_BATCH_SIZE, shuffle: bool = False,
                        seed: int = 0) -> tf.data.Dataset:
        """Batches of model inputs (and targets) from raw examples; subclasses that take text override it."""
        raise ConfigError(f"{type(self).__name__} takes model inputs, not raw examples")

    def encode_labels(self, y) -> np.ndarray | None:
        """Class ids from label names (or ids) for single-label tasks; subclasses extend it."""
        if y is None:
            return None
        values = list(y) if not isinstance(y, np.ndarray) else y
        if self.label_names and _is_text(values):
            index = {name: i for i, name in enumerate(self.label_names)}
            unknown = sorted({v for v in values if v not in index})
            if unknown:
                raise ConfigError(f"labels {unknown[:5]} are not among the model's {self.label_names}")
            return np.asarray([index[v] for v in values], np.int32)
        return np.asarray(values)

    def _inputs_from(self, x, y, batch_size, shuffle, seed=0):
        """A dataset the graph takes: raw examples and string datasets go through the pipeline."""
        if isinstance(x, tf.data.Dataset):
            return self.encode_dataset(x, batch_size) if self._takes_strings(x) else x
        if self._is_raw(x):
            return self.encode_examples(x, y, batch_size, shuffle, seed)
        return None

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

    # -- fit / evaluate / predict -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_data=None, shuffle=True, steps_per_epoch=None, seed: int = 0, **kwargs):
        """`tf_keras.Model.fit` that also takes raw strings and label names, compiles with the
        defaults when not compiled, sizes the default schedule, and adds gradual unfreezing."""
        if self.optimizer is None:
            self.compile()
        elif self._stale_compile:
            self.compile(**self._compile_options)
        batch = batch_size or DEFAULT_BATCH_SIZE
        dataset = self._inputs_from(x, y, batch, shuffle, seed)
        if dataset is not None:
            x, y, batch_size = dataset, None, None
        if isinstance(validation_data, tuple) and self._is_raw(validation_data[0]):
            validation_data = self.encode_examples(validation_data[0], validation_data[1], batch)
        elif isinstance(validation_data, tf.data.Dataset):
            validation_data = self._inputs_from(validation_data, None, batch, False)
        self._size_schedule(x, y, batch, epochs, steps_per_epoch)
        callbacks = [*self.transfer_callbacks(callbacks or []), *(callbacks or [])]
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                           validation_data=validation_data, shuffle=shuffle,
                           steps_per_epoch=steps_per_epoch, **kwargs)

    def _size_schedule(self, x, y, batch, epochs, steps_per_epoch) -> None:
        if self._schedule is None:
            return
        steps = steps_per_epoch
        if steps is None and isinstance(x, tf.data.Dataset):
            cardinality = int(x.cardinality())
            steps = cardinality if cardinality > 0 else None
        elif steps is None and x is not None:
            steps = -(-len(tf.nest.flatten(x)[0]) // batch)
        start = int(self.optimizer.iterations.numpy())
        # Unknown length: keep the last one, but start this fit's own warmup and decay where it begins.
        total = steps * epochs if steps else self._schedule.total_steps
        if self._schedule.set_total_steps(total, start):
            self.train_function = None

    def transfer_callbacks(self, given: Sequence) -> list:
        """The callbacks the transfer mode needs that `given` does not already hold."""
        if self.mode.kind == "gradual" and not any(isinstance(c, GradualUnfreezing) for c in given):
            return [GradualUnfreezing(self.mode.unfreeze_every_steps)]
        return []

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """`tf_keras.Model.evaluate`; raw strings and label names go through the input pipeline."""
        dataset = self._inputs_from(x, y, batch_size or DEFAULT_BATCH_SIZE, False)
        if dataset is not None:
            x, y, batch_size = dataset, None, None
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """`tf_keras.Model.predict` (logits; a score for regression); raw strings are tokenised first."""
        dataset = self._inputs_from(x, None, batch_size or DEFAULT_BATCH_SIZE, False)
        if dataset is not None:
            x, batch_size = dataset.map(lambda inputs, *_: inputs), None
        return super().predict(x, batch_size=batch_size, **kwargs)

    def outputs_on(self, dataset: tf.data.Dataset):
        """The model's outputs on every batch of `dataset` (inputs, targets), in order, on this process."""
        return predict_outputs(self, dataset)

    # -- out --------------------------------------------------------------------------------------
    def predict_labels(self, x, batch_size: int = 32) -> list[str]:
        """Label names (single-label) for raw strings."""
        if not self.label_names or self.task != "single_label":
            raise ConfigError("predict_labels needs a single-label model built with label names")
        ids = np.argmax(self.predict(x, batch_size=batch_size, verbose=0), axis=-1)
        return [self.label_names[i] for i in ids]

    def export(self, out_dir: str | Path, name: str | None = None, version: int | None = None,
               **options) -> Path:
        """Writes the raw-string serving SavedModel to `out_dir/name/version` (see export.saved_model)."""
        names = self.label_names or [str(i) for i in range(self.num_outputs if self.task != "regression" else 0)]
        return export_classifier(self, names, out_dir, name or self.name, version, **options)

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
        record = {"class": type(self).__name__, "config": self.get_config(), "format": 1}
        with atomic_directory(Path(filepath), overwrite) as tmp:
            (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
            with open(tmp / WEIGHTS_FILE, "wb") as handle:
                np.savez(handle, *self.weight_values())
                handle.flush()
                os.fsync(handle.fileno())


class StringInputModel(TaskModel):
    """A task model whose first layer takes raw strings (TextVectorization, a text-embedding module)."""

    def default_learning_rate(self) -> float:
        return HEAD_LEARNING_RATE  # small models (an RNN, a bag of word vectors) train well at the head's rate

    def encode_examples(self, x, y=None, batch_size=32, shuffle=False, seed=0) -> tf.data.Dataset:
        return make_string_dataset(list(x), self.encode_labels(y), batch_size, shuffle, seed)

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


