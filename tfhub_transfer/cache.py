"""Where the package keeps what it builds once per user (the converted default encoder)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`."""
    explicit = os.environ.get("TFHUB_TRANSFER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfhub_transfer"
