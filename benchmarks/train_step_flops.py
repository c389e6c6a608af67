"""How close a fine-tuning step gets to this machine's dense matmul rate, and peak memory.

    python benchmarks/train_step_flops.py --batch 32 --seq 128

Measured in one run: (1) the dense matmul rate of this CPU, float32 and bfloat16, on
[4096 x 1024] @ [1024 x 4096] (the best of several repeats); (2) full fine-tuning
steps of the default encoder classifier on a fixed [batch, seq] input with no padding,
float32, with the mixed_bfloat16 encoder copy, and with the float32 encoder under a global
mixed_bfloat16 Keras policy (which cannot reach into the SavedModel, tensorflow/hub#466).
Train-step FLOPs are counted analytically (matmuls only): forward = tokens x layers x
(8H^2 + 4HI + 4SH) and a training step = 3 x forward (backward: two matmuls per forward one).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras
from common import OUT, machine, peak_rss_mb

from tfhub_transfer.encoders.resolve import read_metadata, resolve_encoder
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.models.text_classifier import TextClassifier


def matmul_rate(dtype: tf.DType, m: int = 4096, k: int = 1024, n: int = 4096, repeats: int = 20) -> float:
    a = tf.random.normal([m, k], dtype=tf.float32)
    b = tf.random.normal([k, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    step = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step().numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best


def train_step_flops(config: dict, batch: int, seq: int) -> float:
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_layers"]
    forward = batch * seq * layers * (8 * hidden**2 + 4 * hidden * inter + 4 * seq * hidden)
    return 3.0 * forward


def time_train_steps(encoder: str, batch: int, seq: int, steps: int) -> float:
    """Median seconds per step after 5 warm-up steps (the first steps trace and allocate)."""
    model = TextClassifier.from_encoder(encoder, num_classes=2, mode="finetune", seq_length=seq, seed=0)
    model.compile("adamw", learning_rate=5e-5, schedule="constant", weight_decay=0.01)
    inputs = {"input_word_ids": tf.fill([batch, seq], 2000), "input_mask": tf.ones([batch, seq], tf.int32),
              "input_type_ids": tf.zeros([batch, seq], tf.int32)}
    labels = np.zeros(batch, np.int32)
    for _ in range(5):
        model.train_on_batch(inputs, labels)
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(inputs, labels)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32, help="per step (one device)")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(OUT / "train_step_flops.json"))
    args = parser.parse_args()
    spec = resolve_encoder("default")
    config = read_metadata(Path(spec.encoder).parent)["config"]
    flops = train_step_flops(config, args.batch, args.seq)
    results = {"machine": machine(), "args": vars(args), "train_step_gflop": flops / 1e9}
    runs = (("float32", tf.float32, "default", "float32"),
            ("bfloat16", tf.bfloat16, encoder_variant("default", "bfloat16"), "float32"),
            ("float32_savedmodel_under_mixed_policy", tf.bfloat16, "default", "mixed_bfloat16"))
    for name, dtype, encoder, policy in runs:
        peak = matmul_rate(dtype)
        tf_keras.mixed_precision.set_global_policy(policy)
        seconds = time_train_steps(encoder, args.batch, args.seq, args.steps)
        tf_keras.mixed_precision.set_global_policy("float32")
        results[name] = {"matmul_gflops": peak / 1e9, "train_step_seconds": seconds,
                         "train_step_gflops": flops / seconds / 1e9,
                         "fraction_of_matmul_rate": flops / seconds / peak}
    results["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
