"""Fused AdamW (the package's default) vs tf_keras's AdamW: first-step and steady step time.

    cd benchmarks && ../.venv/bin/python fused_optimizer.py --rounds 2 --steps 40

Three arms: tf_keras's AdamW; `fused_sparse_kept`, the fused update with the word-embedding table's
sparse gradient left to tf_keras's update (the package before 2026-11-24); and `fused`, the default,
which makes that gradient dense for the fused kernel. `--table-only` times just the word-embedding
table's update (30,522 x 384, 512 looked-up rows) in the last two arms, and their largest difference.

Fine-tunes the default encoder (all-MiniLM-L6-v2, 22.6 M parameters) on the same SST-2 sentences
with each optimizer, rounds interleaved in one process (A B A B): the same schedule, learning
rate, weight decay (0.01, none on norms and biases) and epsilon; only the update's kernels differ.
Reports the first step (tracing the train function, then running it) and the median of the
steady steps (same batches in the same order, dropout 0; tests/training/test_optimizers.py checks that
the two updates agree).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
import tf_keras
from common import OUT, cpu_flags, machine, require_shared

from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.training.optimizers import NO_DECAY, FusedAdamW
from tfhub_transfer.training.schedules import WarmupLinearDecay


class StepClock(tf_keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.started)

    def on_train_begin(self, logs=None):
        self.times = []


class SparseKeptAdamW(FusedAdamW):
    """The fused update for dense gradients only: embedding-lookup gradients go through tf_keras's update."""

    def update_step(self, gradient, variable):
        if isinstance(gradient, tf.IndexedSlices):
            return tf_keras.optimizers.AdamW.update_step(self, gradient, variable)
        return super().update_step(gradient, variable)


def reference_adamw(optimizer_class, steps: int, lr: float) -> tf_keras.optimizers.Optimizer:
    """An AdamW of `optimizer_class` with the package default's schedule, decay and epsilon."""
    optimizer = optimizer_class(WarmupLinearDecay(lr, steps, steps // 10), weight_decay=0.01, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


REFERENCES = {"tf_keras": tf_keras.optimizers.AdamW, "fused_sparse_kept": SparseKeptAdamW}


def one_run(arm: str, texts, labels, args) -> tuple[float, float]:
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder("default", num_classes=2, mode="finetune", seed=0, dropout=0.0)
    if arm == "fused":
        model.compile(learning_rate=args.lr, total_steps=args.steps)  # the package default: FusedAdamW
    else:
        model.compile(optimizer=reference_adamw(REFERENCES[arm], args.steps, args.lr))
    clock = StepClock()
    model.fit(texts, labels, batch_size=32, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    return clock.times[0], statistics.median(clock.times[1:])


def table_update_ms(optimizer_class, steps: int = 30) -> tuple[float, np.ndarray]:
    """Median ms of one update of a word-embedding-sized table by a sparse gradient, and the table after."""
    rng = np.random.default_rng(0)
    table = tf.Variable(rng.normal(size=(30522, 384)).astype("float32"), name="word_embeddings")
    optimizer = optimizer_class(learning_rate=1e-4, weight_decay=0.01, epsilon=1e-6)
    optimizer.build([table])

    @tf.function
    def step(rows, values):
        optimizer.apply_gradients([(tf.IndexedSlices(values, rows, tf.constant(table.shape.as_list())), table)])

    times = []
    for _ in range(steps):
        rows = tf.constant(rng.integers(0, table.shape[0], 512))
        values = tf.constant(rng.normal(size=(512, 384)).astype("float32"))
        started = time.perf_counter()
        step(rows, values)
        table[0, 0].numpy()  # waits for the update
        times.append(time.perf_counter() - started)
    return statistics.median(times[3:]) * 1000, table.numpy()


def table_only(rounds: int) -> None:
    arms = {"fused_sparse_kept": SparseKeptAdamW, "fused": FusedAdamW}
    for round_ in range(rounds):
        tables = {}
        for arm, optimizer_class in arms.items():
            milliseconds, tables[arm] = table_update_ms(optimizer_class)
            print(f"round {round_ + 1} {arm}: {milliseconds:.1f} ms per update", flush=True)
        print(f"largest difference after 30 updates: {np.abs(tables['fused'] - tables['fused_sparse_kept']).max():.2g}")
    print(f"{machine()}; lscpu flags: {cpu_flags()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--table-only", action="store_true", help="time only the word-embedding table's update")
    args = parser.parse_args()
    if args.table_only:
        return table_only(args.rounds)
    lines = (require_shared("sst2") / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = np.random.default_rng(0).permutation(len(lines))[:32 * args.steps]
    texts = [lines[i].rsplit("\t", 1)[0] for i in rows]
    labels = np.asarray([int(lines[i].rsplit("\t", 1)[1]) for i in rows])
    results: dict[str, list[tuple[float, float]]] = {"tf_keras": [], "fused_sparse_kept": [], "fused": []}
    for round_ in range(args.rounds):
        for arm in results:
            results[arm].append(one_run(arm, texts, labels, args))
            print(f"round {round_ + 1} {arm}: first step {results[arm][-1][0]:.2f} s, "
                  f"steady {results[arm][-1][1] * 1000:.0f} ms", flush=True)
    report = [f"{machine()}; lscpu flags: {cpu_flags()}", "", "| optimizer | first step (s) | steady step (ms) |",
              "|---|---|---|"]
    for arm, runs in results.items():
        report.append(f"| {arm} | {', '.join(f'{r[0]:.2f}' for r in runs)} | "
                      f"{', '.join(f'{r[1] * 1000:.0f}' for r in runs)} |")
    first = {a: statistics.median(r[0] for r in runs) for a, runs in results.items()}
    steady = {a: statistics.median(r[1] for r in runs) for a, runs in results.items()}
    report.append("")
    for reference in REFERENCES:
        report.append(f"fused / {reference}: first step {first['fused'] / first[reference]:.2f}x the time, "
                      f"steady step {steady['fused'] / steady[reference]:.2f}x the time")
    print("\n".join(report))
    OUT.mkdir(exist_ok=True)
    (OUT / "fused_optimizer.md").write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
