"""Tiny test encoders written once and shared by every test worker and run.

Writing one costs 15-25 s (a SavedModel pair with its tokenizer); tests only read them. Each is
kept under the system temp directory, keyed by its options and a digest of the code that writes
encoders, so a change to that code writes fresh ones.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "tfhub_transfer-test-encoders"
DONE = "complete"


def _code_digest() -> str:
    digest = hashlib.sha256()
    package = ROOT / "tfhub_transfer"
    sources = sorted((package / "encoders").rglob("*.py")) + sorted((package / "demo_data").glob("*"))
    for path in sources:
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    import tensorflow as tf

    digest.update(tf.__version__.encode())
    return digest.hexdigest()


def shared_tiny_bert(**options) -> Path:
    """`write_tiny_bert(**options)`, written at most once for these options and this code."""
    key = hashlib.sha256((_code_digest() + json.dumps(options, sort_keys=True)).encode()).hexdigest()[:20]
    target = CACHE / key
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits for the one writing it
        if not (target / DONE).exists():
            _write(target, options)
    return target / "tiny"


def _write(target: Path, options: dict) -> None:
    from tfhub_transfer.encoders.build.tiny import write_tiny_bert

    shutil.rmtree(target, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE, prefix=f".{target.name}-{os.getpid()}-"))
    write_tiny_bert(staging / "tiny", **options)
    (staging / DONE).write_text("ok\n")
    staging.rename(target)
