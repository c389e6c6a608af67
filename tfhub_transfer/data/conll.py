"""CoNLL column files for token classification (NER): sentences of words with IOB2 tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from tfhub_transfer import storage
from tfhub_transfer.errors import DataError


@dataclasses.dataclass
class TaggedSentences:
    words: list[list[str]]
    tags: list[list[str]] | None
    source: str
    lines: list[int]  # the line each sentence starts on

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices) -> TaggedSentences:
        pick = list(indices)
        return TaggedSentences([self.words[i] for i in pick],
                               None if self.tags is None else [self.tags[i] for i in pick],
                               self.source, [self.lines[i] for i in pick])


def read_conll(path: str | Path, tag_column: int = -1, max_sentences: int | None = None) -> TaggedSentences:
    """Reads CoNLL column format: one `word ... tag` line per token, blank lines between sentences."""
    path = storage.location(path)  # local, or a URL (gs://, ram://) kept as its string
    if not storage.exists(path):
        raise DataError(f"{path} does not exist")
    words, tags, lines, current, current_tags, start = [], [], [], [], [], 1
    with storage.open_file(path, "r") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if current:
                    words.append(current), tags.append(current_tags), lines.append(start)
                    if max_sentences and len(words) >= max_sentences:
                        break
                current, current_tags, start = [], [], number + 1
                continue
            if len(fields) < 2:
                raise DataError(f"{path}: line {number} has no tag column: {line.strip()!r}")
            if not current:
                start = number
            current.append(fields[0])
            current_tags.append(fields[tag_column])
    if current and not (max_sentences and len(words) >= max_sentences):
        words.append(current), tags.append(current_tags), lines.append(start)
    if not words:
        raise DataError(f"{path} has no sentences")
    return TaggedSentences(words, [to_iob2(t) for t in tags], str(path), lines)


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (or already IOB2) tags to IOB2: an entity always starts with B-."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def tag_vocabulary(sentences: TaggedSentences) -> list[str]:
    names = sorted({t for row in sentences.tags for t in row} - {"O"}, key=lambda t: (t[2:], t))
    return ["O", *names]
