"""bfloat16 against float32 fine-tuning on SST-2: training speed and dev accuracy, same data and seeds.

    .venv/bin/python benchmarks/bf16_sst2.py                      # 4,000 sentences, 2 epochs, 2 rounds
    .venv/bin/python benchmarks/bf16_sst2.py --no-bucket          # random batches (longer padded rows)

Each round trains the default encoder through `train()` (AdamW 5e-5, batch 32, 2 epochs) twice on the
same seeded SST-2 training sentences, float32 then `--dtype bfloat16` (BertConfig.compute_dtype), with
the round's seed; dev accuracy is on all 872 SST-2 dev sentences. Reported: train examples/s over
epoch 2 (epoch 1 traces), the bfloat16 / float32 ratio in each round, and the accuracies.
On a CPU without bf16 instructions `--dtype bfloat16` falls back to float32, so this measures nothing
there; it says so and stops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from common import OUT, TrainTimer, add_sst2_arguments, cpu_flags, machine, require_shared, steady_rate

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.build.config import COMPUTE_DTYPES as DTYPES
from tfhub_transfer.encoders.dtypes import bfloat16_fallback
from tfhub_transfer.jobs.train import train


def run(args, dtype: str, seed: int) -> dict:
    sst2 = require_shared("sst2")
    timer = TrainTimer()
    started = time.perf_counter()
    result = train(TrainConfig.of(
        train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", max_train_examples=args.train_examples,
        epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=5e-5, seed=seed, dtype=dtype, bucket=args.bucket, export=False,
        output_dir=OUT / "bf16_runs", name=f"run{time.time_ns()}", callbacks=[timer], verbose=0,
        backup_every_steps=0, restore_best=False, tensorboard=False))
    return {"examples_per_s": steady_rate(timer, args.train_examples),
            "accuracy": result.metrics["accuracy"], "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_sst2_arguments(parser, str(OUT / "bf16_sst2.json"))
    parser.add_argument("--rounds", type=int, default=2, help="rounds (float32, bfloat16), seeds seed..seed+N-1")
    parser.add_argument("--no-bucket", dest="bucket", action="store_false", help="random batches, no length buckets")
    args = parser.parse_args()
    if reason := bfloat16_fallback():
        raise SystemExit(f"nothing to measure: {reason}")
    OUT.mkdir(parents=True, exist_ok=True)
    rounds = []
    for index in range(args.rounds):
        row = {dtype: run(args, dtype, args.seed + index) for dtype in DTYPES}
        rounds.append(row)
        print(f"round {index}: " + ", ".join(
            f"{d} {row[d]['examples_per_s']:.1f} examples/s, accuracy {row[d]['accuracy']:.4f}" for d in DTYPES),
            flush=True)
    ratios = [r["bfloat16"]["examples_per_s"] / r["float32"]["examples_per_s"] for r in rounds]
    mean_accuracy = {d: statistics.mean(r[d]["accuracy"] for r in rounds) for d in DTYPES}
    print("\n| dtype | examples/s per round | dev accuracy per round | mean accuracy |\n|---|---|---|---|")
    for dtype in DTYPES:
        rates = " / ".join(f"{r[dtype]['examples_per_s']:.1f}" for r in rounds)
        accuracies = " / ".join(f"{r[dtype]['accuracy']:.4f}" for r in rounds)
        print(f"| {dtype} | {rates} | {accuracies} | {mean_accuracy[dtype]:.4f} |")
    print(f"bfloat16 / float32 speed per round: {' / '.join(f'{x:.2f}' for x in ratios)} "
          f"(mean {statistics.mean(ratios):.2f}); accuracy difference "
          f"{100 * (mean_accuracy['bfloat16'] - mean_accuracy['float32']):+.2f} points")
    report = {"machine": machine(), "cpu_flags": cpu_flags(), "args": vars(args), "rounds": rounds,
              "speed_ratios": ratios, "mean_accuracy": mean_accuracy}
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"machine: {report['machine']}\nlscpu flags: {report['cpu_flags']}")


if __name__ == "__main__":
    main()
