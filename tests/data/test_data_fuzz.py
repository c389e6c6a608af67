"""Fuzzing the table readers: any file is either read correctly or refused with one DataError.

Seeded, so a failure names a case that can be replayed: `_malformed(random.Random(seed), suffix)`.
"""

import json
import random
import re
import unicodedata

import pytest

from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import DataError

SUFFIXES = (".csv", ".tsv", ".jsonl")
# Letters from several scripts, the delimiters and quotes, line breaks and look-alikes, invisible characters.
PIECES = list("abcxyzABC019 .-") + [
    ",", "\t", '"', '""', "'", "\n", "\r", "\r\n", "é", "ß", "中", "ü", "😀", "\u200b", "\u200d", "\x00", "\x01",
    "\\", "{", "}", "[", "]", ":", "\u2028", "\x85", "\x0c", "\ufeff", "  ",
]
LABELS = ["pos", "neg", "0", "1", "1.0", "-2", "0.5", "a,b", "très"]
JSON_LABELS = [0, 1, 1.0, -2, 0.5, True, "pos", "1"]
INVISIBLE = {"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"}


def _visible(text: str) -> bool:
    return any(not c.isspace() and unicodedata.category(c) not in INVISIBLE for c in text)


def _text(rng: random.Random, suffix: str) -> str:
    """A text that starts with a letter; TSV texts hold no tab or line break (TSV cannot quote them)."""
    pieces = [p for p in PIECES if suffix != ".tsv" or not set(p) & {"\t", "\r", "\n"}]
    return rng.choice("abcXYZé中") + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))


def _csv_field(value: str, rng: random.Random) -> str:
    if rng.random() < 0.2 or set(value) & set(',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _well_formed(rng: random.Random, suffix: str, huge: bool = False) -> tuple[str, list[str], list]:
    """A valid file's text with its rows' texts and labels, written independently of the reader."""
    n = rng.randint(1, 8)
    texts = [_text(rng, suffix) for _ in range(n)]
    if huge:  # a 1 MB text: past csv's default field size limit of 128 KiB
        texts[rng.randrange(n)] = "word, " * 200_000 if suffix == ".csv" else "word " * 200_000
    end = rng.choice(["\n", "\r\n"])
    blank = rng.choice(["", "\n", "  \n"])  # blank lines between rows are skipped
    if suffix == ".jsonl":
        labels = [rng.choice(JSON_LABELS) for _ in range(n)]
        ascii_only = rng.random() < 0.5
        lines = [json.dumps({"label": y, "text": t}, ensure_ascii=ascii_only) for t, y in zip(texts, labels)]
        return "".join(line + end + blank for line in lines), texts, labels
    labels = [rng.choice(LABELS) for _ in range(n)]
    if suffix == ".tsv":
        labels = [y.replace(",", ";") for y in labels]
        rows = ["text\tlabel"] + [f"{t}\t{y}" for t, y in zip(texts, labels)]
    else:
        rows = ["text,label"] + [f"{_csv_field(t, rng)},{_csv_field(y, rng)}" for t, y in zip(texts, labels)]
    return rows[0] + end + "".join(row + end + blank for row in rows[1:]), texts, labels


def _mutate(rng: random.Random, text: str, suffix: str) -> str:
    """One random corruption of a file's text."""
    sep = {".csv": ",", ".tsv": "\t", ".jsonl": ","}[suffix]
    where = rng.randint(0, len(text))
    choice = rng.randrange(14)
    if choice == 0:  # truncated mid-row
        return text[:where]
    if choice == 1:  # a stray quote
        return text[:where] + rng.choice(['"', '""', "'"]) + text[where:]
    if choice == 2:  # a missing delimiter
        spots = [m.start() for m in re.finditer(re.escape(sep), text)]
        if spots:
            spot = rng.choice(spots)
            return text[:spot] + " " + text[spot + 1:]
        return text
    if choice == 3:  # an extra delimiter
        return text[:where] + sep + text[where:]
    if choice == 4:  # a row of invisible characters
        return text + rng.choice(["\u200b\u200d", "\x00\x01", "\ufeff \u2060"]) + sep + "1\n"
    if choice == 5:  # a row with no label
        return text + "lonely" + (sep if rng.random() < 0.5 else "") + "\n"
    if choice == 6:  # a repeated column
        return text.replace("label", "text", 1)
    if choice == 7:  # an unclosed quote at the start of a row
        return text + '"never closed' + sep + "1\n" + text.split("\n", 1)[-1]
    if choice == 8:  # JSON values of the wrong type
        return text.replace('"text": ', '"text": ' + rng.choice(['["x"], "y": ', '{"a": 1}, "y": ', "7, \"y\": ",
                                                                  "null, \"y\": "]), rng.randint(1, 3))
    if choice == 9:  # a row without its text key
        return text + '{"label": 1}\n'
    if choice == 10:  # header only
        return text.split("\n", 1)[0] + "\n"
    if choice == 11:  # blank lines only
        return rng.choice(["", "\n", "\r\n\r\n", "   \n\t\n"])
    if choice == 12:  # a control character in the middle of the text
        return text[:where] + rng.choice(["\x00", "\x1b", "\x7f", "\u2029"]) + text[where:]
    return text.replace("\n", "\r", rng.randint(1, 3))  # old Mac line ends, mixed with others


def _malformed(rng: random.Random, suffix: str, huge: bool) -> bytes:
    text, _, _ = _well_formed(rng, suffix)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        text = _mutate(rng, text, suffix)
    if huge:  # a 1 MB field, quoted or not
        field = rng.choice(["word ", "x", '"q"'])
        field = field * (1_000_000 // len(field))
        text = text + (f'"{field}"' if rng.random() < 0.5 else field) + {".tsv": "\t"}.get(suffix, ",") + "1\n"
    encoding = rng.choices(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"], [12, 1, 1, 1, 1])[0]
    data = text.encode(encoding, errors="replace")
    if rng.random() < 0.1:  # random bytes spliced in
        cut = rng.randint(0, len(data))
        data = data[:cut] + rng.randbytes(rng.randint(1, 40)) + data[cut:]
    if rng.random() < 0.03:
        data = rng.randbytes(rng.randint(0, 300))
    return data


def _check(table, path) -> None:
    """What any table read without error must satisfy."""
    assert len(table) > 0 and len(table.texts) == len(table.labels) == len(table.locations), path
    for text, label in zip(table.texts, table.labels):
        assert isinstance(text, str) and _visible(text), (path, text)
        assert isinstance(label, (str, int, float)) and label == label and label is not None, (path, label)
        assert not isinstance(label, str) or _visible(label), (path, label)
    lines = [int(where.removeprefix("line ")) for where in table.locations]
    assert lines == sorted(set(lines)) and lines[0] >= 1, (path, table.locations)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_well_formed_random_tables_read_back_exactly(tmp_path, suffix):
    for seed in range(60):
        rng = random.Random(f"{suffix}{seed}")
        text, texts, labels = _well_formed(rng, suffix, huge=seed == 7)
        path = tmp_path / f"ok{seed}{suffix}"
        path.write_bytes(text.encode(rng.choice(["utf-8", "utf-8-sig"])))
        table = read_table(path, "text", "label")
        assert table.texts == texts, (seed, text)
        assert table.labels == labels, (seed, text)
        _check(table, path)


def test_malformed_tables_fail_only_with_data_error(tmp_path):
    refused, read = 0, 0
    for seed in range(300):
        rng = random.Random(seed)
        suffix = SUFFIXES[seed % 3]
        path = tmp_path / f"bad{seed}{suffix}"
        path.write_bytes(_malformed(rng, suffix, huge=seed % 50 == 7))
        try:
            table = read_table(path, "text", "label")
        except DataError as err:
            assert str(path) in str(err), (seed, str(err))
            refused += 1
            continue
        except Exception as err:  # anything else is the bug this test looks for
            pytest.fail(f"seed {seed}: {type(err).__name__}: {err} on {path.read_bytes()[:300]!r}")
        _check(table, path)
        read += 1
    # The corruptions must exercise both outcomes, or the fuzzing has stopped finding anything.
    assert refused > 100 and read > 20, (refused, read)
