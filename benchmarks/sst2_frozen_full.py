"""Frozen default encoder on the full SST-2 training set: the feature cache, a head trained to convergence.

    python benchmarks/sst2_frozen_full.py                       # the variants below, all 67,349 rows
    python benchmarks/sst2_frozen_full.py --train-examples 8000 '{"layer_mix": "concat_last4"}'

Protocol: `train(mode="freeze", feature_cache=True)` on the training file with 5 % of it held out
(`--validation-fraction`) for the head's early stopping and `--tune-head`'s choice; SST-2 dev (872
sentences) is used only for the score, through the full model (encoder + the cached head copied back),
on raw strings. The encoder runs over the training set once: every variant reads the same cache.
Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from common import OUT, machine, peak_rss_mb, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.jobs.train import train

VARIANTS = ({}, {"tune_head": True}, {"layer_mix": "concat_last4"}, {"layer_mix": "concat_last4", "tune_head": True})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="JSON options of train() per run (default: %(default)s)")
    parser.add_argument("--train-examples", type=int, default=0, help="0: the whole training file")
    parser.add_argument("--validation-fraction", type=float, default=0.05)
    parser.add_argument("--seq-length", type=int, default=64)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--out", default=str(OUT / "frozen_full"))
    args = parser.parse_args()
    variants = [json.loads(v) for v in args.variants] or list(VARIANTS)
    sst2 = require_shared("sst2")
    dev = read_table(sst2 / "dev.tsv")
    print(json.dumps({"machine": machine()}), flush=True)
    for options in variants:
        started = time.time()
        result = train(TrainConfig.of(
            train=sst2 / "train.tsv", encoder=args.encoder, mode="freeze", feature_cache=True,
            seq_length=args.seq_length, validation_fraction=args.validation_fraction,
            max_train_examples=args.train_examples or None, output_dir=args.out, name="frozen",
            export=False, tensorboard=False, verbose=1, **options))
        logits = result.model.predict(dev.texts, verbose=0)
        names = result.label_names
        accuracy = float(np.mean([names[i] == y for i, y in zip(np.argmax(logits, -1), dev.labels)]))
        print(json.dumps({**options, "train_examples": args.train_examples or "all",
                          "held_out_accuracy": round(result.metrics["accuracy"], 4), "dev_accuracy": round(accuracy, 4),
                          "chosen": result.metrics.get("head_tuning", {}).get("chosen"),
                          "epochs": len(result.history.get("loss", [])), "seconds": round(time.time() - started),
                          "peak_rss_mb": round(peak_rss_mb())}), flush=True)


if __name__ == "__main__":
    main()
