"""Fused AdamW (the package's default) vs tf_keras's AdamW: first-step and steady step time.

    cd benchmarks && ../.venv/bin/python fused_optimizer.py --rounds 2 --steps 40

Fine-tunes the default encoder (all-MiniLM-L6-v2, 22.6 M parameters) on the same SST-2 sentences
with each optimizer, rounds interleaved in one process (A B A B): the same schedule, learning
rate, weight decay (0.01, none on norms and biases) and epsilon; only the update's kernels differ.
Reports the first step (tracing the train function, then running it) and the median of the
steady steps (same batches in the same order, dropout 0; tests/test_optimizers.py checks that
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
from tfhub_transfer.training.optimizers import NO_DECAY
from tfhub_transfer.training.schedules import WarmupLinearDecay


class StepClock(tf_keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.started)

    def on_train_begin(self, logs=None):
        self.times = []


def tf_keras_adamw(steps: int, lr: float) -> tf_keras.optimizers.Optimizer:
    optimizer = tf_keras.optimizers.AdamW(WarmupLinearDecay(lr, steps, steps // 10), weight_decay=0.01, epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer


def one_run(arm: str, texts, labels, args) -> tuple[float, float]:
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder("default", num_classes=2, mode="finetune", seed=0, dropout=0.0)
    if arm == "fused":
        model.compile(learning_rate=args.lr, total_steps=args.steps)  # the package default: FusedAdamW
    else:
        model.compile(optimizer=tf_keras_adamw(args.steps, args.lr))
    clock = StepClock()
    model.fit(texts, labels, batch_size=32, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
    return clock.times[0], statistics.median(clock.times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=5e-5)
    args = parser.parse_args()
    lines = (require_shared("sst2") / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = np.random.default_rng(0).permutation(len(lines))[:32 * args.steps]
    texts = [lines[i].rsplit("\t", 1)[0] for i in rows]
    labels = np.asarray([int(lines[i].rsplit("\t", 1)[1]) for i in rows])
    results: dict[str, list[tuple[float, float]]] = {"tf_keras": [], "fused": []}
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
    first = [statistics.median(r[0] for r in results[a]) for a in results]
    steady = [statistics.median(r[1] for r in results[a]) for a in results]
    report += ["", f"fused / tf_keras: first step {first[1] / first[0]:.2f}x the time, "
               f"steady step {steady[1] / steady[0]:.2f}x the time"]
    print("\n".join(report))
    OUT.mkdir(exist_ok=True)
    (OUT / "fused_optimizer.md").write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    tf.get_logger().setLevel("ERROR")
    main()
