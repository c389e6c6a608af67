"""Pretrained word vectors (word2vec text/binary, GloVe text): streaming readers and embedding matrices.

Files are read line by line (or record by record), never whole, and can keep only
the words of a training vocabulary, so multi-GB files fit in memory. Malformed
lines raise a DataError with their line number.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from tfhub_transfer import storage
from tfhub_transfer.errors import DataError

FORMATS = ("auto", "word2vec_text", "word2vec_binary", "glove")


@dataclasses.dataclass
class WordVectors:
    """Words and their vectors (rows of `vectors`, float32)."""

    words: list[str]
    vectors: np.ndarray
    source: str = ""

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def _parse_text_line(line: str, number: int, dim: int | None, path: Path) -> tuple[str, np.ndarray]:
    fields = line.rstrip("\n").rstrip(" ").split(" ")
    word, values = fields[0], fields[1:]
    if not word or not values:
        raise DataError(f"{path}: line {number} is not 'word v1 v2 ...': {line[:60]!r}")
    if dim is not None and len(values) != dim:
        raise DataError(
            f"{path}: line {number} has {len(values)} values for {word!r}, expected {dim}"
        )
    try:
        return word, np.asarray(values, dtype=np.float32)
    except ValueError:
        raise DataError(f"{path}: line {number} has a value that is not a number ({word!r})") from None


def iter_text_vectors(path: str | Path, header: bool | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """Yields (word, vector) from word2vec text or GloVe files; a header line is optional."""
    path = storage.location(path)  # local, or a URL (gs://, ram://) kept as its string
    dim = None
    with storage.open_file(path, "r", errors="strict") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                fields = line.split()
                if number == 1 and (header or (header is None and _is_header(fields))):
                    dim = int(fields[1])
                    continue
                word, vector = _parse_text_line(line, number, dim, path)
                dim = dim or len(vector)
                yield word, vector
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 near line {number + 1} ({err.reason})") from None


def iter_binary_vectors(path: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yields (word, vector) from the word2vec C binary format, one record at a time."""
    path = storage.location(path)
    with storage.open_file(path, "rb") as handle:
        stream = io.BufferedReader(handle) if not storage.is_url(path) else handle
        header = stream.readline().split()
        if not _is_header([h.decode("ascii", "replace") for h in header]):
            raise DataError(f"{path}: line 1 is not a word2vec binary header 'COUNT DIM'")
        count, dim = int(header[0]), int(header[1])
        for record in range(1, count + 1):
            word = _read_word(stream, path, record)
            raw = stream.read(4 * dim)
            if len(raw) != 4 * dim:
                raise DataError(f"{path}: record {record} ({word!r}) is truncated")
            yield word, np.frombuffer(raw, dtype="<f4").copy()


def _read_word(stream, path: Path, record: int) -> str:
    chars = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            raise DataError(f"{path}: file ends inside record {record}")
        if byte == b" ":
            break
        if byte != b"\n" or chars:
            chars += byte
    try:
        return chars.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: record {record} has a word that is not UTF-8") from None


def detect_format(path: str | Path) -> str:
    path = storage.location(path)
    if storage.basename(path).endswith(".bin"):
        return "word2vec_binary"
    with storage.open_file(path, "r", errors="replace") as handle:
        first = handle.readline().split()
    return "word2vec_text" if _is_header(first) else "glove"


def read_word_vectors(
    path: str | Path, keep: Iterable[str] | None = None, format: str = "auto",
    lowercase: bool = False,
) -> WordVectors:
    """Reads a vectors file, keeping only `keep` words when given (first occurrence wins)."""
    path = storage.location(path)
    if not storage.exists(path):
        raise DataError(f"word vectors file {path} does not exist")
    if format not in FORMATS:
        raise DataError(f"unknown word-vector format {format!r}; choose one of {FORMATS}")
    kind = detect_format(path) if format == "auto" else format
    records = iter_binary_vectors(path) if kind == "word2vec_binary" else iter_text_vectors(
        path, header=True if kind == "word2vec_text" else None
    )
    wanted = set(keep) if keep is not None else None
    words, rows, seen = [], [], set()
    for word, vector in records:
        word = word.lower() if lowercase else word
        if word in seen or (wanted is not None and word not in wanted):
            continue
        seen.add(word)
        words.append(word)
        rows.append(vector)
    if not rows:
        raise DataError(f"{path}: no vectors read" + (" for the training vocabulary" if keep else ""))
    return WordVectors(words, np.stack(rows).astype(np.float32), str(path))


def write_word2vec_text(vectors: WordVectors, path: str | Path) -> None:
    with storage.open_file(path, "w") as f:
        f.write(f"{len(vectors.words)} {vectors.dim}\n")
        for word, row in zip(vectors.words, vectors.vectors):
            f.write(word + " " + " ".join(f"{x:.6f}" for x in row) + "\n")


def write_word2vec_binary(vectors: WordVectors, path: str | Path) -> None:
    with storage.open_file(path, "wb") as f:
        f.write(f"{len(vectors.words)} {vectors.dim}\n".encode())
        for word, row in zip(vectors.words, vectors.vectors):
            f.write(word.encode("utf-8") + b" " + row.astype("<f4").tobytes() + b"\n")


def write_glove(vectors: WordVectors, path: str | Path) -> None:
    with storage.open_file(path, "w") as f:
        for word, row in zip(vectors.words, vectors.vectors):
            f.write(word + " " + " ".join(f"{x:.6f}" for x in row) + "\n")


@dataclasses.dataclass
class Coverage:
    """How much of the training text the vectors cover."""

    types_found: int
    types_total: int
    tokens_found: int
    tokens_total: int

    @property
    def type_share(self) -> float:
        return self.types_found / max(self.types_total, 1)

    @property
    def token_share(self) -> float:
        return self.tokens_found / max(self.tokens_total, 1)

    def __str__(self) -> str:
        return (f"vectors cover {self.type_share:.1%} of word types ({self.types_found}/"
                f"{self.types_total}) and {self.token_share:.1%} of tokens "
                f"({self.tokens_found}/{self.tokens_total})")


def embedding_matrix(
    vocabulary: list[str], vectors: WordVectors, counts: dict[str, int] | None = None, seed: int = 0,
) -> tuple[np.ndarray, Coverage]:
    """Rows for `vocabulary` (TextVectorization order: '' then '[UNK]' first).

    Known words get their vectors; unknown words and [UNK] get random rows at the
    vectors' own scale (per-dimension mean and std); the padding row is zero.
    """
    index = vectors.index()
    rng = np.random.default_rng(seed)
    mean, std = vectors.vectors.mean(axis=0), vectors.vectors.std(axis=0)
    matrix = (mean + std * rng.standard_normal((len(vocabulary), vectors.dim))).astype(np.float32)
    found = 0
    for row, word in enumerate(vocabulary):
        if word == "":
            matrix[row] = 0.0
        elif word in index:
            matrix[row] = vectors.vectors[index[word]]
            found += 1
    real = [w for w in vocabulary if w not in ("", "[UNK]")]
    counts = counts or {}
    tokens_total = sum(counts.values())
    tokens_found = sum(c for w, c in counts.items() if w in index)
    return matrix, Coverage(found, len(real), tokens_found, tokens_total)
