"""Class weights and per-example sample weights, for imbalanced data.

`--class-weight balanced` weights each class by n / (classes x count), as scikit-learn
does; `--class-weight pos=3,neg=1` sets them (unnamed classes keep 1). Per-example weights
come from a data column (`--weight-column`). Both multiply into one weight per training
example, which rides through the tf.data pipeline: the stream is built on example positions
and each batch looks its targets and weights up by position (`SampleWeighting.apply`), so
every task model's own training stream (text, raw strings, cached features) carries them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.tasks import task_spec

BALANCED = "balanced"


def parse_class_weight(spec) -> str | dict:
    """`balanced`, a dict, or `label=weight,...` parsed to a dict (labels still as written)."""
    if spec is None or isinstance(spec, Mapping):
        weights = dict(spec or {})
    elif str(spec).strip() == BALANCED:
        return BALANCED
    else:
        weights = {}
        for part in str(spec).split(","):
            label, sep, value = part.rpartition("=")
            if not sep or not label.strip():
                raise ConfigError(f"--class-weight {spec!r}: write 'balanced' or label=weight pairs separated "
                                  "by commas, e.g. positive=1,negative=5")
            try:
                weights[label.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"--class-weight {spec!r}: {value!r} is not a number") from None
    for label, value in weights.items():
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ConfigError(f"--class-weight: the weight of {label!r} must be a finite number >= 0, not {value!r}")
    return weights


def check_task(task: str, what: str = "--class-weight") -> None:
    """Refuses class weights for a task whose spec says they do not apply (no classes to weigh)."""
    reason = task_spec(task).no_class_weights
    if reason:
        raise ConfigError(f"{what} does not apply to --task {task}: {reason}")


def class_weights(spec, ids: np.ndarray, num_classes: int, label_names: Sequence[str] | None = None) -> np.ndarray:
    """One weight per class id: `balanced` from the class counts in `ids`, or the given per-label weights."""
    parsed = parse_class_weight(spec)
    if parsed == BALANCED:
        counts = np.bincount(np.asarray(ids, np.int64), minlength=num_classes).astype(np.float64)
        return (counts.sum() / (num_classes * np.maximum(counts, 1))).astype(np.float32)
    weights = np.ones(num_classes, np.float32)
    for label, value in parsed.items():
        weights[_class_id(label, num_classes, label_names)] = value
    return weights


def _class_id(label, num_classes: int, label_names: Sequence[str] | None) -> int:
    names = [str(n) for n in label_names or []]
    if str(label) in names:
        return names.index(str(label))
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool) and 0 <= label < num_classes:
        return int(label)  # a class id, as Keras' class_weight takes them
    if not names and str(label).isdigit() and int(label) < num_classes:
        return int(label)
    known = names or list(range(num_classes))
    raise ConfigError(f"--class-weight names {label!r}, which is not a class of this model; classes: {known}")


@dataclasses.dataclass
class SampleWeighting:
    """The training examples' targets and one weight per example, applied to a stream built on positions."""

    targets: np.ndarray
    weights: np.ndarray

    def indexed(self, examples):
        """The same examples with their positions as targets (the stream then carries positions)."""
        return dataclasses.replace(examples, targets=np.arange(len(self.weights), dtype=np.int64))

    def apply(self, dataset: tf.data.Dataset) -> tf.data.Dataset:
        """(inputs, positions) batches -> (inputs, targets, weights)."""
        targets, weights = tf.constant(self.targets), tf.constant(self.weights, tf.float32)
        return dataset.map(lambda x, positions: (x, tf.gather(targets, positions), tf.gather(weights, positions)),
                           num_parallel_calls=tf.data.AUTOTUNE)


def sample_weighting(model, examples, class_weight=None) -> SampleWeighting | None:
    """The weighting of `model`'s training `examples` (their per-example `weights` times the class
    weights), or None when neither is given."""
    column = getattr(examples, "weights", None)
    if class_weight is None and column is None:
        return None
    task = model.task
    if class_weight is not None:
        check_task(task)
    if column is not None and task_spec(task).per_token:
        raise ConfigError(f"--weight-column does not apply to --task {task}: it weights sentence-level examples")
    targets = np.asarray(examples.targets)
    weights = np.ones(len(examples), np.float32) if column is None else np.asarray(column, np.float32)
    if class_weight is not None:
        weights = weights * class_weights(class_weight, targets, model.num_outputs, model.label_names)[targets]
    return SampleWeighting(targets, weights)


def with_class_weights(dataset: tf.data.Dataset, per_class: Sequence[float]) -> tf.data.Dataset:
    """Batches of (inputs, class ids[, weights]) -> (inputs, class ids, weights x the class's weight)."""
    table = tf.constant(np.asarray(per_class, np.float32))

    def weigh(*element):
        x, y, weights = tf_keras.utils.unpack_x_y_sample_weight(element)
        by_class = tf.gather(table, tf.reshape(tf.cast(y, tf.int32), [-1]))
        return x, y, by_class if weights is None else by_class * tf.reshape(tf.cast(weights, tf.float32), [-1])

    return dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)
