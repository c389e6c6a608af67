"""Serving formats on CPU: latency at batch 1, throughput at batch 64, SST-2 dev accuracy, per format.

    python benchmarks/serving_formats.py                     # default encoder, 4k SST-2 examples, 1 epoch
    python benchmarks/serving_formats.py --run saved_models/sst2/run   # an existing training run
    python benchmarks/serving_formats.py --encoder /tmp/tiny --train-examples 200 --dev-examples 64 \\
        --latency-requests 20 --throughput-batches 2 --rounds 1   # a smoke run

One classifier (trained here unless --run names one) is exported as: fp32 SavedModel (today's
export, the baseline), TFLite fp32 and int8 (raw strings in, tokenised inside), ONNX fp32 and
int8 (token ids in; tokenised by the same FastBertTokenizer graph outside onnxruntime, which is
timed: every figure is raw strings in, probabilities out). Where the CPU has bfloat16 instructions,
also a bf16 SavedModel: the same trained weights in the encoder's `--dtype bfloat16` copy (bfloat16
attention and feed-forward matmuls, float32 variables and layer norms), what a model trained with
`--dtype bfloat16` exports. Each is loaded with its own runtime
(TensorFlow, the TFLite interpreter with tensorflow-text's kernels, onnxruntime), given the same
number of threads, warmed up, then measured in interleaved rounds (A B C ... A B C ...) so that
load on a shared machine falls on every format alike:

- latency: one dev sentence per call (cycled), p50 and p99 over all rounds, milliseconds;
- throughput: batches of 64 dev sentences, examples/s over all rounds;
- accuracy: every dev sentence (or --dev-examples), against the gold labels.

The CPU's flags (`lscpu`), load averages and library versions are recorded with the results
(JSON and a markdown table in --out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import OUT, cpu_flags, machine, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.encoders.dtypes import bfloat16_fallback
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.export.onnx import OnnxClassifier
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.export.tflite import TFLiteClassifier
from tfhub_transfer.jobs.train import train
from tfhub_transfer.models.saving import load
from tfhub_transfer.models.text_classifier import TextClassifier

VARIANTS = (  # name, format, quantize
    ("saved_model_fp32", "saved_model", None),
    ("tflite_fp32", "tflite", None),
    ("tflite_int8", "tflite", "int8"),
    ("onnx_fp32", "onnx", None),
    ("onnx_int8", "onnx", "int8"),
    ("saved_model_bf16", "saved_model", None),  # exported from bfloat16_twin, on bf16 CPUs only
)
BATCH = 64


def versions() -> dict:
    import onnxruntime
    import tensorflow as tf
    import tensorflow_text
    import tf2onnx

    return {"tensorflow": tf.__version__, "tensorflow_text": tensorflow_text.__version__,
            "onnxruntime": onnxruntime.__version__, "tf2onnx": tf2onnx.__version__}


def trained_model(args, sst2: Path):
    if args.run:
        return load(args.run)
    config = TrainConfig.of(train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", encoder=args.encoder,
                            max_train_examples=args.train_examples, epochs=args.epochs, batch_size=32,
                            seq_length=args.seq_length, seed=args.seed, export=False,
                            output_dir=args.scratch, name="serving_formats", verbose=1)
    return train(config).model


def bfloat16_twin(model):
    """The trained classifier with its encoder computing in bfloat16: the same float32 weights."""
    config = dataclasses.replace(model.config, encoder=encoder_variant(model.config.encoder, "bfloat16"))
    twin = TextClassifier(config, model.label_names)
    twin.set_weights(model.get_weights())
    return twin


def largest_difference(model, twin, texts: list[str]) -> float:
    """The largest |output difference| of two classifiers on `texts` (proof that the twin has the weights)."""
    return float(np.max(np.abs(model.predict(texts, verbose=0) - twin.predict(texts, verbose=0))))


def open_variant(path: Path, fmt: str, threads: int):
    if fmt == "tflite":
        return TFLiteClassifier(path, num_threads=threads)
    if fmt == "onnx":
        return OnnxClassifier(path, num_threads=threads)
    return ExportedClassifier(path)


def directory_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def latency_ms(predictor, texts: list[str], count: int, start: int) -> list[float]:
    times = []
    for i in range(count):
        text = texts[(start + i) % len(texts)]
        began = time.perf_counter()
        predictor.predict([text], batch_size=1)
        times.append((time.perf_counter() - began) * 1000)
    return times


def throughput(predictor, texts: list[str], batches: int, start: int) -> tuple[int, float]:
    done, began = 0, time.perf_counter()
    for i in range(batches):
        first = ((start + i) * BATCH) % max(len(texts) - BATCH, 1)
        chunk = texts[first:first + BATCH]
        predictor.predict(chunk, batch_size=BATCH)
        done += len(chunk)
    return done, time.perf_counter() - began


def accuracy(predictor, texts: list[str], labels: np.ndarray, names: list[str]) -> float:
    predicted = predictor.predict(texts, batch_size=BATCH)["labels"]
    return float(np.mean([names.index(p) == y for p, y in zip(predicted, labels)]))


def markdown(results: dict) -> str:
    base = results["variants"]["saved_model_fp32"]
    lines = ["| format | precision | size (MB) | p50 batch 1 (ms) | p99 batch 1 (ms) | batch 64 (examples/s) "
             "| vs SavedModel | SST-2 dev accuracy |", "|---|---|---|---|---|---|---|---|"]
    for name, row in results["variants"].items():
        fmt, precision = name.rsplit("_", 1)
        lines.append(f"| {fmt} | {precision} | {row['size_mb']:.1f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
                     f"| {row['examples_per_s']:.1f} | {row['examples_per_s'] / base['examples_per_s']:.2f}x "
                     f"| {row['accuracy']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="an existing training run (OUT/NAME/run); default: train one here")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev-examples", type=int, help="default: all 872")
    parser.add_argument("--latency-requests", type=int, default=200, help="batch-1 calls per format per round")
    parser.add_argument("--throughput-batches", type=int, default=10, help="batches of 64 per format per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="TFLite / onnxruntime threads")
    parser.add_argument("--scratch", default=str(OUT / "serving_formats_models"))
    parser.add_argument("--out", default=str(OUT / "serving_formats"))
    args = parser.parse_args()

    sst2 = require_shared("sst2")
    dev = read_table(sst2 / "dev.tsv")
    texts, gold = list(dev.texts)[:args.dev_examples], np.asarray(dev.labels)[:args.dev_examples]
    model = trained_model(args, sst2)
    names = list(model.label_names)
    gold_ids = np.asarray([names.index(str(y)) if str(y) in names else int(y) for y in gold])
    Path(args.scratch).mkdir(parents=True, exist_ok=True)
    exports = Path(tempfile.mkdtemp(prefix="exports-", dir=args.scratch))  # a fresh one per run
    predictors, results = {}, {"variants": {}}
    for name, fmt, quantize in VARIANTS:
        bf16 = name.endswith("bf16")
        if bf16 and (reason := bfloat16_fallback()):
            print(f"{name}: skipped, {reason}", flush=True)
            continue
        began = time.perf_counter()
        source = bfloat16_twin(model) if bf16 else model
        if bf16:
            results["bf16_max_output_difference"] = largest_difference(model, source, texts[:64])
            print(f"{name}: largest output difference from float32 on 64 sentences "
                  f"{results['bf16_max_output_difference']:.4f}", flush=True)
        path = source.export(exports, name, format=fmt, quantize=quantize)
        predictors[name] = open_variant(path, fmt, args.threads)
        results["variants"][name] = {"export_s": time.perf_counter() - began, "size_mb": directory_mb(path),
                                     "accuracy": accuracy(predictors[name], texts, gold_ids, names)}
        latency_ms(predictors[name], texts, 10, 0)  # warm-up: traces, allocations, first calls
        throughput(predictors[name], texts, 2, 0)
        print(f"{name}: exported in {results['variants'][name]['export_s']:.1f} s, "
              f"accuracy {results['variants'][name]['accuracy']:.4f}", flush=True)

    load_before = os.getloadavg()
    times = {name: [] for name in predictors}
    rates = {name: [0, 0.0] for name in predictors}
    for round_index in range(args.rounds):
        for name, predictor in predictors.items():  # interleaved: every format sees the same load
            times[name] += latency_ms(predictor, texts, args.latency_requests, round_index * args.latency_requests)
            done, seconds = throughput(predictor, texts, args.throughput_batches, round_index)
            rates[name][0] += done
            rates[name][1] += seconds
    for name in predictors:
        row = results["variants"][name]
        row.update(p50_ms=float(np.percentile(times[name], 50)), p99_ms=float(np.percentile(times[name], 99)),
                   examples_per_s=rates[name][0] / rates[name][1], latency_calls=len(times[name]))
    fp32 = results["variants"]
    for quantized, reference in (("tflite_int8", "tflite_fp32"), ("onnx_int8", "onnx_fp32"),
                                 ("saved_model_bf16", "saved_model_fp32")):
        if quantized in fp32:
            fp32[quantized]["accuracy_minus_fp32"] = fp32[quantized]["accuracy"] - fp32[reference]["accuracy"]
    results.update(machine=machine(), cpu_flags=cpu_flags(), load_average_before=load_before,
                   load_average_after=os.getloadavg(), versions=versions(), args=vars(args),
                   dev_examples=len(texts), model=model.name, encoder=getattr(model.spec, "name", None))
    table = markdown(results)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "results.md").write_text(table + "\n", encoding="utf-8")
    print(f"wrote {out}/results.json and results.md")


if __name__ == "__main__":
    main()
