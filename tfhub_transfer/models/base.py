"""`TaskModel`: the Keras model every task builds on, and the contract the one training loop relies on.

A task model is a functional `tf_keras.Model` on a pretrained backbone that knows its task, its
preprocessor and its transfer mode (keras-hub's `Task`). Its concerns live in their own modules,
mixed in here:
- models.compiling: `compile()` with the task's loss/metrics and per-group rates, and the train step;
- training.group_optimizer: which layer groups train, at which rate (`freeze`, `unfreeze`, `freeze_to`
  delegate to it, as fastai's optimizer owns `freeze_to`);
- models.adaptation: raw texts, DataFrames and datasets into model inputs; class weights;
- models.fitting: `fit`, `evaluate`, `predict`, `lr_find` on every input form;
- models.persistence: `save` (`tfhub_transfer.load(dir)` rebuilds) and `export`;
- models.backbone: the TF Hub encoder (inputs, features, transfer mode) that encoder models share;
- models.string_input: `StringInputModel`, for models whose first layer takes raw strings.

What the loop (training.loop.fit_task) calls is declared below under "the contract".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.models.adaptation import DEFAULT_BATCH_SIZE, InputAdaptation
from tfhub_transfer.models.compiling import GroupCompiling, check_compile_arguments  # noqa: F401  (re-export)
from tfhub_transfer.models.fitting import Fitting
from tfhub_transfer.models.persistence import (  # noqa: F401  (re-exported: saving and jobs read them here)
    MODEL_FILE,
    WEIGHTS_FILE,
    Persistence,
    check_export_arguments,
    checked_save_path,
    python_arguments,
)
from tfhub_transfer.models.registry import register, registered  # noqa: F401  (re-exported for load)
from tfhub_transfer.training.group_optimizer import LayerGroupOptimizer
from tfhub_transfer.training.loop import predict_outputs
from tfhub_transfer.training.tasks import task_spec
from tfhub_transfer.transfer.modes import TransferMode


def _delegated(name: str, doc: str) -> property:
    """A model attribute kept by its `LayerGroupOptimizer` (read and set through the model, as before)."""
    return property(lambda self: getattr(self.group_optimizer, name),
                    lambda self, value: setattr(self.group_optimizer, name, value), doc=doc)


class TaskModel(Fitting, GroupCompiling, InputAdaptation, Persistence, tf_keras.Model):
    """A Keras model on a pretrained backbone that knows its task, preprocessor and transfer mode.

    Subclasses build their functional graph, call `super().__init__(inputs=, outputs=)` and
    then `self._setup(...)`. They implement `get_config` (when their constructor takes more than
    `config` and `label_names`), `training_stream` and `evaluation_dataset`, and `encode_examples`
    when they read raw examples. `unsupported` ({option: why}) names the loop's options they refuse.

    Args:
  (of `_setup`, which a subclass calls once its graph is built)
      config: the model's config dataclass (`save` stores it; `from_config` rebuilds the model from it).
      mode: its `TransferMode`. spec: its `EncoderSpec` (None without a TF Hub encoder).
      preprocessor: its `TextPreprocessor` (None when the first layer takes strings).
      label_names: the class names (class id i is `label_names[i]`).
    Example:
      >>> from tfhub_transfer import TaskModel, TextClassifier
      >>> issubclass(TextClassifier, TaskModel), "training_stream" in vars(TaskModel)
      (True, True)
    """

    task = "single_label"
    new_head = False  # a freshly initialised head on a pretrained encoder: it gets the head's learning rates
    takes_texts = False  # fit / evaluate / predict read texts in every form models.inputs accepts
    unsupported: dict[str, str] = {}  # option -> why this model cannot honour it (training.loop refuses it)
    group_optimizer: LayerGroupOptimizer | None = None  # a class attribute, so Keras does not track it

    layer_groups = _delegated("layer_groups", "The encoder's layer groups (None: its names do not group).")
    frozen_groups = _delegated("frozen_groups", "The layer groups the next step leaves out.")
    lr_multipliers = _delegated("lr_multipliers", "Each layer group's rate over the base rate.")
    unused_groups = _delegated("unused_groups", "Layer groups no gradient reaches (e.g. the pooler).")
    fixed_variables = _delegated("fixed_variables", "Encoder variables the mode never trains (bitfit).")

    def _setup(self, config, mode: TransferMode, spec=None, preprocessor=None,
               label_names: Sequence[str] | None = None) -> None:
        self.config = config
        self.mode = mode
        self.spec = spec
        self.preprocessor = preprocessor  # None for models whose first layer takes strings
        self.label_names = label_names
        self.group_optimizer = LayerGroupOptimizer()
        self._group_optimizers: list[tuple[str, tf_keras.optimizers.Optimizer]] = []  # tracked: backups hold them
        self._steps_per_epoch: int | None = None
        self._compile_options: dict | None = None
        self._schedule = None  # the default schedule (training.schedules.DeferredSchedule) `fit` sizes
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
        if task_spec(self.task).named_classes and getattr(self, "outputs", None):
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
        return task_spec(self.task)

    @property
    def seq_length(self) -> int:
        return int(getattr(self.config, "seq_length", 128))

    # -- the contract: what training.loop.fit_task calls ------------------------------------------------
    def training_stream(self, examples, batch_size: int, epochs: int, seed: int, start, bucket: bool,
                        drop_remainder: bool, static_length: bool, shuffle: bool = True) -> tf.data.Dataset:
        """The batches of epochs `start.epoch`..`epochs - 1` as one stream, `start.step` batches into the first.

        Args:
          examples: the training examples (data.tables.Examples for sentence tasks, TaggedSentences, a
            streamed source whose `streamed` is true, ...), as the job read them.
          batch_size: examples per batch (global); epochs: how many epochs the stream holds.
          seed: epoch e's order depends only on (seed, e), so a resumed run sees the same batches.
          start: a training.fault_tolerance.ResumePoint (`epoch`, `step`) to start at.
          bucket: sort similar lengths into a batch (less padding); drop_remainder: whole batches only
            (several replicas); static_length: pad to `seq_length` (TPUs).
          shuffle: False reads the examples in their order.
        Returns:
          A dataset of (inputs, targets) batches (the loop adds per-example weights when asked).
        """
        raise NotImplementedError(f"{type(self).__name__} does not train through the one loop")

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        """(inputs, targets) batches of `examples` in their order, once, for validation and `outputs_on`."""
        raise NotImplementedError(f"{type(self).__name__} does not evaluate through the one loop")

    def outputs_on(self, dataset: tf.data.Dataset):
        """The model's outputs on every batch of `dataset` (inputs, targets), in order, on this process
        (the loop scores the validation set with them)."""
        return predict_outputs(self, dataset)

    def encode_examples(self, x, y=None, batch_size: int = DEFAULT_BATCH_SIZE, shuffle: bool = False,
                        seed: int = 0, sample_weight=None) -> tf.data.Dataset:
        """Batches of model inputs (and targets, and per-example weights when given) from raw examples;
        subclasses that take text override it."""
        raise ConfigError(f"{type(self).__name__} takes model inputs, not raw examples")

    def encode_dataset(self, dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
        """A tf.data dataset of (strings, labels) as batches of model inputs; models that tokenise override it."""
        raise ConfigError(f"{type(self).__name__} cannot read a tf.data dataset of strings")

    # -- which variables train: the LayerGroupOptimizer's business --------------------------------------
    def step_variables(self) -> list[tf.Variable]:
        """Trainable variables minus those of frozen groups and those the mode never trains."""
        return self.group_optimizer.step_variables(self.trainable_variables)

    def training_groups(self) -> list[str]:
        """The layer groups the next step updates (gradual unfreezing adds one at a time)."""
        return self.group_optimizer.training_groups(self.trainable_variables)

    def group_learning_rates(self, step: int | None = None) -> dict[str, float]:
        """The learning rate of each layer group at optimizer step `step` (default: the current one; 0 while
        frozen), and `head`'s: the variables outside the groups (the head, a layer mix, an RNN)."""
        if self.optimizer is None:
            return {}
        step = int(self.optimizer.iterations.numpy()) if step is None else int(step)
        return self.group_optimizer.learning_rates(self.optimizer, self.trainable_variables, step)

    def set_frozen_groups(self, groups) -> None:
        """Freezes exactly `groups`; takes effect at the next step, also in the middle of `fit`."""
        groups = self.group_optimizer.checked_groups(groups, self.name)
        if groups != self.frozen_groups:
            self.frozen_groups = groups
            self._retrace()
        if self.group_optimizer.update_head_rate(self.encoder_frozen()):
            self._retrace()

    def freeze(self) -> None:
        """Trains the head only (every encoder layer group frozen; the encoder keeps its dropout)."""
        self.freeze_to(len(self.group_optimizer.order(self.name)))

    def unfreeze(self) -> None:
        """Trains everything."""
        self._make_encoder_trainable()
        self.set_frozen_groups(())

    def freeze_to(self, k: int) -> None:
        """Freezes the bottom `k` layer groups (embeddings first); a negative k counts from the top."""
        groups = self.group_optimizer.freeze_to(k, self.name)
        self._make_encoder_trainable()
        self.set_frozen_groups(groups)

    def encoder_frozen(self) -> bool:
        """Whether no encoder weight trains now (freeze mode, or every layer group frozen)."""
        encoder = self._encoder_layer()
        if not self.mode.encoder_trainable or (encoder is not None and not encoder.trainable):
            return True
        return self.group_optimizer.all_frozen()

    def _retrace(self) -> None:
        if getattr(self, "train_function", None) is not None:
            self.train_function = self.make_train_function(force=True)

    def _encoder_layer(self):
        try:
            return self.get_layer("encoder")
        except ValueError:
            return None

    def _make_encoder_trainable(self) -> None:
        """A model built in `freeze` mode runs its encoder untrainable; thawing it needs new optimizer slots."""
        encoder = self._encoder_layer()
        if encoder is not None and not encoder.trainable:
            encoder.trainable = True
            self._stale_compile = self._compile_options is not None
            self.train_function = None
