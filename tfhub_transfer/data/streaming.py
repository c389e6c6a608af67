"""Labelled text larger than memory: CSV/TSV/JSONL files read in chunks into `tf.data`.

`load_streamed` is the streaming twin of `tables.load_labelled`. One counting pass reads the files in
chunks with the in-memory reader's own checks (`tables`), so a bad row is the same one `DataError`
naming the file, line and column; it counts the rows and builds the label vocabulary in the same order.
With `label_names` given the pass is skipped: the rows are counted from the newlines (a byte scan, no
parsing), and a label outside the names stops training with an error naming `--label-names`.

Training then streams the rows through `tf.data` (the files are never held whole): a glob
(`train-*.csv`) is read as shards, rows are shuffled over a bounded buffer (seeded), and under a
multi-worker strategy each worker reads its own files (`AutoShardPolicy.FILE`, one file: `DATA`).
Validation is held out by a rule on each row's index in its file (row i is held out when a 32-bit hash
of i falls below `fraction`: about rows * fraction rows, scattered, so a file whose rows follow a pattern
still gives a fair sample), so every worker and every epoch agree without a shuffled index in memory.

The models consume the streaming protocol: `streamed`, `batches(...)` (already batched raw strings and
encoded targets), `evaluation_batches(...)`, `len()` and `labels`.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import itertools
import json
import operator
import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from tfhub_transfer.data.tables import (
    _MISSING,
    FORMATS,
    TASKS,
    LabelVocabulary,
    MultiLabelVocabulary,
    TextTable,
    _allow_fields_of,
    _class_index,
    _header_names,
    _labels,
    _line_at,
    _read_jsonl,
    _require_columns,
    _shown,
    _texts,
    collector_paused,
    delimited_rows,
    encode_scores,
    label_key,
    label_keys,
)
from tfhub_transfer.errors import DataError

CHUNK_BYTES = 1 << 20  # bytes read at a time by the counting pass (its memory: a few times this)
CHUNK_ROWS = 50_000  # rows checked at a time (the in-memory reader's checks, on a chunk)
WINDOW_ROWS = 16_384  # shuffling: rows permuted together (a window), ...
WINDOWS = 4  # ... and windows in the buffer whose order is shuffled: 64k rows, a few MB of short texts
LINES_PER_PARSE = 1024  # lines split (TSV) or decoded (JSONL) together in the tf.data pipeline
AUTOTUNE = tf.data.AUTOTUNE


# ---------------------------------------------------------------- files


def expand_files(pattern: str) -> list[str]:
    """The files a path or glob names (through tf.io.gfile, so URLs work), sorted: one shard each.

    Example:
        >>> expand_files("data/train-*.csv")  # doctest: +SKIP
        ['data/train-00.csv', 'data/train-01.csv']
    """
    pattern = str(pattern)
    if any(c in pattern for c in "*?["):
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise DataError(f"{pattern} matches no file. Check the directory and the pattern (e.g. train-*.csv).")
    else:
        if not tf.io.gfile.exists(pattern):
            raise DataError(f"{pattern} does not exist.")
        files = [pattern]
    for path in files:
        if tf.io.gfile.isdir(path):
            raise DataError(f"{path} is a directory, not a file. Pass the .csv, .tsv or .jsonl file inside it.")
    kinds = {_kind_of_file(path) for path in files}
    if len(kinds) > 1:
        raise DataError(f"{pattern} matches files of several types {sorted(kinds)}; give one type per pattern.")
    return files


def _kind_of_file(path: str) -> str:
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    kind = FORMATS.get(suffix)
    if kind is None:
        raise DataError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl.")
    return kind


def _decoded(path: str, data: bytes, first_line: int, offset: int) -> str:
    """`data` (whole lines of `path`, starting at line `first_line`, byte `offset`) as text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = first_line - 1 + _line_at(data, err.start)
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte {data[err.start]:#04x} at offset "
            f"{offset + err.start}). Re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
        ) from None


def _check_not_utf16(path: str, sample: bytes) -> None:
    # The in-memory reader's test (tables.read_text_file): a UTF-16 byte-order mark or zero bytes.
    alternate = len(sample) >= 8 and max(sample[0::2].count(0), sample[1::2].count(0)) * 10 >= len(sample) // 2 * 9
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or alternate:
        raise DataError(
            f"{path} looks like UTF-16 (or binary) text, not UTF-8. Re-save it as UTF-8, "
            f"e.g. `iconv -f utf-16 -t utf-8`."
        )


def read_lines(path: str, chunk_bytes: int | None = None) -> Iterator[str]:
    """The lines of `path` (endings kept, as `readlines` splits them), read `chunk_bytes` at a time.

    Args:
        path: a local path or URL (tf.io.gfile).
        chunk_bytes: how much to read at a time (default CHUNK_BYTES); memory stays within a few times this.

    Returns:
        An iterator of decoded lines; a leading byte-order mark is dropped.
    """
    for _, lines in read_blocks(path, chunk_bytes):
        yield from lines


def read_blocks(path: str, chunk_bytes: int | None = None) -> Iterator[tuple[int, list[str]]]:
    """`read_lines` a block at a time: (the block's first line number, its lines)."""
    line, offset, rest, first = 1, 0, b"", True
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            while True:
                chunk = handle.read(chunk_bytes)
                data = rest + chunk
                if first:
                    _check_not_utf16(path, data[:4096])
                if not data:
                    return
                cut = data.rfind(b"\n") + 1 if chunk else len(data)
                if cut == 0:
                    rest = data
                    continue
                block, rest = data[:cut], data[cut:]
                text = _decoded(path, block, line, offset)
                if first and text.startswith("\ufeff"):
                    text = text[1:]
                first = False
                lines = io.StringIO(text, newline="").readlines()
                yield line, lines
                line, offset = line + len(lines), offset + len(block)
                if not chunk:
                    return
    except tf.errors.OpError as err:
        raise DataError(f"{path} cannot be read ({err.message}).") from None


# ---------------------------------------------------------------- the counting pass


class _Lines(Sequence):
    """'line N' for each row of a chunk, made only when a check names one (the checks index them)."""

    def __init__(self, numbers: Sequence[int]):
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [f"line {n}" for n in self.numbers[i]]
        return f"line {self.numbers[i]}"


@dataclasses.dataclass
class _Chunk:
    """Some rows of one file: the wanted columns' values and each row's line."""

    columns: dict[str, list]
    lines: list[int]


_MASK32 = 0xFFFFFFFF
_MIX = 0x45D9F3B  # below 2**27: a 32-bit value times it stays inside int64, so numpy and TF agree exactly
_OFFSET = 0x9E3779B9  # so that row 0 does not hash to 0 (always held out)


def _row_hash(at, ops=np):
    """A 32-bit hash of row indices (int64), the same in numpy and TensorFlow (`ops=tf.bitwise`-style ops).

    Two rounds of xor-shift-multiply, everything below 2**59. Checked on a million rows: every window of
    300 or 10,000 rows holds out a binomial share (std 5.2 and 32 at a tenth), even and odd rows alike.
    """
    shift, xor, mask = (np.right_shift, np.bitwise_xor, np.bitwise_and) if ops is np else \
        (tf.bitwise.right_shift, tf.bitwise.bitwise_xor, tf.bitwise.bitwise_and)
    x = mask(xor(at, shift(at, 32)) + _OFFSET, _MASK32)
    for _ in range(2):
        x = mask(xor(shift(x, 16), x) * _MIX, _MASK32)
    return xor(shift(x, 16), x)


def _held_out_below(fraction: float) -> int:
    return int(fraction * (1 << 32))


def held_out(index: int, fraction: float) -> bool:
    """Whether row `index` of a file is held out for validation: its hashed index falls below `fraction`.

    A hash, not every k-th row, so a file whose rows repeat a pattern (the classes in turn, a sorted
    export of several sources) still gives a validation set drawn from all of it.

    Example:
        >>> sum(held_out(i, 0.1) for i in range(10_000))
        979
    """
    return bool(held_out_mask(index, 1, fraction)[0])


def held_out_mask(start: int, count: int, fraction: float) -> np.ndarray:
    """`held_out` of rows start..start+count-1, at once."""
    if fraction <= 0:
        return np.zeros(count, bool)
    return _row_hash(np.arange(start, start + count, dtype=np.int64)) < _held_out_below(fraction)


def held_out_count(rows: int, fraction: float) -> int:
    """How many of a file's first `rows` rows are held out (in slices, so memory stays small)."""
    step = 1 << 20
    return sum(int(held_out_mask(at, min(step, rows - at), fraction).sum()) for at in range(0, rows, step))


def _misfit_error(path: str, sep: str, header: list[str], header_line: int, misfits: list, count: int):
    how = ("A TSV field cannot hold a tab: remove stray tabs (a trailing tab adds a field)." if sep == "\t" else
           "In CSV, put quotes around fields that contain ',' (\"a, b\") and check for a trailing ','.")
    shown = [f"line {line} has {n}" for line, n in misfits]
    return DataError(
        f"{path}: the header (line {header_line}) has {len(header)} field(s) {header}, but "
        f"{count} row(s) do not ({_shown(shown, count)}). {how}"
    )


def _tsv_chunks(path: str, wanted: list[str], size: int) -> Iterator[_Chunk]:
    """The rows of a TSV file in chunks, a block of lines at a time: TSV quotes nothing, so each line is a
    row (as tables._read_delimited reads it), and whole blocks go through `csv` at C speed."""
    _allow_fields_of(size)
    header, header_line, index, width = None, 0, [], 0
    misfits: list[tuple[int, int]] = []
    misfit_count = 0
    for first, lines in read_blocks(path):
        rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE, strict=True))
        start = 0
        if header is None:
            start = next((i for i, text in enumerate(lines) if text.strip()), len(lines))
            if start == len(lines):
                continue
            header, header_line = _header_names(path, rows[start], first + start), first + start
            _require_columns(header, wanted, path)
            index, width, start = [header.index(name) for name in wanted], len(header), start + 1
        if set(map(len, rows[start:])) <= {width}:  # the common case, at C speed
            good = range(start, len(rows))
        else:
            good = [i for i in range(start, len(rows)) if len(rows[i]) == width]
        if len(good) < len(rows) - start:
            bad = [i for i in range(start, len(rows)) if len(rows[i]) != width and lines[i].strip()]
            misfit_count += len(bad)
            misfits += [(first + i, len(rows[i])) for i in bad[:6 - len(misfits)]]
            if width == 1:  # a blank line is then a row of one empty field: skipped, as the reader does
                good = [i for i in good if lines[i].strip()]
        if good and not misfits:
            kept = rows[good.start:] if isinstance(good, range) else [rows[i] for i in good]
            yield _Chunk({name: list(map(operator.itemgetter(k), kept)) for name, k in zip(wanted, index)},
                         [first + i for i in good])
    if header is None:
        raise DataError(f"{path} is empty.")
    if misfits:
        raise _misfit_error(path, "\t", header, header_line, misfits, misfit_count)


def _delimited_chunks(path: str, sep: str, wanted: list[str], size: int) -> Iterator[_Chunk]:
    """The rows of a CSV/TSV file in chunks, parsed as tables._read_delimited parses the whole file."""
    _allow_fields_of(size)
    header, header_line, index = None, 0, []
    columns: dict[str, list] = {}
    numbers: list[int] = []
    misfits: list[tuple[int, int]] = []
    misfit_count = 0
    for start, row in delimited_rows(path, read_lines(path), sep, lambda start: _LinesFrom(path, start)):
        if header is None:
            header, header_line = _header_names(path, row, start), start
            _require_columns(header, wanted, path)
            index = [header.index(name) for name in wanted]
            columns = {name: [] for name in wanted}
        elif len(row) != len(header):
            misfit_count += 1
            if len(misfits) < 6:
                misfits.append((start, len(row)))
        else:
            for name, i in zip(wanted, index):
                columns[name].append(row[i])
            numbers.append(start)
            if len(numbers) >= CHUNK_ROWS:
                yield _Chunk(columns, numbers)
                columns, numbers = {name: [] for name in wanted}, []
    if header is None:
        raise DataError(f"{path} is empty.")
    if misfits:
        raise _misfit_error(path, sep, header, header_line, misfits, misfit_count)
    if numbers:
        yield _Chunk(columns, numbers)


class _LinesFrom(Sequence):
    """The file's lines from line `first` on, as the list tables._quote_problem slices (`lines[first - 1:]`)."""

    def __init__(self, path: str, first: int):
        self.path, self.first = path, first

    def __len__(self) -> int:
        return self.first  # only ever sliced from first - 1

    def __getitem__(self, i):
        tail = []
        for number, text in enumerate(read_lines(self.path), start=1):
            if number >= self.first:
                tail.append(text)
            if len(tail) > 1000:  # enough to find where the quote goes wrong
                break
        return tail


_LINE_NUMBER = re.compile(r"(: line )(\d+)")


def _jsonl_chunks(path: str, wanted: list[str]) -> Iterator[_Chunk]:
    """The rows of a JSONL file in chunks, each parsed by tables._read_jsonl (line numbers made the file's)."""
    batch: list[str] = []
    first, number, found = 1, 0, False
    for number, text in enumerate(read_lines(path), start=1):
        batch.append(text)
        if len(batch) >= CHUNK_ROWS:
            chunk = _jsonl_chunk(path, batch, first, wanted, found)
            found = found or chunk is not None
            if chunk is not None:
                yield chunk
            batch, first = [], number + 1
    chunk = _jsonl_chunk(path, batch, first, wanted, found)
    if chunk is not None:
        yield chunk
    elif not found:
        raise DataError(f"{path} is empty.")


def _jsonl_chunk(path: str, lines: list[str], first: int, wanted: list[str], found: bool) -> _Chunk | None:
    if not any(text.strip() for text in lines):
        return None
    try:
        records = _read_jsonl(path, "".join(lines))
    except DataError as err:  # the reader numbers the chunk's lines from 1: make them the file's
        message = _LINE_NUMBER.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + first - 1}", str(err), count=1)
        raise DataError(message) from None
    if not found:
        _require_columns(list(records.columns), wanted, path)
    count = len(records.locations)
    numbers = [int(where.split()[-1]) + first - 1 for where in records.locations]
    return _Chunk({name: records.columns.get(name, [_MISSING] * count) for name in wanted}, numbers)


@dataclasses.dataclass
class Counts:
    """What the counting pass found: rows per file (train and held out), the labels seen."""

    rows: list[int]
    held: list[int]
    train_keys: collections.Counter  # label key (multi-label: each name) -> training rows carrying it
    valid_keys: dict[str, str]  # label key -> where it first occurs in held-out rows
    header: dict[str, int] | None = None  # delimited files: column -> index


@dataclasses.dataclass(frozen=True)
class Columns:
    """Which columns hold the text, the second text of pairs and the label."""

    text: str = "text"
    label: str = "label"
    text_b: str | None = None

    @property
    def wanted(self) -> list[str]:
        return [self.text] + ([self.text_b] if self.text_b else []) + [self.label]


def _check_chunk(path: str, chunk: _Chunk, columns: Columns, task: str, separator: str) -> tuple[list, list[str]]:
    """The in-memory reader's checks on one chunk; returns its labels and label keys (names for multi-label)."""
    where = _Lines(chunk.lines)
    _texts(chunk.columns[columns.text], where, path, columns.text, False)
    if columns.text_b:
        _texts(chunk.columns[columns.text_b], where, path, columns.text_b, False)
    labels = _labels(chunk.columns[columns.label], where, path, columns.label)
    table = TextTable([], labels, path, where)
    if task == "regression":
        encode_scores(table)
        return labels, []
    if task == "multi_label":
        vocabulary = MultiLabelVocabulary((), separator)
        vocabulary._check_rows_name_labels(table)
        return labels, [vocabulary.split(y) for y in labels]
    return labels, label_keys(labels)


def count_rows(files: Sequence[str], columns: Columns, task: str, fraction: float,
               separator: str = ",") -> Counts:
    """The counting pass: every row checked as the in-memory reader checks it, counted, its label kept.

    Args:
        files: the shards, in order.
        columns: the text / second text / label columns.
        task: single_label, multi_label or regression.
        fraction: the held-out share (`held_out`); its rows' labels must occur in training rows.
        separator: multi-label separator.

    Returns:
        The rows and held-out rows per file, and the training rows per label key.
    """
    with collector_paused():
        return _counted(files, columns, task, fraction, separator)


def _counted(files: Sequence[str], columns: Columns, task: str, fraction: float, separator: str) -> Counts:
    counts = Counts([], [], collections.Counter(), {})
    for path in files:
        rows = held = 0
        for chunk in _chunks(path, columns.wanted):
            _, keys = _check_chunk(path, chunk, columns, task, separator)
            mask = held_out_mask(rows, len(chunk.lines), fraction)
            held += int(mask.sum())
            for i in np.flatnonzero(mask) if keys else ():
                for name in keys[i] if isinstance(keys[i], list) else [keys[i]]:
                    counts.valid_keys.setdefault(name, f"{path}, line {chunk.lines[i]}")
            trained = itertools.compress(keys, ~mask)
            counts.train_keys.update(itertools.chain.from_iterable(trained) if task == "multi_label" else trained)
            rows += len(chunk.lines)
        if not rows:
            raise DataError(f"{path} has a header but no data rows.")
        counts.rows.append(rows)
        counts.held.append(held)
    return counts


def _chunks(path: str, wanted: list[str]) -> Iterator[_Chunk]:
    kind = _kind_of_file(path)
    if kind == "jsonl":
        return _jsonl_chunks(path, wanted)
    size = tf.io.gfile.stat(path).length
    if kind == "tsv":
        return _tsv_chunks(path, wanted, size)
    return _delimited_chunks(path, ",", wanted, size)


def estimate_rows(path: str) -> int:
    """Data rows of `path` from its newlines alone (no parsing): exact for TSV and JSONL without blank
    lines; for CSV, fields holding line breaks make it an overcount."""
    newlines, last = 0, b"\n"
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            newlines += chunk.count(b"\n") - chunk.count(b"\n\n")
            last = chunk[-1:]
    lines = newlines + (last != b"\n")
    return max(lines - (_kind_of_file(path) != "jsonl"), 0)


def read_header(path: str) -> list[str] | None:
    """A CSV/TSV file's column names (its first non-blank row); None for JSONL."""
    kind = _kind_of_file(path)
    if kind == "jsonl":
        return None
    quoting = csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
    for row in csv.reader(read_lines(path), delimiter="\t" if kind == "tsv" else ",", quoting=quoting):
        if row:
            return _header_names(path, row, 1)
    raise DataError(f"{path} is empty.")


# ---------------------------------------------------------------- the tf.data pipeline


@dataclasses.dataclass(frozen=True)
class Targets:
    """How a batch of label strings becomes targets, exactly as the in-memory path encodes them."""

    task: str
    labels: LabelVocabulary | MultiLabelVocabulary | None
    separator: str = ","

    def table(self) -> tf.lookup.StaticHashTable:
        index = _class_index(self.labels.names, self.labels.ids)
        keys, values = list(index), list(index.values())
        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string), tf.constant(values, tf.int64)), -1)

    def encoder(self) -> Callable[[tf.Tensor], tf.Tensor]:
        """A function: a batch of label strings -> class ids (int32), multi-hot rows or floats (float32)."""
        if self.task == "regression":
            return lambda labels: tf.strings.to_number(tf.strings.strip(labels), tf.float32)
        table = self.table()
        message = (f"a label is not among the {len(self.labels)} classes {list(self.labels.names)[:10]} "
                   f"(--label-names / the training labels); fix that row or the names")
        if self.task == "multi_label":
            width = len(self.labels)

            def multi_hot(labels):
                parts = tf.strings.strip(tf.strings.split(labels, self.separator))
                parts = tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)
                ids = tf.ragged.map_flat_values(table.lookup, parts)
                tf.debugging.assert_non_negative(ids.flat_values, message=message)
                hot = tf.one_hot(ids, width, dtype=tf.float32)  # [batch, (labels), width]
                return tf.minimum(tf.reduce_sum(hot, axis=1), 1.0)  # a row of no labels: all zeros

            return multi_hot

        def class_ids(labels):
            ids = table.lookup(tf.strings.strip(labels))
            tf.debugging.assert_non_negative(ids, message=message)
            return tf.cast(ids, tf.int32)

        return class_ids


def _split_fields(lines: tf.Tensor, index: Sequence[int]) -> tuple[tf.Tensor, ...]:
    """A block of TSV lines -> its non-blank lines' fields at `index` (TSV quotes nothing: a tab always
    separates)."""
    lines = tf.boolean_mask(lines, tf.strings.length(tf.strings.strip(lines)) > 0)
    fields = tf.strings.split(lines, "\t").to_tensor(default_value="", shape=[None, max(index) + 1])
    return tuple(fields[:, i] for i in index)


def _jsonl_fields(wanted: Sequence[str]) -> Callable:
    def parse(lines):
        values = [[] for _ in wanted]
        for line in lines.numpy():
            if not line.strip():
                continue
            row = json.loads(line.decode("utf-8-sig"))
            for out, name in zip(values, wanted):
                value = row.get(name, "")
                out.append(value if isinstance(value, str) else label_key(value))
        return [tf.constant(v, tf.string, shape=[len(v)]) for v in values]

    def fields(lines):
        parsed = tf.py_function(parse, [lines], [tf.string] * len(wanted))
        return tuple(tf.ensure_shape(p, [None]) for p in parsed)

    return fields


def _numbered(blocks: tf.data.Dataset) -> tf.data.Dataset:
    """Blocks of rows -> (index of each row in the file, the block)."""
    def step(start, block):
        count = tf.shape(block[0], out_type=tf.int64)[0]
        return start + count, (start + tf.range(count, dtype=tf.int64), block)

    return blocks.scan(tf.constant(0, tf.int64), step)


@dataclasses.dataclass(frozen=True)
class RowSource:
    """Where rows come from: the shards, their type, and the columns read.

    The pipeline moves blocks of up to LINES_PER_PARSE rows (tuples of string vectors), never single
    rows: each tf.data stage costs its time per element, and a row at a time would cost it per row.
    """

    files: tuple[str, ...]
    columns: Columns
    header: tuple[str, ...] | None  # CSV/TSV column names (the same in every shard)
    checked: bool = True  # the counting pass checked every row (blank lines are then the only misfits)

    @property
    def file_format(self) -> str:
        return _kind_of_file(self.files[0])

    def one_file(self, path: tf.Tensor) -> tf.data.Dataset:
        """Blocks of (text, [text_b,] label) strings of one file, in file order."""
        wanted = self.columns.wanted
        if self.file_format == "jsonl":
            return tf.data.TextLineDataset(path).batch(LINES_PER_PARSE).map(_jsonl_fields(wanted))
        index = [self.header.index(name) for name in wanted]
        if self.file_format == "csv":
            order = sorted(set(index))
            rows = tf.data.experimental.CsvDataset(path, [tf.string] * len(order), header=True, select_cols=order)
            if self.checked:
                rows = rows.ignore_errors()  # CsvDataset refuses blank lines, which the reader skips
            return rows.batch(LINES_PER_PARSE).map(lambda *cells: tuple(cells[order.index(i)] for i in index))
        def fields(number, block):
            rows = _split_fields(block, index)
            return tuple(column[tf.cast(number == 0, tf.int32):] for column in rows)  # block 0 holds the header

        return tf.data.TextLineDataset(path).batch(LINES_PER_PARSE).enumerate().map(fields)

    def _part_of_file(self, path: tf.Tensor, fraction: float, part: str) -> tf.data.Dataset:
        """Blocks of one file's rows of `part` ('train': not held out, 'valid': held out, 'all')."""
        blocks = self.one_file(path)
        if part == "all" or fraction <= 0:
            return blocks if part != "valid" else blocks.take(0)
        keep = part == "valid"

        def chosen(at, block):
            mask = tf.equal(_row_hash(at, tf) < _held_out_below(fraction), keep)
            return tuple(tf.boolean_mask(column, mask) for column in block)

        return _numbered(blocks).map(chosen)

    def rows(self, fraction: float, part: str) -> tf.data.Dataset:
        """Blocks of the rows of `part`, one pass, shard after shard, in file order."""
        files = tf.data.Dataset.from_tensor_slices(list(self.files))
        return files.interleave(lambda path: self._part_of_file(path, fraction, part), cycle_length=1)

    def shuffled(self, fraction: float, part: str, seed: int) -> tf.data.Dataset:
        """Windows of up to WINDOW_ROWS rows of `part` in a random order, pass after pass, never ending.

        Each pass takes the shards in a new seeded order, four at a time, and permutes each window of a
        shard by a seed drawn from (`seed`, the shard's place in the stream, the window), then shuffles the
        windows over a buffer of WINDOWS. Everything random hangs off the one file list (no other source
        dataset), so a multi-worker strategy can still shard the stream by file.
        """
        files = tf.data.Dataset.from_tensor_slices(list(self.files))
        files = files.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True).repeat()
        numbered = files.scan(tf.constant(0, tf.int64), lambda k, path: (k + 1, (k, path)))

        def windows(k, path):
            blocks = self._part_of_file(path, fraction, part).rebatch(WINDOW_ROWS)
            return blocks.scan(tf.constant(0, tf.int64), lambda w, window: (w + 1, _permuted(
                window, tf.stack([tf.constant(seed, tf.int64), k * 1_000_003 + w]))))

        streams = numbered.interleave(windows, cycle_length=min(4, len(self.files)), block_length=1)
        return streams.shuffle(WINDOWS, seed=seed)


def _distribute_options(files: int) -> tf.data.Options:
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.FILE if files > 1 else policy.DATA
    return options


def _permuted(window: tuple[tf.Tensor, ...], seed: tf.Tensor) -> tuple[tf.Tensor, ...]:
    """The window's rows in a random order given by `seed` (two int64: the same seed, the same order)."""
    order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(window[0])[0]), seed=seed)
    return tuple(tf.gather(column, order) for column in window)


@dataclasses.dataclass
class StreamedExamples:
    """Labelled rows streamed from files: the streaming protocol the models consume.

    `batches` gives already-batched raw strings `(texts, targets)` (pairs: `((texts, texts_b), targets)`),
    the targets encoded as the in-memory path encodes them; `len()` is the counted rows.
    """

    source: RowSource
    part: str  # 'train', 'valid' or 'all'
    fraction: float
    count: int
    targets: Targets
    workers: int = 1  # multi-worker training: how many workers share the files (the loop sets it)
    streamed = True
    weights = None  # no per-example weights: --weight-column reads the table into memory

    def __len__(self) -> int:
        return self.count

    @property
    def labels(self) -> list[str]:
        """The label vocabulary, in the in-memory reader's order ([] for regression)."""
        return [] if self.targets.labels is None else list(self.targets.labels.names)

    @property
    def pair(self) -> bool:
        return self.source.columns.text_b is not None

    def _encoded(self, batches: tf.data.Dataset) -> tf.data.Dataset:
        encode = self.targets.encoder()
        pair = self.pair

        def element(*columns):
            inputs = (columns[0], columns[1]) if pair else columns[0]
            return inputs, encode(columns[-1])

        return batches.map(element, num_parallel_calls=AUTOTUNE)

    def steps_per_epoch(self, batch_size: int, drop_remainder: bool = False) -> int:
        return max(1, self.count // batch_size if drop_remainder else -(-self.count // batch_size))

    def batches(self, batch_size: int, epochs: int = 1, seed: int = 0, start_epoch: int = 0, start_step: int = 0,
                drop_remainder: bool = False, shuffle: bool = True) -> tf.data.Dataset:
        """`epochs` epochs of batches (from batch `start_step` of epoch `start_epoch`), one stream.

        Each epoch is one pass over the files. Shuffled (`RowSource.shuffled`), the rows are permuted
        within windows of WINDOW_ROWS and the windows' order over a buffer of WINDOWS, seeded and
        differently every pass (the same seed gives the same batches); the passes run on without a short
        batch between them, and the window buffer blurs their boundary by at most WINDOWS windows. A
        resumed run reads past the batches it skips. Under a multi-worker strategy each worker reads its
        own shards; the stream repeats rather than end early, so a worker with the shorter shard never
        leaves the others waiting.

        Example:
            >>> for texts, targets in streamed.batches(32, shuffle=False).take(1):  # doctest: +SKIP
            ...     print(texts.shape, targets.shape)
            (32,) (32,)
        """
        steps = self.steps_per_epoch(batch_size, drop_remainder)
        skip = start_epoch * steps + start_step
        if shuffle:  # an endless stream of passes: an epoch is `steps` batches of it
            windows = self.source.shuffled(self.fraction, self.part, seed)
            stream = self._encoded(windows.rebatch(batch_size, drop_remainder=drop_remainder))
        else:  # pass after pass in file order, each ending in its own last batch
            blocks = self.source.rows(self.fraction, self.part)
            stream = self._encoded(blocks.rebatch(batch_size, drop_remainder=drop_remainder)).repeat()
        stream = self._skipped(stream, skip, batch_size).take(max(epochs * steps - skip, 0)).prefetch(AUTOTUNE)
        return stream.with_options(_distribute_options(len(self.source.files)))

    def _skipped(self, stream: tf.data.Dataset, steps: int, batch_size: int) -> tf.data.Dataset:
        """`stream` past the rows of `steps` training steps (a resumed run).

        Each worker reading its own files (FILE sharding, several files) batches `batch_size` rows, which
        tf.distribute splits across the workers' steps: a step reads batch_size / workers of this worker's
        rows, so a resumed worker skips that many per step (half a batch at an odd step of two workers).
        """
        if self.workers <= 1 or len(self.source.files) <= 1:
            return stream.skip(steps)
        rows = steps * (batch_size // self.workers)
        stream = stream.skip(rows // batch_size)
        if rows % batch_size:
            stream = stream.unbatch().skip(rows % batch_size).batch(batch_size, drop_remainder=True)
        return stream

    def evaluation_batches(self, batch_size: int) -> tf.data.Dataset:
        """The rows once, in file order, batched: for validation and predictions."""
        blocks = self.source.rows(self.fraction, self.part)
        return self._encoded(blocks.rebatch(batch_size)).prefetch(AUTOTUNE)

    def all_targets(self, batch_size: int = 4096) -> np.ndarray:
        """Every row's target, in file order (read through the stream; small next to the texts)."""
        parts = [targets.numpy() for _, targets in self.evaluation_batches(batch_size)]
        if parts:
            return np.concatenate(parts)
        width = (len(self.targets.labels),) if self.targets.task == "multi_label" else ()
        return np.zeros((0, *width), np.int32 if self.targets.task == "single_label" else np.float32)


@dataclasses.dataclass
class StreamedSplits:
    """Training and validation streams, with what the counting pass found (`LabelledSplits`' streaming twin)."""

    train: StreamedExamples
    valid: StreamedExamples
    labels: LabelVocabulary | MultiLabelVocabulary | None
    task: str
    class_counts: list[int]  # training rows per class (multi-label: carrying it); [] for regression or uncounted
    streamed = True

    @property
    def train_examples(self) -> StreamedExamples:
        return self.train

    @property
    def valid_examples(self) -> StreamedExamples | None:
        return self.valid if len(self.valid) else None

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names) if self.labels is not None else []

    @property
    def valid_ids(self) -> np.ndarray:
        """The validation targets, in order (read once, then kept)."""
        if not hasattr(self, "_valid_ids"):
            self._valid_ids = self.valid.all_targets()
        return self._valid_ids


def _vocabulary(task: str, counts: Counts | None, label_names: Sequence[str] | None, separator: str, source: str):
    if task == "regression":
        return None
    if task == "multi_label":
        return (MultiLabelVocabulary.named(label_names, separator) if label_names is not None else
                MultiLabelVocabulary.from_labels(list(counts.train_keys), separator, source))
    return (LabelVocabulary.named(label_names) if label_names is not None else
            LabelVocabulary.from_labels(list(counts.train_keys), source))


def _check_held_out_labels(vocabulary, counts: Counts, source: str) -> None:
    """Held-out labels must occur in training (the in-memory reader's rule for validation rows)."""
    if vocabulary is None or vocabulary.ids:
        return
    unseen = sorted(key for key in counts.valid_keys if key not in set(vocabulary.names))
    if unseen:
        raise DataError(
            f"{source}: label(s) {unseen} at {counts.valid_keys[unseen[0]]} (held out for validation) never "
            f"occur in the training rows, whose labels are {list(vocabulary.names)}. Add examples of them to "
            f"training or drop those rows."
        )


def _source_of(pattern, columns: Columns, counted: bool) -> RowSource:
    if not isinstance(pattern, str) and not hasattr(pattern, "__fspath__"):
        raise DataError(f"streamed data must be a file path or glob, not {type(pattern).__name__}.")
    files = expand_files(str(pattern))
    headers = [read_header(path) for path in files]
    if headers[0] is not None:
        for path, header in zip(files, headers):
            _require_columns(header, columns.wanted, path)
            if header != headers[0]:
                raise DataError(f"{path}: its header {header} differs from {files[0]}'s {headers[0]}; every shard "
                                f"needs the same columns in the same order.")
    return RowSource(tuple(files), columns, None if headers[0] is None else tuple(headers[0]), counted)


def load_streamed(
    train: str,
    valid: str | None = None,
    text_column: str = "text",
    label_column: str = "label",
    validation_fraction: float = 0.1,
    seed: int = 0,
    task: str = "single_label",
    text_b_column: str | None = None,
    label_separator: str = ",",
    label_names: Sequence[str] | None = None,
) -> StreamedSplits:
    """Streams labelled files (`load_labelled`'s arguments; `train` and `valid` may be globs of shards).

    Without `label_names`, one counting pass checks every row, counts them and builds the labels in
    the in-memory order; with them, rows are counted from newlines only. Without `valid`, row i of
    each file is held out when `held_out(i, validation_fraction)`.

    Example:
        >>> splits = load_streamed("data/train-*.tsv", text_column="sentence")  # doctest: +SKIP
        >>> len(splits.train), splits.label_names  # doctest: +SKIP
        (900000, ['0', '1'])
    """
    if task not in TASKS:
        raise DataError(f"task must be one of {TASKS}, not {task!r}")
    if label_names is not None and task == "regression":
        raise DataError("--label-names names the classes of integer labels; a regression task has none")
    if not 0 <= validation_fraction < 1:
        raise DataError(f"validation fraction must be at least 0 and below 1, not {validation_fraction}")
    columns = Columns(text_column, label_column, text_b_column)
    fraction = 0.0 if valid is not None else float(validation_fraction)
    source = _source_of(train, columns, label_names is None)
    name = str(train)
    if label_names is None:
        counts = count_rows(source.files, columns, task, fraction, label_separator)
    else:
        rows = [estimate_rows(path) for path in source.files]
        counts = Counts(rows, [held_out_count(n, fraction) for n in rows], collections.Counter(), {})
    vocabulary = _vocabulary(task, counts, label_names, label_separator, name)
    _check_held_out_labels(vocabulary, counts, name)
    targets = Targets(task, vocabulary, label_separator)
    held = sum(counts.held)
    train_part = StreamedExamples(source, "train", fraction, sum(counts.rows) - held, targets)
    if train_part.count < 1:
        raise DataError(f"{name}: {sum(counts.rows)} rows are too few to hold some out.")
    if valid is None:
        valid_part = StreamedExamples(source, "valid", fraction, held, targets)
    else:
        valid_source = _source_of(valid, columns, label_names is None)
        valid_counts = count_rows(valid_source.files, columns, task, 0.0, label_separator) \
            if label_names is None else None
        if valid_counts is not None:
            unseen = Counts([], [], collections.Counter(), dict.fromkeys(valid_counts.train_keys, str(valid)))
            _check_held_out_labels(vocabulary, unseen, str(valid))
        count = sum(valid_counts.rows) if valid_counts else sum(estimate_rows(p) for p in valid_source.files)
        valid_part = StreamedExamples(valid_source, "all", 0.0, count, targets)
    return StreamedSplits(train_part, valid_part, vocabulary, task, _class_counts(vocabulary, counts, task))


def _class_counts(vocabulary, counts: Counts, task: str) -> list[int]:
    if vocabulary is None or not counts.train_keys:
        return []
    index = _class_index(vocabulary.names, vocabulary.ids)
    per_class = [0] * len(vocabulary)
    for key, n in counts.train_keys.items():
        per_class[index[key]] += n
    return per_class
