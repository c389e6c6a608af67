"""Unlabelled in-domain text for continued pretraining: text files, or the text column of labelled files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tfhub_transfer import storage
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import DataError


def read_corpus_lines(paths: Sequence[str | Path], text_column: str | None = None,
                      max_lines: int | None = None) -> list[str]:
    """Non-empty text lines from plain files, or a text column of labelled files (labels ignored)."""
    lines: list[str] = []
    for path in paths:
        path = storage.location(path)  # local, or a URL (gs://, ram://) kept as its string
        if os.path.splitext(storage.basename(path))[1].lower() in (".csv", ".tsv", ".jsonl") and text_column:
            lines += read_table(path, text_column, None).texts
        else:
            if not storage.exists(path):
                raise DataError(f"corpus file {path} does not exist")
            for line in storage.read_text(path).splitlines():
                stripped = line.strip()
                if stripped and not (stripped.startswith("=") and stripped.endswith("=")):
                    lines.append(stripped)
        if max_lines and len(lines) >= max_lines:
            return lines[:max_lines]
    if not lines:
        raise DataError(f"the corpus {list(map(str, paths))} has no text lines")
    return lines
