"""Default encoder, fine-tuned: GoEmotions (multi-label, 28 labels) and RTE / MRPC (sentence pairs).

    python benchmarks/glue_and_goemotions.py --goemotions-train 4000 --epochs 3

GoEmotions: a random training subset (seed 0), the full dev set; micro/macro-F1 at
0.5 and with per-label thresholds tuned on dev (an optimistic figure, marked so).
RTE and MRPC: full train, full dev; accuracy and macro-F1.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import OUT, machine, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--goemotions-train", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--pairs", default="rte,mrpc")
    parser.add_argument("--out", default=str(OUT / "glue_and_goemotions.json"))
    args = parser.parse_args()
    report = {"machine": machine(), "args": vars(args)}
    go = require_shared("goemotions")
    result = train(TrainConfig.of(train=go / "train.tsv", valid=go / "dev.tsv", task="multi_label",
                                  max_train_examples=args.goemotions_train, epochs=args.epochs,
                                  learning_rate=1e-4, seq_length=64, export=False, verbose=2,
                                  output_dir=str(OUT / "models"), name="goemotions"))
    report["goemotions"] = {k: v for k, v in result.metrics.items() if k != "thresholds"}
    print("goemotions", report["goemotions"], flush=True)
    for name in args.pairs.split(","):
        data = require_shared(name)
        result = train(TrainConfig.of(train=data / "train.tsv", valid=data / "dev.tsv", text_column="text_a",
                                      text_b_column="text_b", epochs=args.epochs, learning_rate=5e-5,
                                      seq_length=128, export=False, verbose=2,
                                      output_dir=str(OUT / "models"), name=name))
        report[name] = {k: result.metrics[k] for k in ("accuracy", "macro_f1", "examples")}
        print(name, report[name], flush=True)
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
