"""GoEmotions (28 labels, multi-label) with the default encoder: frozen + feature cache on the full
training set, and fine-tuning on a subset.

    python benchmarks/goemotions_multilabel.py --finetune-examples 8000 --finetune-epochs 4

Frozen: all 43,410 training examples encoded once (mean pooling per layer), a learned
scalar mix + linear head trained from the cache. Fine-tuned: a random subset. Dev: the
full 5,426-example dev set. Micro/macro-F1 at threshold 0.5, and with per-label
thresholds tuned on dev (optimistic: tuned and scored on the same set).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import OUT, machine, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.train import train


def run(config: TrainConfig) -> dict:
    started = time.perf_counter()
    result = train(config)
    scores = {k: v for k, v in result.metrics.items() if k != "thresholds"}
    return {**scores, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frozen-epochs", type=int, default=10)
    parser.add_argument("--finetune-examples", type=int, default=8000)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--out", default=str(OUT / "goemotions.json"))
    args = parser.parse_args()
    go = require_shared("goemotions")
    common = dict(train=go / "train.tsv", valid=go / "dev.tsv", task="multi_label", seq_length=64,
                  export=False, verbose=2, output_dir=str(OUT / "models"), name="goemotions")
    report = {"machine": machine(), "args": vars(args)}
    report["frozen_scalar_mix_cache"] = run(TrainConfig.of(
        **common, mode="freeze", layer_mix="scalar_mix", pooling="mean", feature_cache=True,
        epochs=args.frozen_epochs, learning_rate=3e-3, batch_size=64))
    print("frozen", report["frozen_scalar_mix_cache"], flush=True)
    if not args.skip_finetune:
        report["finetune"] = run(TrainConfig.of(
            **common, mode="finetune", max_train_examples=args.finetune_examples,
            epochs=args.finetune_epochs, learning_rate=2e-4, batch_size=32))
        print("finetune", report["finetune"], flush=True)
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
