"""How close a fine-tuning step gets to this machine's dense matmul rate, what bfloat16 buys, and peak memory.

    python benchmarks/train_step_flops.py --batch 32 --seq 128
    python benchmarks/train_step_flops.py --batch 32 --seq 32 --no-ops

Measured in one run: (1) the dense matmul rate of this CPU, float32 and bfloat16, on
[4096 x 1024] @ [1024 x 4096] (the best of several repeats); (2) op by op, forward + backward
of each kind of work in an encoder step, float32 against bfloat16, at the step's shapes;
(3) full fine-tuning steps of the default encoder classifier on a fixed [batch, seq] input with
no padding, one step of each in turn, for three encoders with the same weights:
- `float32`: the default encoder;
- `bfloat16`: `--dtype bfloat16`'s copy (BertConfig.compute_dtype: bfloat16 matmuls; layer norms,
  softmax, GELU, dropout and residual sums in float32);
- `whole_model_mixed_bfloat16`: the same encoder built under a global mixed_bfloat16 Keras policy
  (every layer's compute in bfloat16, the package's bfloat16 copy before this recipe).
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
from common import OUT, cpu_flags, machine, peak_rss_mb

from tfhub_transfer.encoders.build.bert import exact_gelu
from tfhub_transfer.encoders.resolve import read_metadata, resolve_encoder
from tfhub_transfer.encoders.variants import encoder_variant, write_variant
from tfhub_transfer.models.text_classifier import TextClassifier


def best_seconds(step, repeats: int = 20) -> float:
    """The fastest of `repeats` calls of the tf.function `step`, after one call that traces it."""
    step()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step().numpy()
        best = min(best, time.perf_counter() - started)
    return best


def matmul_rate(dtype: tf.DType, m: int = 4096, k: int = 1024, n: int = 4096) -> float:
    a = tf.random.normal([m, k], dtype=tf.float32)
    b = tf.random.normal([k, n], dtype=tf.float32)
    a, b = tf.cast(a, dtype), tf.cast(b, dtype)
    return 2 * m * k * n / best_seconds(tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))))


def train_step_flops(config: dict, batch: int, seq: int) -> float:
    hidden, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_layers"]
    forward = batch * seq * layers * (8 * hidden**2 + 4 * hidden * inter + 4 * seq * hidden)
    return 3.0 * forward


def op_milliseconds(op, shape: list[int], dtype: tf.DType) -> float:
    """Best milliseconds of forward + backward of `op` on a random float32 tensor of `shape` cast to `dtype`."""
    x = tf.cast(tf.random.normal(shape), dtype)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = op(x)
        return tape.gradient(y, x)

    return best_seconds(step) * 1e3


def step_ops(config: dict, batch: int, seq: int) -> dict[str, tuple]:
    """One of each kind of work in an encoder layer, at the step's shapes: name -> (op, input shape)."""
    hidden, inter, heads = config["hidden_size"], config["intermediate_size"], config["num_heads"]
    tokens = batch * seq
    ffn = tf.random.normal([hidden, inter])
    dropout = tf_keras.layers.Dropout(0.1)
    norm = tf_keras.layers.LayerNormalization(epsilon=1e-12)
    norm.build([tokens, hidden])
    return {
        f"feed-forward matmul [{tokens},{hidden}]x[{hidden},{inter}]": (
            lambda x: tf.matmul(x, tf.cast(ffn, x.dtype)), [tokens, hidden]),
        f"attention scores einsum [{batch},{heads},{seq},{seq}]": (
            lambda x: tf.einsum("bqhd,bkhd->bhqk", x, x), [batch, seq, heads, hidden // heads]),
        f"exact GELU [{tokens},{inter}]": (exact_gelu, [tokens, inter]),
        f"softmax [{batch},{heads},{seq},{seq}]": (tf.nn.softmax, [batch, heads, seq, seq]),
        f"dropout 0.1 [{batch},{heads},{seq},{seq}]": (lambda x: dropout(x, training=True), [batch, heads, seq, seq]),
        f"layer norm [{tokens},{hidden}]": (lambda x: norm(tf.cast(x, tf.float32)) if x.dtype == tf.float32
                                            else tf.cast(norm(tf.cast(x, tf.float32)), x.dtype), [tokens, hidden]),
        f"cast float32<->bfloat16 [{tokens},{inter}]": (
            lambda x: tf.cast(tf.cast(x, tf.bfloat16 if x.dtype == tf.float32 else tf.float32), x.dtype),
            [tokens, inter]),
    }


def classifier_step(encoder: str, batch: int, seq: int):
    """A compiled default-shaped classifier on `encoder` and a function running one training step on a
    fixed input; the first steps (tracing, allocation) are run here."""
    model = TextClassifier.from_encoder(encoder, num_classes=2, mode="finetune", seq_length=seq, seed=0)
    model.compile("adamw", learning_rate=5e-5, schedule="constant", weight_decay=0.01)
    inputs = {"input_word_ids": tf.fill([batch, seq], 2000), "input_mask": tf.ones([batch, seq], tf.int32),
              "input_type_ids": tf.zeros([batch, seq], tf.int32)}
    labels = np.zeros(batch, np.int32)
    for _ in range(5):
        model.train_on_batch(inputs, labels)
    return lambda: model.train_on_batch(inputs, labels)


def interleaved_step_seconds(steps: dict, count: int) -> dict[str, list[float]]:
    """Seconds of each of `count` steps per model, taken in turn (A B C, A B C, ...), so that a slow
    phase of a shared machine falls on every model alike."""
    seconds = {name: [] for name in steps}
    for _ in range(count):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - started)
    return seconds


def encoders_to_compare() -> dict[str, tuple[str, tf.DType]]:
    """name -> (encoder directory, the dtype of its matmuls), all with the default encoder's weights."""
    bfloat16 = encoder_variant("default", "bfloat16", cpu_flags={"avx512_bf16"})  # measured even where emulated
    source = Path(resolve_encoder("default").encoder).parent
    whole = source.with_name(source.name + "-whole-model-mixed-bfloat16")
    write_variant(source, whole, "float32", global_policy="mixed_bfloat16")
    return {"float32": (str(source), tf.float32), "bfloat16": (bfloat16, tf.bfloat16),
            "whole_model_mixed_bfloat16": (str(whole), tf.bfloat16)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32, help="per step (one device)")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per encoder, taken in turn")
    parser.add_argument("--no-ops", dest="ops", action="store_false", help="skip the op-by-op table")
    parser.add_argument("--out", default=str(OUT / "train_step_flops_{batch}x{seq}.json"))
    args = parser.parse_args()
    spec = resolve_encoder("default")
    config = read_metadata(Path(spec.encoder).parent)["config"]
    flops = train_step_flops(config, args.batch, args.seq)
    results = {"machine": machine(), "cpu_flags": cpu_flags(), "args": vars(args), "train_step_gflop": flops / 1e9}
    peaks = {dtype: matmul_rate(dtype) for dtype in (tf.float32, tf.bfloat16)}
    if args.ops:
        results["ops_ms_forward_backward"] = {
            name: {dtype.name: op_milliseconds(op, shape, dtype) for dtype in (tf.float32, tf.bfloat16)}
            for name, (op, shape) in step_ops(config, args.batch, args.seq).items()}
        for name, times in results["ops_ms_forward_backward"].items():
            print(f"{name}: float32 {times['float32']:.2f} ms, bfloat16 {times['bfloat16']:.2f} ms", flush=True)
    encoders = encoders_to_compare()
    steps = {name: classifier_step(encoder, args.batch, args.seq) for name, (encoder, _) in encoders.items()}
    seconds = interleaved_step_seconds(steps, args.steps)
    float32_step = float(np.median(seconds["float32"]))
    for name, (_, dtype) in encoders.items():
        step = float(np.median(seconds[name]))
        results[name] = {"matmul_gflops": peaks[dtype] / 1e9, "train_step_seconds": step,
                         "fastest_step_seconds": min(seconds[name]), "speedup_over_float32": float32_step / step,
                         "fastest_speedup_over_float32": min(seconds["float32"]) / min(seconds[name]),
                         "train_step_gflops": flops / step / 1e9,
                         "fraction_of_matmul_rate": flops / step / peaks[dtype]}
        print(f"{name}: median {step:.3f} s, fastest {min(seconds[name]):.3f} s per step, "
              f"{results[name]['speedup_over_float32']:.2f}x float32", flush=True)
    results["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(results, indent=2))
    args.out = args.out.format(batch=args.batch, seq=args.seq)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
