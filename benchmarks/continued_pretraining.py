"""Continued masked-LM pretraining of the default encoder, then small-data SST-2 fine-tuning from it.

    python benchmarks/continued_pretraining.py --epochs 1 --labelled 1000 --seeds 0,1,2

1. Pretrain on WikiText-103 (valid+test) and, separately, on SST-2's training
   sentences without labels: held-out masked-token accuracy / perplexity before and after.
2. Fine-tune on a small labelled SST-2 subset from the original and from each adapted
   encoder, same seeds, and report SST-2 dev accuracy.

The default encoder (all-MiniLM-L6-v2) ships without an MLM head, so its head starts
from a fresh initialisation: "before" is an untrained head, and part of the gain is the
head learning, not the encoder adapting.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from common import OUT, machine, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.pretrain import PretrainConfig, pretrain
from tfhub_transfer.jobs.train import train


def fine_tune(encoder: str, sst2: Path, labelled: int, seed: int, out: Path) -> float:
    result = train(TrainConfig.of(train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", encoder=encoder,
                                  epochs=3, batch_size=32, seq_length=64, max_train_examples=labelled,
                                  seed=seed, output_dir=out, name="ft", export=False, verbose=2))
    return result.metrics["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--sst2-lines", type=int, default=20000, help="unlabelled SST-2 lines to use")
    parser.add_argument("--labelled", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default=str(OUT / "continued_pretraining"))
    args = parser.parse_args()
    wiki, sst2, out = require_shared("wikitext103_tokens"), require_shared("sst2"), Path(args.out)
    report = {"machine": machine(), "args": vars(args), "pretraining": {}, "fine_tuning": {}}
    corpora = {
        "wikitext103": ([wiki / "wiki.valid.tokens", wiki / "wiki.test.tokens"], None, None),
        "sst2_unlabelled": ([sst2 / "train.tsv"], "text", args.sst2_lines),
    }
    encoders = {"original": "default"}
    for name, (files, column, max_lines) in corpora.items():
        result = pretrain(PretrainConfig.of(corpus=files, text_column=column, max_lines=max_lines,
                                            out=out / "encoders" / name, seq_length=args.seq_length,
                                            epochs=args.epochs, verbose=2))
        report["pretraining"][name] = {"before": result.before, "after": result.after,
                                       "path": str(result.path)}
        encoders[f"adapted_{name}"] = str(result.path)
        print(name, json.dumps(report["pretraining"][name], indent=1), flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name, encoder in encoders.items():
        scores = [fine_tune(encoder, sst2, args.labelled, seed, out / "ft") for seed in seeds]
        report["fine_tuning"][name] = {"dev_accuracy": scores, "mean": statistics.mean(scores)}
        print(name, scores, flush=True)
    print(json.dumps(report, indent=2))
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
