"""SST-2 with a BiLSTM: random init vs word2vec vectors as init / frozen / slow, same data and seed.

    python benchmarks/train_word2vec.py          # once: vectors from WikiText-103
    python benchmarks/sst2_word_vectors.py --train-examples 4000 --epochs 4

The training subset (4,000, seed 0) is the one benchmarks/sst2_foundation.py uses
for the default encoder, so its frozen / fine-tuned rows compare directly.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tf_keras
from common import OUT, TrainTimer, machine, require_shared

from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.data.vectors import read_word_vectors
from tfhub_transfer.models.rnn_classifier import RnnClassifier, RnnClassifierConfig
from tfhub_transfer.preprocessing.text import make_string_dataset
from tfhub_transfer.training.loop import predict_outputs

MODES = ("random", "init", "freeze", "slow")


def run(mode: str, splits, vectors, args) -> dict:
    tf_keras.utils.set_random_seed(args.seed)
    config = RnnClassifierConfig(2, args.vectors, mode, "bilstm", 64, 20_000, 48, args.slow_factor,
                                 embedding_dim=vectors.dim, seed=args.seed)
    model = RnnClassifier(config, train_texts=splits.train.texts, vectors=vectors)
    train_ds = make_string_dataset(splits.train.texts, splits.train_ids, 32, True, args.seed)
    dev_ds = make_string_dataset(splits.valid.texts, splits.valid_ids, 64)
    model.compile("adam", learning_rate=args.lr, schedule="constant")
    timer = TrainTimer()
    started = time.perf_counter()
    model.fit(train_ds, validation_data=dev_ds, epochs=args.epochs, callbacks=[timer], verbose=2)
    seconds = time.perf_counter() - started
    accuracy = float((np.argmax(predict_outputs(model, dev_ds), -1) == splits.valid_ids).mean())
    return {"dev_accuracy": accuracy, "train_seconds": seconds, "epoch_train_seconds": timer.epoch_seconds,
            "coverage": str(model.coverage) if model.coverage else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vectors", default=str(OUT / "word2vec/wikitext103.txt"))
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--slow-factor", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(OUT / "sst2_word_vectors.json"))
    args = parser.parse_args()
    sst2 = require_shared("sst2")
    splits = load_labelled(sst2 / "train.tsv", sst2 / "dev.tsv", max_train_examples=args.train_examples,
                           seed=args.seed)
    vectors = read_word_vectors(args.vectors)
    results = {"machine": machine(), "args": vars(args), "runs": {}}
    for mode in MODES:
        print(f"== {mode}", flush=True)
        results["runs"][mode] = run(mode, splits, vectors, args)
    print(json.dumps(results, indent=2))
    print("\n| embedding mode | dev accuracy | train s | vs random |\n|---|---|---|---|")
    base = results["runs"]["random"]["train_seconds"]
    for mode, r in results["runs"].items():
        print(f"| {mode} | {r['dev_accuracy']:.4f} | {r['train_seconds']:.1f} | "
              f"{r['train_seconds'] / base:.2f}× |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
