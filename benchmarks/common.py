"""Shared helpers for the benchmark scripts: timing callbacks, machine description, SST-2 loading."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import tf_keras
from peer_common import SHARED
from peer_common import cpu_flags as cpu_flags
from peer_common import peak_rss_mb as peak_rss_mb

OUT = Path(__file__).resolve().parent / "out"  # git-ignored; the same folder from any working directory


def machine() -> str:
    import tensorflow as tf

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}")


class TrainTimer(tf_keras.callbacks.Callback):
    """Seconds spent in the training part of each epoch (validation excluded)."""

    def __init__(self):
        super().__init__()
        self.epoch_seconds: list[float] = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        if self._start is not None:
            self.epoch_seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()


def require_shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        raise SystemExit(f"benchmark needs {path} (the ../shared/data checkout)")
    return path


def add_sst2_arguments(parser, out: str) -> None:
    """The flags every SST-2 subset benchmark takes."""
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=out)


def load_sst2_subset(args):
    """(the SST-2 folder, LabelledSplits of `args.train_examples` training sentences and all of dev)."""
    from tfhub_transfer.data.tables import load_labelled

    sst2 = require_shared("sst2")
    splits = load_labelled(sst2 / "train.tsv", sst2 / "dev.tsv",
                           max_train_examples=args.train_examples, seed=args.seed)
    return sst2, splits


def steady_rate(timer: TrainTimer, examples: int) -> float:
    """Training examples/s over epochs 2..N (epoch 1 includes tracing)."""
    seconds = timer.epoch_seconds[1:] or timer.epoch_seconds
    return examples * len(seconds) / sum(seconds)
