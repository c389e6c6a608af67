"""Packing's speed-up: fine-tuning the default encoder on packed rows against the same batches unpacked.

    .venv/bin/python benchmarks/packing_speed.py                     # SST-2 and AG News, 2 rounds
    .venv/bin/python benchmarks/packing_speed.py --datasets sst2 --rounds 1 --train-examples 500

For each dataset, four arms train the same seeded training texts through `train()` (the one loop,
AdamW 5e-5, batch 32, 128-token cut, 2 epochs), in interleaved rounds (A B C D, A B C D):
- `buckets`: the default (similar lengths batched together, each batch padded to its longest row);
- `buckets + pack`: the same batches, each packed into rows of `--pack` word pieces;
- `no buckets`: random batches, padded to their longest row;
- `no buckets + pack`: those batches packed.
Packing changes no batch's loss or gradient (tests/preprocessing/test_packing.py), so the arms with and without it
learn the same thing; the dropout masks differ, so dev accuracy differs by noise only.

Reported: train examples/s over epoch 2 (epoch 1 holds the tracing), its ratio to `buckets` in the same
round, the tokens the encoder computes per real token in an epoch's batches, and the accuracy on
`--eval-examples` seeded texts of the evaluation split.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from common import OUT, TrainTimer, cpu_flags, machine, require_shared, steady_rate

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.jobs.train import train
from tfhub_transfer.preprocessing.packing import pack_batch
from tfhub_transfer.preprocessing.text import TextPreprocessor, make_training_dataset

DATASETS = {"sst2": ("train.tsv", "dev.tsv"), "ag_news": ("train.tsv", "test.tsv")}
ARMS = (("buckets", True, False), ("buckets + pack", True, True), ("no buckets", False, False),
        ("no buckets + pack", False, True))
BATCH, SEQ_LENGTH = 32, 128


def seeded_rows(path, count: int, seed: int, out_path) -> None:
    """Writes `count` seeded rows of the TSV at `path` (its header kept) to `out_path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    chosen = sorted(np.random.default_rng(seed).choice(len(lines) - 1, min(count, len(lines) - 1), replace=False))
    out_path.write_text("\n".join([lines[0]] + [lines[1 + i] for i in chosen]) + "\n", encoding="utf-8")


def token_work(train_file, args) -> dict[tuple[bool, bool], float]:
    """Tokens the encoder computes per real token over one epoch's batches, per (buckets, pack)."""
    preprocessor = TextPreprocessor(resolve_encoder("default", None).preprocessor)
    texts = read_table(train_file).texts
    out = {}
    for bucket in (True, False):
        dataset, steps = make_training_dataset(texts, np.zeros(len(texts), np.int32), preprocessor, BATCH,
                                               SEQ_LENGTH, 1, seed=args.seed, bucket=bucket)
        real = padded = packed = 0
        for inputs, _ in dataset.take(steps):
            real += int(inputs["input_mask"].numpy().sum())
            padded += int(inputs["input_mask"].numpy().size)
            packed += int(pack_batch(inputs, args.pack)["input_mask"].numpy().size)
        out[(bucket, False)], out[(bucket, True)] = padded / real, packed / real
    return out


def run_arm(train_file, eval_file, args, bucket: bool, pack: bool) -> dict:
    timer = TrainTimer()
    result = train(TrainConfig.of(
        train=train_file, valid=eval_file, epochs=2, batch_size=BATCH, learning_rate=5e-5, seed=args.seed,
        seq_length=SEQ_LENGTH, bucket=bucket, packing=args.pack if pack else 0, export=False,
        output_dir=OUT / "packing_runs", name=f"run{time.time_ns()}", callbacks=[timer], verbose=0,
        backup_every_steps=0, restore_best=False, tensorboard=False))
    return {"examples_per_s": steady_rate(timer, args.train_examples), "accuracy": result.metrics["accuracy"],
            "epoch_seconds": timer.epoch_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2,ag_news")
    parser.add_argument("--train-examples", type=int, default=1500)
    parser.add_argument("--eval-examples", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pack", type=int, default=128, help="packed row length in word pieces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(OUT / "packing_speed.json"))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "cpu_flags": cpu_flags(), "args": vars(args), "datasets": {}}
    for name in args.datasets.split(","):
        folder = require_shared(name)
        train_file, eval_file = OUT / f"packing_{name}_train.tsv", OUT / f"packing_{name}_eval.tsv"
        seeded_rows(folder / DATASETS[name][0], args.train_examples, args.seed, train_file)
        seeded_rows(folder / DATASETS[name][1], args.eval_examples, args.seed + 1, eval_file)
        work = token_work(train_file, args)
        rounds = []
        for round_index in range(args.rounds):
            row = {}
            for arm, bucket, pack in ARMS:
                started = time.perf_counter()
                row[arm] = run_arm(train_file, eval_file, args, bucket, pack)
                print(f"{name} round {round_index} {arm}: {row[arm]['examples_per_s']:.1f} examples/s, "
                      f"accuracy {row[arm]['accuracy']:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
            rounds.append(row)
        report["datasets"][name] = {"rounds": rounds, "tokens_per_real_token": {
            arm: work[(bucket, pack)] for arm, bucket, pack in ARMS}}
        print_table(name, rounds, report["datasets"][name]["tokens_per_real_token"])
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2)
    print(f"machine: {report['machine']}\nlscpu flags: {report['cpu_flags']}")


def print_table(name: str, rounds: list[dict], work: dict) -> None:
    print(f"\n{name}\n| arm | examples/s per round | ratio to buckets (per round) | tokens computed per real token "
          "| accuracy per round |\n|---|---|---|---|---|")
    for arm, _, _ in ARMS:
        rates = [r[arm]["examples_per_s"] for r in rounds]
        accuracies = " / ".join(f"{r[arm]['accuracy']:.3f}" for r in rounds)
        ratios = [r[arm]["examples_per_s"] / r["buckets"]["examples_per_s"] for r in rounds]
        print(f"| {arm} | {' / '.join(f'{x:.1f}' for x in rates)} | "
              f"{' / '.join(f'{x:.2f}' for x in ratios)} (mean {statistics.mean(ratios):.2f}) | {work[arm]:.2f} | "
              f"{accuracies} |", flush=True)


if __name__ == "__main__":
    main()
