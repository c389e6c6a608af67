"""Labelled text in: CSV/TSV/JSONL files, pandas frames, TFDS names or tf.data.

Every check names the file, the column and the line, so a user can fix the
data without reading a TensorFlow stack trace. Bad input of any kind ends in
one `DataError`, never in another exception or in silently wrong rows.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import difflib
import gc
import io
import json
import math
import numbers
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError, DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}

# A plain decimal number (ASCII digits only: no "1_000", no "inf"), as labels and targets are written.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# Characters that show nothing: controls, format characters (zero-width space/joiner, BOM), separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
_MISSING = object()  # a JSONL row without the key


def _has_content(text: str) -> bool:
    """False for text made only of whitespace, control and zero-width characters."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.isprintable():  # the fast path: stripped[0] is then a visible character
        return True
    return any(unicodedata.category(c) not in _INVISIBLE for c in stripped)


def _without_content(texts: list[str]) -> list[int]:
    """Indices of the texts without content (`_has_content`), checked at C speed when every text is printable
    and has something besides spaces (the common case: a file of a million rows is checked in well under a
    second), else row by row."""
    if all(map(str.isprintable, texts)) and all(map(str.strip, texts)):
        return []
    return [i for i, t in enumerate(texts) if not _has_content(t)]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pauses Python's cyclic garbage collector while a table is parsed: parsing makes a list per row, and
    each few hundred new lists start a collection that walks the objects made so far (half the streaming
    counting pass's time at a million rows, a quarter of `load_labelled`'s). Rows hold no cycles, so
    reference counting frees them as before. Usable as a decorator."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _all_strings(values: list) -> bool:
    """Whether every value is a `str` (a CSV/TSV column always is): the per-value type checks can be skipped."""
    return set(map(type, values)) <= {str}


@dataclasses.dataclass
class TextTable:
    """Rows of text (and optionally labels) with where each row came from."""

    texts: list[str]
    labels: list | None
    source: str
    locations: list[str]  # "line 12" or "row 'idx'", one per row
    texts_b: list[str] | None = None  # the second text of sentence pairs
    weights: list[float] | None = None  # per-example training weights (--weight-column)

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
            None if self.weights is None else [self.weights[i] for i in indices],
        )

    @property
    def inputs(self) -> tuple[list[str], ...]:
        """(texts,) or (texts, texts_b) for pairs."""
        return (self.texts,) if self.texts_b is None else (self.texts, self.texts_b)


def _shorten(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shown(items: Sequence[str], total: int) -> str:
    return ", ".join(items[:5]) + (", ..." if total > 5 else "")


# ---------------------------------------------------------------- reading files


def _line_at(data: str | bytes, offset: int) -> int:
    """The 1-based line of `offset` (lines end at \\n, \\r\\n or \\r, as csv and editors count them)."""
    breaks = rb"\r\n|\r|\n" if isinstance(data, bytes) else r"\r\n|\r|\n"
    return 1 + len(re.findall(breaks, data[:offset]))


def read_text_file(path: str | Path) -> str:
    """The file's text: UTF-8 (a leading byte-order mark is dropped), else a DataError saying how to fix it.

    `path` is local or a URL (`gs://`, `ram://`; see `tfhub_transfer.storage`).
    """
    try:
        data = storage.read_bytes(path)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} cannot be read ({getattr(err, 'strerror', None) or err}).") from None
    except ConfigError as err:  # a URL scheme TensorFlow does not know (s3:// without tensorflow-io)
        raise DataError(str(err)) from None
    sample = data[:4096]
    # UTF-16 has a byte-order mark, or (ASCII text without one) a zero byte in every other place.
    alternate = len(sample) >= 8 and max(sample[0::2].count(0), sample[1::2].count(0)) * 10 >= len(sample) // 2 * 9
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or alternate:
        raise DataError(
            f"{path} looks like UTF-16 (or binary) text, not UTF-8. Re-save it as UTF-8, "
            f"e.g. `iconv -f utf-16 -t utf-8`."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: line {_line_at(data, err.start)} is not valid UTF-8 (byte {data[err.start]:#04x} at offset "
            f"{err.start}). Re-save the file as UTF-8, e.g. `iconv -f latin1 -t utf-8`."
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


@dataclasses.dataclass
class _Records:
    """A file's rows: `columns` maps each column to one value per row (`_MISSING` where a JSONL row lacks it)."""

    source: str
    columns: dict[str, list]
    locations: list[str]
    rows: list[dict] | None = None  # JSONL objects as read, for read_frame


def _allow_fields_of(size: int) -> None:
    # csv refuses fields over 128 KiB by default; a long document is a valid field. Only ever raised.
    if csv.field_size_limit() < size + 1:
        csv.field_size_limit(size + 1)


def _quote_problem(path: Path, lines: list[str], first: int, sep: str, err: csv.Error) -> str:
    """Says where a CSV quote goes wrong, scanning from line `first` where the failing row starts."""
    text = "".join(lines[first - 1:])
    field_end = re.compile(f"[{re.escape(sep)}\r\n]")
    pos = 0
    while pos < len(text):
        if text[pos] != '"':
            match = field_end.search(text, pos)
            if match is None:
                break
            pos = match.end()
            continue
        opened = pos
        pos += 1
        while True:
            close = text.find('"', pos)
            if close < 0:
                line = first - 1 + _line_at(text, opened)
                return (
                    f"{path}: line {line}: a quoted field starts here and its closing quote is missing, so "
                    f"every later line would be read into it. Close the quote, or write a quote inside a "
                    f"quoted field as two quotes (\"\")."
                )
            if text.startswith('""', close):
                pos = close + 2
                continue
            after = close + 1
            if after < len(text) and text[after] not in (sep, "\r", "\n"):
                line, bad = first - 1 + _line_at(text, opened), first - 1 + _line_at(text, after)
                snippet = text[opened:after + 10].split("\n")[0]
                where = "" if bad == line else f" (on line {bad})"
                return (
                    f"{path}: line {line}: the quoted field that starts here ({_shorten(snippet)}) has text after "
                    f"its closing quote{where}. A quote is probably left open, or a quote inside a quoted field "
                    f"is not doubled (\"\"): quote whole fields and double the quotes inside them."
                )
            pos = after + 1 if after < len(text) else after
            break
    return f"{path}: line {first}: cannot parse as CSV ({err})."


def delimited_rows(path, lines: Iterable[str], sep: str, lines_for_error) -> Iterator[tuple[int, list[str]]]:
    r"""(first line number, cells) of each CSV/TSV row of `lines`, blank lines skipped as pandas skips them.

    The in-memory and the streaming readers both parse through this. A quoting error is one DataError
    naming the line where the quoted field started (`lines_for_error(start)` gives the lines to point into).

    Args:
        path: the file, for messages.
        lines: the file's lines, with their line ends.
        sep: "\t" (TSV: quotes are text, as in SST-2 and MRPC) or ",".
        lines_for_error: start line -> a sequence of the file's lines indexable from 0.

    Example:
        >>> list(delimited_rows("t.tsv", ["a\tb\n", "\n", "1\t2\n"], "\t", lambda start: []))
        [(1, ['a', 'b']), (3, ['1', '2'])]
    """
    quoting = csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL
    last = [""]

    def remembered() -> Iterator[str]:
        for text in lines:
            last[0] = text
            yield text

    reader = csv.reader(remembered(), delimiter=sep, quotechar='"', quoting=quoting, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(_quote_problem(path, lines_for_error(start), start, sep, err)) from None
        if reader.line_num == start and not last[0].strip():
            continue  # a blank line
        yield start, row


def _read_delimited(path: Path, text: str, sep: str) -> _Records:
    lines = io.StringIO(text, newline="").readlines()
    _allow_fields_of(len(text))
    header: list[str] | None = None
    header_line = 0
    rows: list[list[str]] = []
    locations: list[str] = []
    misfits: list[tuple[int, int]] = []
    for start, row in delimited_rows(path, lines, sep, lambda start: lines):
        if header is None:
            header, header_line = _header_names(path, row, start), start
        elif len(row) != len(header):
            misfits.append((start, len(row)))
        else:
            rows.append(row)
            locations.append(f"line {start}")
    if header is None:
        raise DataError(f"{path} is empty.")
    if misfits:
        how = ("A TSV field cannot hold a tab: remove stray tabs (a trailing tab adds a field)." if sep == "\t" else
               "In CSV, put quotes around fields that contain ',' (\"a, b\") and check for a trailing ','.")
        shown = [f"line {line} has {n}" for line, n in misfits]
        raise DataError(
            f"{path}: the header (line {header_line}) has {len(header)} field(s) {header}, but "
            f"{len(misfits)} row(s) do not ({_shown(shown, len(misfits))}). {how}"
        )
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header)}
    return _Records(str(path), columns, locations)


def _header_names(path: Path, row: list[str], line: int) -> list[str]:
    names = [name if name != "" else f"Unnamed: {i}" for i, name in enumerate(row)]
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise DataError(
            f"{path}: the header (line {line}) repeats column(s) {repeated}: {names}. "
            f"Give every column its own name."
        )
    return names


def _read_jsonl(path: Path, text: str) -> _Records:
    rows: list[dict] = []
    locations: list[str] = []
    repeated: list[str] = []

    def remember_repeats(pairs):
        obj = dict(pairs)
        # Called for nested objects first, the line's own object last.
        repeated[:] = [] if len(obj) == len(pairs) else [k for k, n in Counter(k for k, _ in pairs).items() if n > 1]
        return obj

    for number, line in enumerate(io.StringIO(text, newline="").readlines(), start=1):
        if not line.strip():
            continue
        hint = ""
        if line.strip() in ("[", "{") or line.lstrip().startswith("["):
            hint = " This reader wants JSON Lines: one object per line, e.g. `jq -c '.[]' data.json > data.jsonl`."
        try:
            row = json.loads(line, object_pairs_hook=remember_repeats)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {number} is not valid JSON ({err.msg}).{hint}") from None
        except (ValueError, RecursionError) as err:  # e.g. a 5000-digit number, or nesting too deep
            raise DataError(f"{path}: line {number} cannot be read as JSON ({type(err).__name__}: "
                            f"{str(err)[:100]}).") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is not a JSON object (it is {type(row).__name__}).{hint}")
        if repeated:
            raise DataError(f"{path}: line {number} repeats the key(s) {repeated}; give each key once.")
        rows.append(row)
        locations.append(f"line {number}")
    if not rows:
        raise DataError(f"{path} is empty.")
    names = list(dict.fromkeys(key for row in rows for key in row))
    columns = {name: [row.get(name, _MISSING) for row in rows] for name in names}
    return _Records(str(path), columns, locations, rows)


def _read_records(path: str | Path) -> _Records:
    if not isinstance(path, (str, os.PathLike)):
        raise DataError(
            f"data must be a file path, a pandas DataFrame or 'tfds:NAME[:SPLIT]', not {type(path).__name__}."
        )
    path = storage.location(path)  # a URL (gs://b/x.csv) stays a string: Path() would fold it to gs:/b/x.csv
    try:
        is_dir, exists = storage.isdir(path), storage.exists(path)
    except (OSError, ValueError) as err:  # e.g. a parent directory that may not be listed
        raise DataError(f"{path} cannot be read ({getattr(err, 'strerror', None) or err}).") from None
    except ConfigError as err:  # a URL scheme TensorFlow does not know (s3:// without tensorflow-io)
        raise DataError(str(err)) from None
    if is_dir:
        raise DataError(f"{path} is a directory, not a file. Pass the .csv, .tsv or .jsonl file inside it.")
    if not exists:
        raise DataError(f"{path} does not exist.")
    suffix = os.path.splitext(storage.basename(path))[1]
    kind = FORMATS.get(suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl.")
    text = read_text_file(path)
    if not text.strip():
        raise DataError(f"{path} is empty.")
    records = _read_jsonl(path, text) if kind == "jsonl" else _read_delimited(
        path, text, "\t" if kind == "tsv" else ","
    )
    if not records.locations:
        raise DataError(f"{path} has a header but no data rows.")
    return records


def read_frame(path: str | Path) -> pd.DataFrame:
    """Reads a CSV, TSV (unquoted) or JSONL file; the index holds each row's line."""
    records = _read_records(path)
    if records.rows is not None:
        return pd.DataFrame(records.rows, index=records.locations)
    return pd.DataFrame(records.columns, index=records.locations, dtype=str)


# ---------------------------------------------------------------- checking values


def _require_columns(columns: Sequence, wanted: list[str], source: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if not missing:
        return
    name = missing[0]
    hint = ""
    near = [c for c in columns if isinstance(c, str) and c.strip().lower() == str(name).strip().lower()]
    near = near or difflib.get_close_matches(str(name), [c for c in columns if isinstance(c, str)], n=1, cutoff=0.6)
    if near:
        hint = f" Did you mean {near[0]!r}? Names must match exactly, spaces and case included."
    elif len(columns) == 1 and isinstance(columns[0], str) and any(d in columns[0] for d in "\t,;|"):
        hint = (" The header was read as one column: is the delimiter right? .csv files are read "
                "comma-separated, .tsv and .txt tab-separated.")
    raise DataError(
        f"{source}: no column {name!r}. Available columns: {list(columns)}. "
        f"Pick the right one with --text-column / --label-column.{hint}"
    )


def _kind_of(value, column: str) -> str:
    if value is _MISSING:
        return f"no {column!r} key"
    if value is None:
        return "null"
    return f"{type(value).__name__} {_shorten(value)}"


def _is_missing(value) -> bool:
    if value is _MISSING or value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _check_unicode(values: list, locations: list[str], source: str, column: str) -> None:
    """Every string is valid Unicode: JSON's \\ud800 escapes give lone surrogates, which TensorFlow cannot take."""
    try:
        "\n".join(values if _all_strings(values) else [v for v in values if isinstance(v, str)]).encode("utf-8")
        return
    except UnicodeEncodeError:
        pass
    for i, value in enumerate(values):
        try:
            value.encode("utf-8") if isinstance(value, str) else None
        except UnicodeEncodeError as err:
            raise DataError(
                f"{source}: {locations[i]}: column {column!r} holds {value[err.start]!r} (a lone surrogate, e.g. "
                f"from a JSON escape \\ud800), which is not valid Unicode text. Remove it or re-encode the file "
                f"with its characters whole (a pair such as \\ud83d\\ude00 is fine)."
            ) from None


def _as_texts(values: list, numbers_ok: bool) -> tuple[list[str], list[int]]:
    """Mixed values as texts, with the indices of those that cannot be one (missing ones become "")."""
    texts, wrong = [], []
    for i, value in enumerate(values):
        if isinstance(value, str):
            texts.append(value)
        elif numbers_ok and _is_missing(value):
            texts.append("")  # reported with the empty ones
        elif numbers_ok and isinstance(value, (numbers.Number, np.generic)):
            texts.append(str(value))
        else:
            wrong.append(i)
            texts.append("")
    return texts, wrong


def _texts(values: list, locations: list[str], source: str, column: str, numbers_ok: bool) -> list[str]:
    """Strings as given; a file's text must be a string, a DataFrame's may be a number (written as text)."""
    texts, wrong = (list(values), []) if _all_strings(values) else _as_texts(values, numbers_ok)
    if wrong:
        shown = [f"{locations[i]} has {_kind_of(values[i], column)}" for i in wrong]
        raise DataError(
            f"{source}: column {column!r} must hold a string in every row, but {len(wrong)} row(s) do not "
            f"({_shown(shown, len(wrong))}). Give each of those rows its text as a string, or drop them."
        )
    _check_unicode(texts, locations, source, column)
    empty = _without_content(texts)
    if empty:
        shown = [locations[i] for i in empty]
        raise DataError(
            f"{source}: column {column!r} is empty or whitespace in {len(empty)} row(s) "
            f"({_shown(shown, len(empty))}). Remove those rows or fill them in."
        )
    return texts


def _is_missing_label(value) -> bool:
    if _is_missing(value):
        return True
    # Only an empty cell is missing: "None", "NA", "N/A", "null" and "nan" are label names as written.
    return isinstance(value, str) and not _has_content(value)


def _labels(values: list, locations: list[str], source: str, column: str) -> list:
    """One scalar label per row (a string, number or bool), as given."""
    strings = _all_strings(values)
    wrong = [] if strings else [i for i, y in enumerate(values)
                                if not _is_missing(y) and not isinstance(y, (str, numbers.Number, np.generic))]
    if wrong:
        shown = [f"{locations[i]} has {_kind_of(values[i], column)}" for i in wrong]
        raise DataError(
            f"{source}: column {column!r} must hold one label (a string or number) per row, but {len(wrong)} "
            f"row(s) do not ({_shown(shown, len(wrong))}). Write several labels of one row as one separated "
            f"string, e.g. \"sports,politics\"."
        )
    missing = _without_content(values) if strings else [i for i, y in enumerate(values) if _is_missing_label(y)]
    if missing:
        shown = [locations[i] for i in missing]
        raise DataError(
            f"{source}: column {column!r} has no label (empty/NaN) in "
            f"{len(missing)} row(s) ({_shown(shown, len(missing))}). Fill in their labels or drop those rows."
        )
    _check_unicode(values, locations, source, column)
    return list(values)


@collector_paused()
def read_table(
    source: str | Path | pd.DataFrame,
    text_column: str = "text",
    label_column: str | None = "label",
    text_b_column: str | None = None,
    weight_column: str | None = None,
) -> TextTable:
    """Reads text (a second text for pairs, labels unless None, per-example weights from `weight_column`)
    from a file, a DataFrame or TFDS.

    A TFDS dataset is named `tfds:NAME[:SPLIT]` (e.g. `tfds:glue/sst2:validation`; default
    split `train`), with `text_column` / `label_column` naming its features.

    Args:
      source: a .csv/.tsv/.jsonl path or URL, a pandas DataFrame, or `tfds:NAME[:SPLIT]`.
      text_column: the column (or JSON key, or feature) holding the text.
      label_column: the label column; None reads text only (prediction input).
      text_b_column: the second text of sentence pairs (None: single texts).
      weight_column: per-example training weights (numbers >= 0), or None.

    Returns:
      A `TextTable`: `texts`, `labels` (as written), `texts_b`, `weights`, and each row's file location.

    Raises:
      DataError: naming the file, line and column of the first bad row.

    Example:
      >>> from tfhub_transfer import read_table
      >>> from tfhub_transfer.jobs.demo import DEMO_DATA
      >>> table = read_table(DEMO_DATA, "text", "label")
      >>> len(table), sorted(set(table.labels)), table.locations[0]
      (400, ['negative', 'positive'], 'line 2')
    """
    if isinstance(source, str) and source.startswith("tfds:"):
        name, _, split = source[len("tfds:"):].partition(":")
        if weight_column:
            raise DataError(f"{source}: --weight-column reads a column of a file or DataFrame, not a TFDS dataset")
        table, names = load_tfds(name, split or "train", text_column, label_column)
        return table
    wanted = [text_column] + [c for c in (text_b_column, label_column, weight_column) if c]
    if isinstance(source, pd.DataFrame):
        name, numbers_ok = "DataFrame", True
        _require_columns(list(source.columns), wanted, name)
        repeated = [c for c in dict.fromkeys(wanted) if list(source.columns).count(c) > 1]
        if repeated:
            raise DataError(f"DataFrame: the column(s) {repeated} occur more than once; rename or drop the copies.")
        locations = [f"row {i!r}" for i in source.index]
        columns = {c: list(source[c]) for c in dict.fromkeys(wanted)}
    else:
        records = _read_records(source)
        name, numbers_ok, locations, columns = records.source, False, records.locations, records.columns
        _require_columns(list(columns), wanted, name)
    texts = _texts(columns[text_column], locations, name, text_column, numbers_ok)
    texts_b = _texts(columns[text_b_column], locations, name, text_b_column, numbers_ok) if text_b_column else None
    labels = _labels(columns[label_column], locations, name, label_column) if label_column else None
    weights = _weights(columns[weight_column], locations, name, weight_column) if weight_column else None
    return TextTable(texts, labels, name, locations, texts_b, weights)


def _weights(values: list, locations: list[str], source: str, column: str) -> list[float]:
    """One finite number >= 0 per row (numbers written as text are read as numbers)."""
    weights, wrong = [], []
    for i, value in enumerate(values):
        try:
            if isinstance(value, bool) or (isinstance(value, str) and not _NUMBER.fullmatch(value.strip())):
                raise ValueError(value)
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not (math.isfinite(number) and number >= 0):
            wrong.append(i)
        weights.append(number)
    if wrong:
        shown = [f"{locations[i]} has {_shorten(values[i])}" for i in wrong]
        raise DataError(
            f"{source}: column {column!r} (--weight-column) must hold a number >= 0 in every row, but "
            f"{len(wrong)} row(s) do not ({_shown(shown, len(wrong))}). Fill them in (1 is the usual weight)."
        )
    return weights


def _integer_text(text: str) -> str | None:
    """'1', '1.0', '+1.00' and '1e0' -> '1': a plain number equal to an integer, written as that integer."""
    if len(text) > 400 or not _NUMBER.fullmatch(text):
        return None
    number = Decimal(text)
    if number != number.to_integral_value() or number.adjusted() > 400:
        return None
    return str(int(number))


def label_key(value) -> str:
    """Labels compare as written: a label written as text is that text, stripped ("007" and "7", "1e3" and
    "1000", "NA" and "None" are each their own class); a number (from JSON or a DataFrame) equal to an
    integer is that integer's text, so 1 and 1.0 from JSON and "1" from a CSV are one class.
    """
    text = str(value).strip()
    if isinstance(value, (bool, np.bool_, str)) or not isinstance(value, (numbers.Number, np.generic)):
        return text
    return _integer_text(text) or text


def label_keys(values: list) -> list[str]:
    """`label_key` of every value (a column of strings at C speed)."""
    return list(map(str.strip, values)) if _all_strings(values) else [label_key(y) for y in values]


def _class_index(names: Sequence[str], ids: Sequence[str]) -> dict[str, int]:
    """Class id of each label key: the names, and the integer ids "0".."n-1" standing for them (with
    --label-names the file may hold either; an id wins over a name that reads the same)."""
    return {**{name: i for i, name in enumerate(names)}, **{key: i for i, key in enumerate(ids)}}


def _naming_problem(source: str, where: str, key: str, names: Sequence[str]) -> DataError:
    return DataError(
        f"{source}: the label {key!r} at {where} is not a class id 0..{len(names) - 1} (nor one of the names) of "
        f"--label-names {','.join(names)} (label_names={list(names)}). Give one name per class id, in order, "
        f"or fix that row."
    )


@dataclasses.dataclass(frozen=True)
class LabelVocabulary:
    """The classes seen in training, in a stable order (numeric when all look numeric).

    Args:
      names: the class names; class id i is `names[i]`.
      ids: with given names (`--label-names`): the integer ids "0".."n-1" that stand for them in the data.

    Example:
      >>> from tfhub_transfer import LabelVocabulary
      >>> LabelVocabulary.from_labels(["pos", "neg", "pos"]).names
      ('neg', 'pos')
      >>> LabelVocabulary.from_labels(["10", "9", "2"]).names
      ('2', '9', '10')
    """

    names: tuple[str, ...]
    ids: tuple[str, ...] = ()  # with given names (--label-names): the integer ids "0".."n-1" that stand for them

    @classmethod
    def from_labels(cls, labels: Sequence, source: str = "training data") -> LabelVocabulary:
        keys = sorted({label_key(y) for y in labels}, key=_sort_key)
        if len(keys) < 2:
            raise DataError(
                f"{source} has {len(keys)} distinct label(s) {keys}: a classifier needs at least 2."
            )
        return cls(tuple(keys))

    @classmethod
    def named(cls, names: Sequence[str]) -> LabelVocabulary:
        """The classes `names` in order: class id i (written as the integer i, or as the name) is names[i]."""
        return cls(tuple(names), tuple(str(i) for i in range(len(names))))

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, table: TextTable) -> np.ndarray:
        index = _class_index(self.names, self.ids)
        keys = label_keys(table.labels)
        unseen = [i for i, k in enumerate(keys) if k not in index]
        if unseen and self.ids:
            raise _naming_problem(table.source, table.locations[unseen[0]], keys[unseen[0]], self.names)
        if unseen:
            bad = sorted({keys[i] for i in unseen})
            raise DataError(
                f"{table.source}: label(s) {bad} at {table.locations[unseen[0]]} "
                f"({len(unseen)} row(s)) never occur in the training data, whose labels are "
                f"{list(self.names)}. Add examples of them to training or drop those rows (labels are read "
                f"as written: '1' and '1.0' are different classes)."
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
    ids: tuple[str, ...] = ()  # with given names (--label-names): the integer ids "0".."n-1" that stand for them

    def split(self, value) -> list[str]:
        return [label_key(part) for part in str(value).split(self.separator) if part.strip()]

    @classmethod
    def named(cls, names: Sequence[str], separator: str = ",") -> MultiLabelVocabulary:
        """The labels `names` in order: label id i (written as the integer i, or as the name) is names[i]."""
        return cls(tuple(names), separator, tuple(str(i) for i in range(len(names))))

    @classmethod
    def from_labels(cls, labels: Sequence, separator: str = ",", source: str = "training data"):
        names = sorted({name for y in labels for name in cls((), separator).split(y)}, key=_sort_key)
        if len(names) < 2:
            raise DataError(f"{source} has {len(names)} distinct label(s) {names}: need at least 2.")
        return cls(tuple(names), separator)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, table: TextTable) -> np.ndarray:
        index = _class_index(self.names, self.ids)
        out = np.zeros((len(table), len(self.names)), np.float32)
        self._check_rows_name_labels(table)
        for row, value in enumerate(table.labels):
            for name in self.split(value):
                if name not in index and self.ids:
                    raise _naming_problem(table.source, table.locations[row], name, self.names)
                if name not in index:
                    raise DataError(
                        f"{table.source}: label {name!r} at {table.locations[row]} never occurs in the "
                        f"training data ({len(self.names)} labels)."
                    )
                out[row, index[name]] = 1.0
        return out

    def _check_rows_name_labels(self, table: TextTable) -> None:
        """A cell of separators alone (",") names no label: refused like an empty cell, with its lines."""
        empty = [i for i, value in enumerate(table.labels) if not self.split(value)]
        if empty:
            shown = [f"{table.locations[i]}: {_shorten(table.labels[i])}" for i in empty]
            raise DataError(
                f"{table.source}: the label column has no label (only separators {self.separator!r} or spaces) "
                f"in {len(empty)} row(s) ({_shown(shown, len(empty))}). Fill in their labels or drop those rows."
            )


def encode_scores(table: TextTable) -> np.ndarray:
    """Regression targets as float32, naming the first row that is not a number."""
    values = []
    largest = float(np.finfo(np.float32).max)
    for row, value in enumerate(table.labels):
        try:
            if isinstance(value, str) and not _NUMBER.fullmatch(value.strip()):
                raise ValueError(value)  # "inf", "nan", "1_000": float() takes them, a target should not
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if not math.isfinite(number) or abs(number) > largest:
            raise DataError(
                f"{table.source}: the target at {table.locations[row]} is {_shorten(value)}, not a finite "
                f"number (regression targets must be plain numbers such as 0.5 or 3)."
            )
        values.append(number)
    return np.asarray(values, np.float32)


TASKS = ("single_label", "multi_label", "regression")


@dataclasses.dataclass
class Examples:
    """Texts (and second texts of pairs) with encoded targets: what a sentence task model trains on."""

    texts: list[str]
    targets: np.ndarray | None
    texts_b: list[str] | None = None
    weights: np.ndarray | None = None  # per-example training weights

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
        weights = None if self.train.weights is None else np.asarray(self.train.weights, np.float32)
        return Examples(self.train.texts, self.train_ids, self.train.texts_b, weights)

    @property
    def valid_examples(self) -> Examples | None:
        """The validation examples, or None when there are none (`validation_fraction` 0 and no file)."""
        if not len(self.valid):
            return None
        return Examples(self.valid.texts, self.valid_ids, self.valid.texts_b)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels.names) if self.labels is not None else []


def split_validation(table: TextTable, fraction: float, seed: int) -> tuple[TextTable, TextTable]:
    """A shuffled hold-out split, used when no validation data is given; `fraction` 0 holds nothing out."""
    if not 0 <= fraction < 1:
        raise DataError(f"validation fraction must be at least 0 and below 1, not {fraction}")
    if fraction == 0:
        return table, table.subset([])
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
    weight_column: str | None = None,
    label_names: Sequence[str] | None = None,
) -> LabelledSplits:
    """Reads, checks and encodes training (and validation) data for a task.

    `task` is `single_label`, `multi_label` (labels are `label_separator`-separated
    names) or `regression` (numeric targets); `text_b_column` makes sentence pairs; `weight_column`
    gives each training example a weight (validation stays unweighted). `label_names` names the integer
    class ids 0..n-1 in order: the label column holds those ids (or the names), and the classes are the
    names in that order; an id >= len(label_names) is a DataError naming the file and line.

    Args:
      train: the training file, URL, DataFrame or `tfds:NAME[:SPLIT]`.
      valid: the validation data in the same forms (None: hold out `validation_fraction` of `train`).
      text_column, label_column, text_b_column, weight_column: the columns to read (see `read_table`).
      validation_fraction: the share of `train` held out when `valid` is None (0: no validation).
      max_train_examples: train on a seeded random subset of this size (None: all).
      seed: the hold-out and subset draws.
      task: a registered task name (see `tfhub-transfer train --help`).
      label_separator: separates a multi-label row's names.
      label_names: the names of integer class ids 0..n-1, in order (None: labels as written).

    Returns:
      `LabelledSplits`: the train and valid tables, their encoded targets and the label vocabulary.

    Example:
      >>> from tfhub_transfer import load_labelled
      >>> from tfhub_transfer.jobs.demo import DEMO_DATA
      >>> splits = load_labelled(DEMO_DATA, validation_fraction=0.25)
      >>> len(splits.train), len(splits.valid), list(splits.labels.names)
      (300, 100, ['negative', 'positive'])
    """
    if task not in TASKS:
        raise DataError(f"task must be one of {TASKS}, not {task!r}")
    if label_names is not None and task == "regression":
        raise DataError("--label-names names the classes of integer labels; a regression task has none")
    train_table = read_table(train, text_column, label_column, text_b_column, weight_column)
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
        labels = (MultiLabelVocabulary.named(label_names, label_separator) if label_names is not None else
                  MultiLabelVocabulary.from_labels(train_table.labels, label_separator, train_table.source))
    else:
        labels = (LabelVocabulary.named(label_names) if label_names is not None else
                  LabelVocabulary.from_labels(train_table.labels, train_table.source))
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
            f"TFDS dataset {name!r} (split {split!r}) is not available: {err}. Download and prepare it with "
            f"`tfds build {name} --data_dir DIR` on a machine with network access, copy DIR here and pass "
            f"--tfds-data-dir DIR (from Python: set the TFDS_DATA_DIR environment variable to DIR before "
            f"tensorflow_datasets is imported); TFDS's default DIR is ~/tensorflow_datasets."
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
