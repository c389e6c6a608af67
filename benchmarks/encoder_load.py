"""Time to load encoder SavedModels as `hub.KerasLayer(path, trainable=True)`, interleaved rounds.

    python benchmarks/encoder_load.py PATH_A PATH_B [--rounds 3]

Each round loads every path once (A B A B ...) in this process and calls it on one small batch;
prints the median seconds per path and the size of each `saved_model.pb`. Used for issue #11
(writer 3 no longer saves the Keras encoder as a subobject of the encoder SavedModel).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _encoder_dir(path: str) -> Path:
    path = Path(path)
    return path / "encoder" if (path / "encoder" / "saved_model.pb").exists() else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="encoder SavedModels (or encoder pairs holding encoder/)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_hub as hub

    dirs = [_encoder_dir(p) for p in args.paths]
    batch = {k: tf.ones([2, 16], tf.int32) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    seconds: dict[Path, list[float]] = {d: [] for d in dirs}
    for _ in range(args.rounds):
        for d in dirs:
            start = time.perf_counter()
            layer = hub.KerasLayer(str(d), trainable=True)
            layer(batch)
            seconds[d].append(time.perf_counter() - start)
    print("| encoder | saved_model.pb | load + first call (median s) | rounds |")
    print("|---|---|---|---|")
    for d in dirs:
        size = (d / "saved_model.pb").stat().st_size / 1e6
        print(f"| {d} | {size:.2f} MB | {statistics.median(seconds[d]):.2f} | "
              f"{', '.join(f'{s:.2f}' for s in seconds[d])} |")


if __name__ == "__main__":
    main()
