"""Fine-tuning and serving speed on SST-2 against the TF tutorial's shape, measured in one run.

    python benchmarks/sst2_speed.py --train-examples 4000 --epochs 2

Training (same encoder, pooling, head, optimizer, data, seed; train examples/s over
epochs 2..N, so tracing is excluded; dev accuracy on all 872 dev sentences):
- tutorial: string input, preprocessing hub.KerasLayer inside the model, fixed seq 128, float32;
- ours_float32: `train()` with tf.data preprocessing, each batch padded to its own longest row;
- ours_bucketed: the same plus length bucketing (similar lengths share a batch);
- ours_bucketed_bf16: the same with `--dtype bfloat16` (the default encoder's bfloat16 copy, BertConfig.compute_dtype).
Serving: examples/s of each export's raw-string `serving_default` on the dev sentences in
batches of 64 (after one warm-up pass): the tutorial's `model.save` export against ours.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tensorflow as tf
from common import OUT, TrainTimer, add_sst2_arguments, load_sst2_subset, machine, peak_rss_mb, steady_rate
from sst2_foundation import run_tutorial_shape

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.export.saved_model import export_classifier
from tfhub_transfer.jobs.train import train


def run_ours(sst2: Path, args, bucket: bool, dtype: str) -> tuple[dict, object]:
    timer = TrainTimer()
    result = train(TrainConfig.of(
        train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", max_train_examples=args.train_examples,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=5e-5, seed=args.seed,
        bucket=bucket, dtype=dtype, export=False, output_dir=args.scratch, name=f"speed_{dtype}",
        callbacks=[timer], verbose=2, backup_every_steps=0,
    ))
    return ({"dev_accuracy": result.metrics["accuracy"],
             "train_examples_per_s": steady_rate(timer, args.train_examples),
             "epoch_seconds": timer.epoch_seconds}, result)


def serving_rate(signature, texts: list[str], batch: int = 64, passes: int = 3) -> float:
    batches = [tf.constant(texts[i:i + batch]) for i in range(0, len(texts), batch)]
    for b in batches:  # warm-up: traces every batch shape once
        signature(text=b)
    started = time.perf_counter()
    for _ in range(passes):
        for b in batches:
            signature(text=b)
    return passes * len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sst2_arguments(parser, str(OUT / "sst2_speed.json"))
    parser.add_argument("--scratch", default=str(OUT / "speed_models"))
    args = parser.parse_args()
    sst2, splits = load_sst2_subset(args)
    results = {"machine": machine(), "args": vars(args), "train": {}, "serving": {}}
    started = time.time()
    tutorial, tutorial_model = run_tutorial_shape(splits, 5e-5, args, return_model=True)
    results["train"]["tutorial"] = tutorial
    models = {}
    for name, bucket, dtype in (("ours_float32", False, "float32"), ("ours_bucketed", True, "float32"),
                                ("ours_bucketed_bf16", True, "bfloat16")):
        results["train"][name], trained = run_ours(sst2, args, bucket, dtype)
        models[name] = trained
    base = results["train"]["tutorial"]["train_examples_per_s"]
    for run in results["train"].values():
        run["speedup_vs_tutorial"] = run["train_examples_per_s"] / base

    texts = list(splits.valid.texts)
    tutorial_dir = Path(args.scratch) / "tutorial_export"
    tutorial_model.save(str(tutorial_dir), include_optimizer=False)
    serving = {"tutorial_export": serving_rate(
        tf.saved_model.load(str(tutorial_dir)).signatures["serving_default"], texts)}
    for name in ("ours_bucketed", "ours_bucketed_bf16"):
        path = export_classifier(models[name].model, models[name].label_names, args.scratch, name)
        serving[name] = serving_rate(tf.saved_model.load(str(path)).signatures["serving_default"], texts)
    base = serving["tutorial_export"]
    results["serving"] = {k: {"examples_per_s": v, "speedup_vs_tutorial_export": v / base}
                          for k, v in serving.items()}
    results["peak_rss_mb"] = peak_rss_mb()
    results["wall_seconds"] = time.time() - started
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"dev accuracy unchanged? tutorial {tutorial['dev_accuracy']:.4f}, " + ", ".join(
        f"{k} {v['dev_accuracy']:.4f}" for k, v in results["train"].items()))


if __name__ == "__main__":
    main()
