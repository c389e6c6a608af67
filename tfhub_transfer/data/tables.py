"""Labelled text in: CSV/TSV/JSONL files, pandas frames, TFDS names or tf.data.

Every check names the file, the column and the line, so a user can fix the
data without reading a TensorFlow stack trace.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tfhub_transfer.errors import DataError

MISSING_LABELS = {"", "nan", "NaN", "NA", "N/A", "null", "None"}
FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclasses.dataclass
class TextTable:
    """Rows of text (and optionally labels) with where each row came from."""

    texts: list[str]
    labels: list | None
    source: str
    locations: list[str]  # "line 12" or "row 'idx'", one per row
    texts_b: list[str] | None = None  # the second text of sentence pairs

    def __len__(self) -> int:
        return len(self.texts)

    def where(self, i: int) -> str:
        return f"{self.source}, {self.locations[i]}"

    def subset(self, indices: Sequence[int]) -> TextTable:
        return TextTable(
            [self.texts[i] for i in indices],
            None if self.labels is None else [self.labels[i] for i in indices],
            self.source,
            [self.locations[i] for i in indices],
            None if self.texts_b is None else [self.texts_b[i] for i in indices],
        )

    @property
    def inputs(self) -> tuple[list[str], ...]:
        """(texts,) or (texts, texts_b) for pairs."""
        return (self.texts,) if self.texts_b is None else (self.texts, self.texts_b)


def _decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte {data[err.start]:#04x} at offset "
            f"{err.start}). Re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
        ) from None


def _read_delimited(path: Path, text: str, sep: str) -> pd.DataFrame:
    import csv
    import io

    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, quoting=quoting, dtype=str, keep_default_na=False
        )
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: cannot parse as {'TSV' if sep == chr(9) else 'CSV'}: {err}") from None
    frame.index = [f"line {i + 2}" for i in range(len(frame))]
    return frame


def _read_jsonl(path: Path, text: str) -> pd.DataFrame:
    rows, locations = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {number} is not valid JSON ({err.msg}).") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is not a JSON object.")
        rows.append(row)
        locations.append(f"line {number}")
    return pd.DataFrame(rows, index=locations)


def read_frame(path: str | Path) -> pd.DataFrame:
    """Reads a CSV, TSV (unquoted) or JSONL file; the index holds each row's line."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist.")
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use .csv, .tsv or .jsonl.")
    text = _decode_utf8(path)
    if not text.strip():
        raise DataError(f"{path} is empty.")
    frame = _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(
        path, text, "\t" if kind == "tsv" else ","
    )
    if frame.empty:
        raise DataError(f"{path} has a header but no data rows.")
    return frame


def _require_columns(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: no column {missing[0]!r}. Available columns: {list(frame.columns)}. "
            f"Pick the right one with --text-column / --label-column."
        )


def _is_missing_label(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in MISSING_LABELS


def _check_texts(table: TextTable, texts: list, column: str) -> None:
    empty = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if empty:
        shown = ", ".join(table.locations[i] for i in empty[:5])
        raise DataError(
            f"{table.source}: column {column!r} is empty or whitespace in {len(empty)} row(s) "
            f"({shown}{', ...' if len(empty) > 5 else ''}). Remove those rows or fill them in."
        )


def _check_rows(table: TextTable, column: str, label_column: str | None, column_b: str | None) -> None:
    _check_texts(table, table.texts, column)
    if table.texts_b is not None:
        _check_texts(table, table.texts_b, column_b)
    if table.labels is None:
        return
    missing = [i for i, y in enumerate(table.labels) if _is_missing_label(y)]
    if missing:
        shown = ", ".join(table.locations[i] for i in missing[:5])
        raise DataError(
            f"{table.source}: column {label_column!r} has no label (empty/NaN) in "
            f"{len(missing)} row(s) ({shown}{', ...' if len(missing) > 5 else ''})."
        )


def _as_texts(values) -> list[str]:
    return [t if isinstance(t, str) else ("" if t is None else str(t)) for t in values]


def read_table(
    source: str | Path | pd.DataFrame,
    text_column: str = "text",
    label_column: str | None = "label",
    text_b_column: str | None = None,
) -> TextTable:
    """Reads text (a second text for pairs, and labels unless None) from a file, a DataFrame or TFDS.

    A TFDS dataset is named `tfds:NAME[:SPLIT]` (e.g. `tfds:glue/sst2:validation`; default
    split `train`), with `text_column` / `label_column` naming its features.
    """
    if isinstance(source, str) and source.startswith("tfds:"):
        name, _, split = source[len("tfds:"):].partition(":")
        table, names = load_tfds(name, split or "train", text_column, label_column)
        return table
    if isinstance(source, pd.DataFrame):
        frame, name = source, "DataFrame"
        frame = frame.set_axis([f"row {i!r}" for i in frame.index])
    else:
        frame, name = read_frame(source), str(source)
    columns = [text_column] + [c for c in (text_b_column, label_column) if c]
    _require_columns(frame, columns, name)
    labels = list(frame[label_column]) if label_column else None
    texts_b = _as_texts(frame[text_b_column]) if text_b_column else None
    table = TextTable(_as_texts(frame[text_column]), labels, name, [str(i) for i in frame.index], texts_b)
    _check_rows(table, text_column, label_column, text_b_column)
    return table


def label_key(value) -> str:
    """Labels compare as strings: 1, "1" and 1.0 from different files are the same class."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclasses.dataclass(frozen=True)
class LabelVocabulary:
    """The classes seen in training, in a stable order (numeric when all look numeric)."""

    names: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Sequence, source: str = "training data") -> LabelVocabulary:
        keys = sorted({label_key(y) for y in labels}, key=_sort_key)
        if len(keys) < 2:
            raise DataError(
                f"{source} has {len(keys)} distinct label(s) {keys}: a classifier needs at least 2."
            )
        return cls(tuple(keys))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, table: TextTable) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        keys = [label_key(y) for y in table.labels]
        unseen = [i for i, k in enumerate(keys) if k not in index]
        if unseen:
            bad = sorted({keys[i] for i in unseen})
            raise DataError(
                f"{table.source}: label(s) {bad} at {table.locations[unseen[0]]} "
                f"({len(unseen)} row(s)) never occur in the training data, whose labels are "
                f"{list(self.names)}. Add examples of them to training or drop those rows."
            )
        return np.asarray([index[k] for k in keys], dtype=np.int32)


def _sort_key(name: str):
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


@dataclasses.dataclass(frozen=True)
class MultiLabelVocabulary:
    """Label names for multi-label data, where a row's label is a separated list of names."""

    names: tuple[str, ...]
    separator: str = ","

    def split(self, value) -> list[str]:
        return [part.strip() for part in str(value).split(self.separator) if part.strip()]

    @classmethod
    def from_labels(cls, labels: Sequence, separator: str = ",", source: str = "training data"):
        names = sorted({name for y in labels for name in cls((), separator).split(y)}, key=_sort_key)
        if len(names) < 2:
            raise DataError(f"{source} has {len(names)} distinct label(s) {names}: need at least 2.")
        return cls(tuple(names), separator)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, table: TextTable) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.names)}
        out = np.zeros((len(table), len(self.names)), np.float32)
        for row, value in enumerate(table.labels):
            for name in self.split(value):
                if name not in index:
                    raise DataError(
                        f"{table.source}: label {name!r} at {table.locations[row]} never occurs in the "
                        f"training data ({len(self.names)} labels)."
                    )
                out[row, index[name]] = 1.0
        return out


def encode_scores(table: TextTable) -> np.ndarray:
    """Regression targets as float32, naming the first row that is not a number."""
    values = []
    for row, value in enumerate(table.labels):
        try:
            values.append(float(value))
        except (TypeError, ValueError):
            raise DataError(
                f"{table.source}: the target at {table.locations[row]} is {value!r}, not a number"
            ) from None
    return np.asarray(values, np.float32)


TASKS = ("single_label", "multi_label", "regression")


@dataclasses.dataclass
class Examples:
    """Texts (and second texts of pairs) with encoded targets: what a sentence task model trains on."""

    texts: list[str]
    targets: np.ndarray | None
    texts_b: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass
class LabelledSplits:
    """Training and validation text with encoded targets.

    `train_ids` / `valid_ids` hold class ids (single_label), multi-hot rows
    (multi_label) or floats (regression); `labels` is None for regression.
    """

    train: TextTable
    valid: TextTable
    train_ids: np.ndarray
    valid_ids: np.ndarray
    labels: LabelVocabulary | MultiLabelVocabulary | None
    task: str = "single_label"

    @property
    def train_examples(self) -> Examples:
        return Examples(self.train.texts, self.train_ids, self.train.texts_b)

    @property
    def valid_examples(self) -> Examples:
        return Examples(self.valid.texts, self.valid_ids, self.valid.texts_b)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names) if self.labels is not None else []


def split_validation(table: TextTable, fraction: float, seed: int) -> tuple[TextTable, TextTable]:
    """A shuffled hold-out split, used when no validation data is given."""
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, not {fraction}")
    order = np.random.default_rng(seed).permutation(len(table))
    n_valid = max(1, int(round(len(table) * fraction)))
    if len(table) - n_valid < 2:
        raise DataError(f"{table.source}: {len(table)} rows are too few to hold some out.")
    return table.subset(order[n_valid:].tolist()), table.subset(order[:n_valid].tolist())


def load_labelled(
    train: str | Path | pd.DataFrame,
    valid: str | Path | pd.DataFrame | None = None,
    text_column: str = "text",
    label_column: str = "label",
    validation_fraction: float = 0.1,
    max_train_examples: int | None = None,
    seed: int = 0,
    task: str = "single_label",
    text_b_column: str | None = None,
    label_separator: str = ",",
) -> LabelledSplits:
    """Reads, checks and encodes training (and validation) data for a task.

    `task` is `single_label`, `multi_label` (labels are `label_separator`-separated
    names) or `regression` (numeric targets); `text_b_column` makes sentence pairs.
    """
    if task not in TASKS:
        raise DataError(f"task must be one of {TASKS}, not {task!r}")
    train_table = read_table(train, text_column, label_column, text_b_column)
    if valid is None:
        train_table, valid_table = split_validation(train_table, validation_fraction, seed)
    else:
        valid_table = read_table(valid, text_column, label_column, text_b_column)
    if max_train_examples and len(train_table) > max_train_examples:
        keep = np.random.default_rng(seed).permutation(len(train_table))[:max_train_examples]
        train_table = train_table.subset(sorted(keep.tolist()))
    if task == "regression":
        return LabelledSplits(train_table, valid_table, encode_scores(train_table),
                              encode_scores(valid_table), None, task)
    if task == "multi_label":
        labels = MultiLabelVocabulary.from_labels(train_table.labels, label_separator, train_table.source)
    else:
        labels = LabelVocabulary.from_labels(train_table.labels, train_table.source)
    return LabelledSplits(
        train_table, valid_table, labels.encode(train_table), labels.encode(valid_table), labels, task
    )


def load_tfds(
    name: str, split: str, text_key: str = "sentence", label_key: str | None = "label",
    data_dir: str | None = None,
) -> tuple[TextTable, list[str] | None]:
    """Reads a prepared TFDS dataset (e.g. `glue/sst2`) into a TextTable.

    TFDS downloads need network; here the dataset must already be prepared in
    `data_dir` (or TFDS's default directory).
    """
    import tensorflow_datasets as tfds

    try:
        dataset, info = tfds.load(
            name, split=split, data_dir=data_dir, download=False, with_info=True
        )
    except Exception as err:  # TFDS raises several unrelated types here.
        raise DataError(
            f"TFDS dataset {name!r} (split {split!r}) is not available: {err}. Prepare it with "
            f"`tfds build {name}` on a machine with network access, then pass --tfds-data-dir."
        ) from None
    missing = [k for k in (text_key, label_key) if k and k not in info.features]
    if missing:
        raise DataError(f"TFDS dataset {name!r} has no feature {missing[0]!r}; it has "
                        f"{list(info.features)}. Pass --text-column / --label-column.")
    texts, labels = [], []
    for example in tfds.as_numpy(dataset):
        texts.append(example[text_key].decode("utf-8"))
        labels.append(int(example[label_key]) if label_key else None)
    if not label_key:
        return TextTable(texts, None, f"tfds:{name}[{split}]",
                         [f"example {i}" for i in range(len(texts))]), None
    feature = info.features[label_key]
    names = list(feature.names) if hasattr(feature, "names") else None
    if names:
        labels = [names[y] for y in labels]
    table = TextTable(texts, labels, f"tfds:{name}[{split}]", [f"example {i}" for i in range(len(texts))])
    return table, names
