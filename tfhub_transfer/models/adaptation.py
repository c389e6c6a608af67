"""Input adaptation for task models: raw texts, DataFrames and string datasets into the batches the graph
takes, with class weights folded into per-example weights (the validation of each form is models.inputs)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfhub_transfer.errors import ConfigError, TransferError
from tfhub_transfer.models.inputs import TEXT_FORMS, Given, as_values, check_scores, class_ids, normalise
from tfhub_transfer.preprocessing.text import AUTOTUNE
from tfhub_transfer.training.tasks import task_spec
from tfhub_transfer.training.weighting import (
    BALANCED,
    check_task,
    class_weights,
    parse_class_weight,
    with_class_weights,
)

DEFAULT_BATCH_SIZE = 32


def is_text(values) -> bool:
    """Whether `values` is a collection of strings (not one string, not numbers or model inputs)."""
    if isinstance(values, (str, bytes)):
        return False
    if isinstance(values, np.ndarray):
        return values.dtype.kind in "USO"
    try:
        first = next(iter(values))
    except (TypeError, StopIteration):
        return False
    return isinstance(first, str)


class InputAdaptation:
    """Mixin of `TaskModel`: reading `fit` / `evaluate` / `predict` / `lr_find` input in every form (see
    models.inputs) and turning it into model inputs through the model's own `encode_examples` /
    `encode_dataset`."""

    def encode_labels(self, y) -> np.ndarray | None:
        """Class ids from label names (or ids) for single-label tasks; subclasses extend it."""
        if y is None:
            return None
        values = as_values(y, "y")
        if task_spec(self.task).target == "class":
            return class_ids(values, self.num_outputs, self.label_names)
        if task_spec(self.task).target == "number":
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
            if task_spec(self.task).per_token:
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
            return any(is_text(v) for v in x.values())
        if isinstance(x, tuple):
            return any(is_text(v) for v in x)
        return is_text(x)

    def _takes_strings(self, dataset: tf.data.Dataset) -> bool:
        spec = dataset.element_spec
        first = spec[0] if isinstance(spec, tuple) else spec
        leaves = tf.nest.flatten(first)
        return self.preprocessor is not None and all(s.dtype == tf.string for s in leaves)


def streamed_batches(examples, batch_size: int, epochs: int, seed: int, start, drop_remainder: bool,
                     shuffle: bool, encode=None) -> tf.data.Dataset:
    """The raw (texts, targets) batches a streamed source gives for this stretch of training, mapped through
    `encode` (a model's own per-batch encoding; None: the strings as they are).

    Args:
      examples: a streamed source: `streamed` is true and `batches(batch_size=, epochs=, seed=, start_epoch=,
        start_step=, drop_remainder=, shuffle=)` gives batched (texts, targets) or ((texts_a, texts_b), targets).
      start: a ResumePoint (`epoch`, `step`).
      encode: (texts, targets) -> (inputs, targets), mapped over the batches.
    Returns:
      The batches, prefetched.
    """
    raw = examples.batches(batch_size=batch_size, epochs=epochs, seed=seed, start_epoch=start.epoch,
                           start_step=start.step, drop_remainder=drop_remainder, shuffle=shuffle)
    if encode is not None:
        raw = raw.map(encode, num_parallel_calls=AUTOTUNE)
    return raw.prefetch(AUTOTUNE)
