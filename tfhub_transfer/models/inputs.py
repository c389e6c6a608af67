"""What the Python API's `fit` / `evaluate` / `predict` take, checked once and brought to one form.

A sentence model takes texts as a list, tuple, NumPy array, pandas Series or string tensor; a
pandas DataFrame with `text` (and `label`, and `text_b` for pairs) columns; or a tf.data dataset
of `strings`, `(strings, labels)` or `(strings, labels, weights)` elements, batched or not (for
pairs `((a, b), labels)`). Every one becomes `Given`: texts (and second texts), labels and weights
as lists, so the model's input pipeline sees one form. Encoder inputs (a dict of id arrays, a
dataset of them) pass through untouched. Anything else is refused with one error naming the
argument, the form received and the forms accepted, and with Python argument names (never flags).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from tfhub_transfer.config import field_default
from tfhub_transfer.errors import ConfigError, DataError

PAIR_COLUMN = "text_b"  # a DataFrame's second text for sentence-pair models
TEXT_FORMS = ("a list, tuple, NumPy array or pandas Series of strings; a pandas DataFrame with a 'text' column "
              "(and 'label'); or a tf.data dataset of strings, (strings, labels) or (strings, labels, weights), "
              "batched or not")
PAIR_FORMS = ("(texts_a, texts_b); {'text_a': ..., 'text_b': ...}; a pandas DataFrame with 'text' and 'text_b' "
              "columns (and 'label'); or a tf.data dataset of ((a, b), labels) or ((a, b), labels, weights), "
              "batched or not")
PREDICTING = ("predict", "predict_labels")
_MATERIALISE_BATCH = 1024  # unbatched datasets are read this many elements at a time


@dataclasses.dataclass
class Given:
    """The inputs of one call, in one form: `x` is texts, (texts, texts_b) or the model inputs as given."""

    x: Any
    y: Any = None
    sample_weight: Any = None
    raw: bool = True  # texts (False: model inputs, left to Keras)
    batch_size: int | None = None  # a batched dataset's own batch size
    from_dataset: bool = False

    @property
    def count(self) -> int:
        return len(self.x[0] if isinstance(self.x, tuple) else self.x)


def _shorten(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _forms(pair: bool) -> str:
    return PAIR_FORMS if pair else TEXT_FORMS


# ------------------------------------------------------------------ model-building arguments


def check_num_classes(num_classes, argument: str = "num_classes", regression: bool = False) -> int:
    """A whole number of classes >= 2 (1 for regression), or a ConfigError naming `argument`.

    Args:
      num_classes: the value received.
      argument: the Python argument it came from (named in the error).
      regression: whether one output is allowed.
    Returns:
      The number as a Python int.
    Example:
      >>> check_num_classes(3)
      3
    """
    least = 1 if regression else 2
    whole = isinstance(num_classes, numbers.Integral) and not isinstance(num_classes, (bool, np.bool_))
    if not whole or num_classes < least:
        raise ConfigError(f"{argument}={_shorten(num_classes)}: must be a whole number >= {least} (an int such "
                          f"as {argument}=2), not {type(num_classes).__name__} {_shorten(num_classes)}")
    return int(num_classes)


def check_label_names(labels, argument: str = "labels") -> list[str] | None:
    """Class names as a plain list of distinct non-empty strings (None stays None), or a ConfigError.

    Args:
      labels: the names received (their order defines the class ids 0..n-1).
      argument: the Python argument they came from.
    Returns:
      The names as a list of str, or None.
    Example:
      >>> check_label_names(("neg", "pos"))
      ['neg', 'pos']
    """
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, (Sequence, np.ndarray, pd.Series)):
        raise ConfigError(f"{argument}={_shorten(labels)}: give the class names as a list of strings, e.g. "
                          f"{argument}=['neg', 'pos']")
    names = list(labels)
    wrong = [name for name in names if not isinstance(name, str) or not name.strip()]
    if wrong:
        raise ConfigError(f"{argument}: every class name must be a non-empty string, not {_shorten(wrong[0])}; "
                          f"e.g. {argument}=['neg', 'pos'] (for integer class ids give num_classes=N)")
    if len(names) < 2:
        raise ConfigError(f"{argument}={names}: a classifier needs at least 2 class names")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ConfigError(f"{argument} names {repeated[0]!r} more than once ({names}); give each class once")
    return [str(name) for name in names]


# ------------------------------------------------------------------ texts


def check_texts(values, argument: str = "x") -> list[str]:
    """Texts as a list of str: bytes are decoded as UTF-8; anything else is one error naming `argument[i]`.

    Args:
      values: a list, tuple, NumPy array, pandas Series or tensor of strings.
      argument: the Python argument they came from.
    Returns:
      The texts.
    Example:
      >>> check_texts([b"caf\\xc3\\xa9", "ok"])
      ['café', 'ok']
    """
    if isinstance(values, tf.Tensor):
        values = values.numpy().reshape(-1) if values.dtype == tf.string else values.numpy()
    texts = []
    for i, value in enumerate(values):
        texts.append(_one_text(value, f"{argument}[{i}]", argument))
    return texts


def _one_text(value, where: str, argument: str) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{where} is bytes that are not UTF-8 ({err.reason} at byte {err.start}); decode "
                            f"the texts yourself and pass str") from None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:  # a lone surrogate such as "\ud800": TensorFlow cannot take it
            raise DataError(f"{where} holds {value[err.start]!r} at character {err.start}, which is not "
                            "valid Unicode text (a lone surrogate); remove it or decode the source with "
                            "errors='replace'") from None
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(f"{where} is {value!r}: every example needs a text (use '' for an empty one)")
    raise ConfigError(f"{argument} must be strings: {where} is {type(value).__name__} {_shorten(value)}")


# ------------------------------------------------------------------ labels and weights


def check_lengths(name: str, values, count: int, argument: str = "x") -> None:
    """One value per text, or a DataError naming both lengths."""
    if len(values) != count:
        raise DataError(f"{argument} holds {count} texts but {name} holds {len(values)} values: give exactly "
                        f"one per text")


def as_values(values, argument: str) -> list | np.ndarray:
    """Labels or weights as a list or array (Series and tensors unwrapped); a lone value is refused."""
    if isinstance(values, (pd.Series, pd.Index)):
        values = values.to_numpy()
    if isinstance(values, tf.Tensor):
        values = values.numpy()
    lone = isinstance(values, np.ndarray) and values.ndim == 0
    if isinstance(values, (str, bytes)) or lone or not hasattr(values, "__len__"):
        raise ConfigError(f"{argument}={_shorten(values)}: give one value per text as a list or array, not a "
                          "single value")
    if isinstance(values, np.ndarray):
        return values
    return list(values)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and math.isnan(value))


def check_no_missing(values, argument: str = "y") -> None:
    """No None / NaN among labels, or a DataError naming the first."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return
    for i, value in enumerate(values):
        if _missing(value):
            raise DataError(f"{argument}[{i}] is {value!r}: every text needs a label; drop that example or "
                            "fill its label in")


def class_ids(values, num_classes: int, label_names: Sequence[str] | None, argument: str = "y") -> np.ndarray:
    """Single-label targets as int32 class ids 0..num_classes-1, from label names or whole numbers.

    Args:
      values: label names (str or UTF-8 bytes) or class ids (ints, or floats equal to ints).
      num_classes: how many classes the model has.
      label_names: the model's class names (class id i is label_names[i]).
      argument: the Python argument they came from.
    Returns:
      The class ids.
    Example:
      >>> class_ids([1, 0.0], 2, ["neg", "pos"]).tolist()
      [1, 0]
    """
    check_no_missing(values, argument)
    values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    if any(isinstance(v, str) for v in values):
        return _ids_of_names(values, label_names, argument)
    ids = []
    for i, value in enumerate(values):
        whole = isinstance(value, numbers.Number) and not isinstance(value, complex) and float(value).is_integer()
        if not whole or not 0 <= value < num_classes:
            what = f"{type(value).__name__} {_shorten(value)}"
            raise DataError(f"{argument}[{i}] is {what}: a single-label model takes class ids 0..{num_classes - 1} "
                            f"(whole numbers) or its label names {list(label_names or [])}; for numeric scores "
                            "build the model with task='regression'")
        ids.append(int(value))
    return np.asarray(ids, np.int32)


def _ids_of_names(values, label_names, argument: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names or [])}
    for i, value in enumerate(values):
        if not isinstance(value, str) or value not in index:
            raise DataError(f"{argument}[{i}] is {_shorten(value)}, not one of the model's labels "
                            f"{list(label_names or [])}; give label names (or class ids 0..{len(index) - 1}) only")
    return np.asarray([index[v] for v in values], np.int32)


def check_scores(values, argument: str = "y") -> np.ndarray:
    """Regression targets as finite float32 numbers, or a DataError naming the first that is not."""
    check_no_missing(values, argument)
    out = []
    for i, value in enumerate(values):
        ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
        if not ok:
            raise DataError(f"{argument}[{i}] is {type(value).__name__} {_shorten(value)}: a regression model "
                            "takes finite numbers as targets")
        out.append(float(value))
    return np.asarray(out, np.float32)


def check_weights(values, count: int, argument: str = "sample_weight") -> np.ndarray:
    """One finite weight >= 0 per text, as float32."""
    values = as_values(values, argument)
    check_lengths(argument, values, count)
    try:
        weights = np.asarray(values, np.float64).reshape(-1)
    except (TypeError, ValueError):
        weights = np.full(len(values), np.nan)
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights >= 0)))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{argument}[{i}] is {_shorten(values[i])}: weights must be finite numbers >= 0")
    return weights.astype(np.float32)


# ------------------------------------------------------------------ the forms x comes in


def is_model_inputs(x) -> bool:
    """Encoder inputs rather than texts: a dict of numbers, or a dataset whose inputs are not strings."""
    if isinstance(x, dict):
        return not any(_looks_textual(v) for v in x.values())
    if isinstance(x, tf.data.Dataset):
        return not dataset_of_strings(x)
    return False


def _looks_textual(values) -> bool:
    if isinstance(values, (str, bytes)):
        return True
    if isinstance(values, (np.ndarray, pd.Series)):
        return values.dtype.kind in "USO"
    if isinstance(values, tf.Tensor):
        return values.dtype == tf.string
    return isinstance(values, (list, tuple)) and bool(values) and isinstance(values[0], (str, bytes))


def dataset_of_strings(dataset: tf.data.Dataset) -> bool:
    """Whether a dataset's inputs (the first part of its elements) are strings."""
    spec = dataset.element_spec
    first = spec[0] if isinstance(spec, tuple) else spec
    leaves = tf.nest.flatten(first)
    return bool(leaves) and all(getattr(s, "dtype", None) == tf.string for s in leaves)


def normalise(x, y=None, sample_weight=None, *, pair: bool = False, method: str = "fit") -> Given:
    """Any accepted form of `x` (with `y`, `sample_weight`) as texts, labels and weights, checked.

    Args:
      x, y, sample_weight: as given to `method`.
      pair: whether the model reads sentence pairs.
      method: the public method called (`fit`, `evaluate`, `predict`, ...), named in errors.
    Returns:
      `Given`; `raw` is False for encoder inputs, which pass through untouched.
    Example:
      >>> normalise("one text", method="predict").x
      ['one text']
    """
    if x is None:
        raise ConfigError(f"{method}(x=None): pass the texts as x: {_forms(pair)}")
    if is_model_inputs(x):
        return Given(x, y, sample_weight, raw=False)
    if isinstance(x, tf.data.Dataset):
        given = _from_dataset(x, y, sample_weight, pair, method)
    elif isinstance(x, pd.DataFrame):
        given = _from_frame(x, y, sample_weight, pair, method)
    else:
        given = Given(_texts_of(x, pair, method), y, sample_weight)
    return _checked(given, method)


def _texts_of(x, pair: bool, method: str):
    """texts, or (texts, texts_b) for pairs, from the forms that hold texts alone."""
    if isinstance(x, (str, bytes)):
        if method in PREDICTING and not pair:
            return [_one_text(x, "x", "x")]  # a batch of one, as documented on predict
        raise ConfigError(f"{method}(x={_shorten(x)}): x is one string; pass a list of texts (one per example)"
                          + ("" if method in PREDICTING else ", with y a list of their labels"))
    if pair:
        if isinstance(x, dict) and set(x) >= {"text_a", "text_b"}:
            return check_texts(x["text_a"], "x['text_a']"), check_texts(x["text_b"], "x['text_b']")
        if isinstance(x, (tuple, list)) and len(x) == 2 and all(_sequence(part) for part in x):
            return check_texts(x[0], "x[0]"), check_texts(x[1], "x[1]")
        raise ConfigError(f"{method}(): a sentence-pair model takes x as {PAIR_FORMS}; got {type(x).__name__}")
    if isinstance(x, dict):
        raise ConfigError(f"{method}(): x is a dict of texts {sorted(x)[:4]}; a single-text model takes "
                          f"{TEXT_FORMS} (or a dict of encoder inputs)")
    if not _sequence(x):
        raise ConfigError(f"{method}(x=...): got {type(x).__name__} {_shorten(x)}; x must be {TEXT_FORMS}")
    return check_texts(x, "x")


def _sequence(values) -> bool:
    return isinstance(values, (list, tuple, np.ndarray, pd.Series, pd.Index)) or (
        isinstance(values, tf.Tensor) and values.shape.rank == 1)


def _from_frame(frame: pd.DataFrame, y, sample_weight, pair: bool, method: str) -> Given:
    """A DataFrame's `text` (and `text_b`) column, and its `label` column unless `y` is given."""
    text, label = field_default("text_column"), field_default("label_column")
    wanted = [text, PAIR_COLUMN] if pair else [text]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataError(f"{method}(): the DataFrame x has no column {missing[0]!r} (it has {list(frame.columns)}); "
                        f"name the text column {text!r}" + (f" and the second text {PAIR_COLUMN!r}" if pair else "")
                        + f" and the labels {label!r}, or pass the columns: {method}(df['my_text'], df['my_label'])")
    texts = check_texts(frame[text], f"x[{text!r}]")
    x = (texts, check_texts(frame[PAIR_COLUMN], f"x[{PAIR_COLUMN!r}]")) if pair else texts
    if y is None and label in frame.columns and method not in PREDICTING:
        y = frame[label].to_numpy()
    return Given(x, y, sample_weight)


def _from_dataset(dataset: tf.data.Dataset, y, sample_weight, pair: bool, method: str) -> Given:
    """Reads a finite dataset of strings (batched or not) into texts, labels and weights."""
    if y is not None or sample_weight is not None:
        raise ConfigError(f"{method}(): with a tf.data dataset as x the labels (and weights) go inside it, as "
                          "(strings, labels[, weights]) elements; drop y / sample_weight")
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ConfigError(f"{method}(): the tf.data dataset x repeats forever; drop .repeat() and set epochs "
                          "instead")
    parts, batched = _dataset_layout(dataset, pair, method)
    stream = dataset if batched else dataset.batch(_MATERIALISE_BATCH)
    columns: list[list] = [[] for _ in parts]
    first_batch = None
    for element in stream.as_numpy_iterator():
        flat = element if isinstance(element, tuple) else (element,)
        flat = tf.nest.flatten(flat)
        first_batch = first_batch or len(flat[0])
        for column, values in zip(columns, flat):
            column.extend(values.tolist() if isinstance(values, np.ndarray) else [values])
    named = dict(zip(parts, columns))
    texts = check_texts(named["texts"], "x")
    x = (texts, check_texts(named["texts_b"], "x[1]")) if pair else texts
    return Given(x, named.get("labels"), named.get("weights"), batch_size=first_batch if batched else None,
                 from_dataset=True)


def _dataset_layout(dataset: tf.data.Dataset, pair: bool, method: str) -> tuple[list[str], bool]:
    """The names of an element's flattened parts, and whether its elements are batches."""
    spec = dataset.element_spec
    parts = spec if isinstance(spec, tuple) else (spec,)
    if pair and len(parts) == 2 and all(getattr(p, "dtype", None) == tf.string for p in parts):
        parts = (parts,)  # (a, b) elements: a pair of texts without labels
    texts = parts[0]
    if pair and isinstance(texts, tuple) and len(texts) == 2:
        names = ["texts", "texts_b"]
    elif not pair and isinstance(texts, tf.TensorSpec):
        names = ["texts"]
    else:
        raise ConfigError(f"{method}(): the tf.data dataset x has elements {spec}; it must hold "
                          + (PAIR_FORMS if pair else TEXT_FORMS))
    if len(parts) > 3:
        raise ConfigError(f"{method}(): the tf.data dataset x has {len(parts)} parts per element; give "
                          "(strings, labels) or (strings, labels, weights)")
    names += ["labels", "weights"][: len(parts) - 1]
    rank = tf.nest.flatten(texts)[0].shape.rank
    if rank not in (0, 1):
        raise ConfigError(f"{method}(): the tf.data dataset x holds strings of shape {tf.nest.flatten(texts)[0].shape};"
                          " give one string per example (shape ()) or batches of them (shape (None,))")
    return names, rank == 1


def _checked(given: Given, method: str) -> Given:
    """Labels and weights as lists, one per text; fit and evaluate need labels and at least one text."""
    count = given.count
    if method not in PREDICTING:
        if count == 0:
            raise DataError(f"{method}(): x holds no texts; give at least one example")
        if given.y is None:
            raise DataError(f"{method}() needs the labels: pass y (one per text), a DataFrame with a "
                            f"{field_default('label_column')!r} column, or a dataset of (strings, labels)")
    if given.y is not None:
        given.y = as_values(given.y, "y")
        check_lengths("y", given.y, count)
        check_no_missing(given.y)
    if given.sample_weight is not None:
        given.sample_weight = check_weights(given.sample_weight, count)
    return given
