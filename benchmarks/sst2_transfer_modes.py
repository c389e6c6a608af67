"""SST-2 dev accuracy and train-step time per transfer mode, default encoder, small training subsets.

    python benchmarks/sst2_transfer_modes.py --subsets 1000,8000 --epochs 2

Every mode sees the same subset, seed, batch size, schedule and epochs
(`tfhub_transfer.jobs.compare.compare_modes`). Step time is the mean of the
fastest 90 % of steps (drops tracing); ratios are against `finetune` in the same run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import machine, peak_rss_mb, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.compare import compare_modes, results_markdown

MODES = "freeze,partial:3,gradual,discriminative,finetune,reinit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subsets", default="1000,8000")
    parser.add_argument("--modes", default=MODES)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=64)
    parser.add_argument("--out", default="benchmarks/out/transfer_modes")
    args = parser.parse_args()
    sst2 = require_shared("sst2")
    report = {"machine": machine(), "args": vars(args), "tables": {}}
    for size in [int(s) for s in args.subsets.split(",")]:
        base = TrainConfig.of(train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", encoder="default",
                              epochs=args.epochs, batch_size=args.batch_size, seq_length=args.seq_length,
                              max_train_examples=size, verbose=2, export=False)
        results = compare_modes(base, args.modes.split(","), Path(args.out) / f"n{size}")
        table = results_markdown(results)
        print(f"\n### {size} training examples\n\n{table}", flush=True)
        report["tables"][size] = table
    report["peak_rss_mb"] = peak_rss_mb()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
