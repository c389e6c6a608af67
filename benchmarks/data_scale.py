"""Data larger than memory (#37): the streaming reader on 1e5, 1e6 and 1e7 rows.

For each size a TSV of short rows is generated under /tmp (never in the repository) from SST-2 and AG News
sentences (4 SST-2 rows to 1 AG News row, cycled; six classes), then each arm runs in its own subprocess:

- `counted`: `load_streamed` without label names: the counting pass (seconds, MB/s), then 20 training steps;
- `labels`: with the label names given: no counting pass (rows counted from newlines), then 20 steps;
- `memory` (1e5 and 1e6 only): the in-memory reader `load_labelled`, for comparison (read seconds, RSS).

Each reports the file size, the pass, the time to the first training step (from the start of reading;
TensorFlow's import excluded) and the peak RSS of the process (TensorFlow included). The model is the same
for every size: a tiny hashed bag of words (65,536 buckets x 32, mean-pooled, a dense layer), not the default
encoder, so that the figures are the data path's, not the encoder's. `--stream-pass` also times one full
pass of the tf.data stream (batches of 256).

    .venv/bin/python benchmarks/data_scale.py --rows 100000,1000000,10000000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WORK = Path("/tmp/tfhub_transfer_data_scale")
LABELS = ["neg", "pos", "World", "Sports", "Business", "Sci/Tech"]
STEPS = 20
BATCH = 32


def sentences() -> list[tuple[str, str]]:
    """(text, label) pairs: SST-2 and AG News training rows, 4 to 1."""
    def rows(path: Path, label_of) -> list[tuple[str, str]]:
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        return [(text, label_of(label)) for text, label in (line.rsplit("\t", 1) for line in lines if line)]

    sst2 = rows(DATA / "sst2" / "train.tsv", lambda y: LABELS[int(y)])
    ag = rows(DATA / "ag_news" / "train.tsv", lambda y: y)
    mixed = []
    for i in range(len(ag)):
        mixed += sst2[4 * i % len(sst2):4 * i % len(sst2) + 4] + [ag[i]]
    return mixed


def generate(rows: int) -> Path:
    """A TSV of `rows` rows (made once, kept in /tmp)."""
    path = WORK / f"rows_{rows}.tsv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    pool = sentences()
    part = path.with_suffix(".part")
    with open(part, "w", encoding="utf-8") as out:
        out.write("text\tlabel\n")
        for start in range(0, rows, len(pool)):
            out.writelines(f"{t}\t{y}\n" for t, y in pool[:min(len(pool), rows - start)])
    part.rename(path)
    return path


def arm(path: str, kind: str, stream_pass: bool) -> dict:
    """One arm, in this process: read, then 20 training steps of the tiny model."""
    import tensorflow as tf
    import tf_keras

    from tfhub_transfer.data.streaming import load_streamed
    from tfhub_transfer.data.tables import load_labelled

    started = time.perf_counter()
    result = {"arm": kind, "mb": os.path.getsize(path) / 1e6}
    if kind == "memory":
        splits = load_labelled(path, validation_fraction=0.1)
        result["read_s"] = time.perf_counter() - started
        data = tf.data.Dataset.from_tensor_slices((splits.train.texts, splits.train_ids)).shuffle(
            10_000, seed=0).batch(BATCH)
        classes = len(splits.label_names)
    else:
        splits = load_streamed(path, validation_fraction=0.1, label_names=LABELS if kind == "labels" else None)
        result["read_s"] = time.perf_counter() - started
        result["rows"] = len(splits.train) + len(splits.valid)
        data = splits.train.batches(BATCH, epochs=1, seed=0)
        classes = len(splits.label_names)
    result["pass_mb_s"] = result["mb"] / max(result["read_s"], 1e-9)

    def hashed(texts, targets):
        words = tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 65_535) + 1
        return words.to_tensor(shape=[None, 48]), targets

    model = tf_keras.Sequential([
        tf_keras.layers.Embedding(65_536, 32, mask_zero=True),
        tf_keras.layers.GlobalAveragePooling1D(),
        tf_keras.layers.Dense(classes),
    ])
    model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    first = {}

    class FirstStep(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            first.setdefault("s", time.perf_counter() - started)

    fit_started = time.perf_counter()
    model.fit(data.map(hashed), steps_per_epoch=STEPS, epochs=1, verbose=0, callbacks=[FirstStep()])
    result["first_step_s"] = first["s"]
    result["steps_s"] = time.perf_counter() - fit_started
    if stream_pass and kind == "counted":
        pass_started = time.perf_counter()
        count = sum(int(t.shape[0]) for t, _ in splits.train.batches(256, shuffle=False))
        result["stream_pass_s"] = time.perf_counter() - pass_started
        result["stream_pass_mb_s"] = result["mb"] * count / result["rows"] / result["stream_pass_s"]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="100000,1000000,10000000")
    parser.add_argument("--arms", default="counted,labels,memory")
    parser.add_argument("--memory-max-rows", type=int, default=1_000_000, help="the in-memory arm up to this size")
    parser.add_argument("--stream-pass", action="store_true", help="also time one pass of the tf.data stream")
    parser.add_argument("--arm", nargs=2, help=argparse.SUPPRESS)  # internal: PATH KIND, in a subprocess
    args = parser.parse_args()
    if args.arm:
        json.dump(arm(args.arm[0], args.arm[1], args.stream_pass), sys.stdout)
        return
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    for rows in (int(float(n)) for n in args.rows.split(",")):
        made = time.perf_counter()
        path = generate(rows)
        print(f"{rows} rows: {path} ({path.stat().st_size / 1e6:.1f} MB, made in "
              f"{time.perf_counter() - made:.0f} s)", flush=True)
        for kind in args.arms.split(","):
            if kind == "memory" and rows > args.memory_max_rows:
                continue
            command = [sys.executable, __file__, "--arm", str(path), kind] + (["--stream-pass"] * args.stream_pass)
            done = subprocess.run(command, capture_output=True, text=True,
                                  env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
            if done.returncode:
                print(f"  {kind}: failed\n{done.stderr[-2000:]}", flush=True)
                continue
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {rows} {json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()})}",
                  flush=True)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}", flush=True)


if __name__ == "__main__":
    main()
