"""Feature cache speed: epochs 2..N of frozen-encoder training from the cache vs re-encoding every epoch.

    python benchmarks/feature_cache_speed.py --train-examples 4000 --epochs 3

Same data (SST-2 subset), mix (`last`), pooling (mean), head, optimizer and batch size
in both runs; the ratio compares the training part of epochs 2..N.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import tf_keras
from common import OUT, TrainTimer, machine, require_shared

from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.models.cached_heads import CachedHead
from tfhub_transfer.models.text_classifier import ClassifierConfig, TextClassifier
from tfhub_transfer.preprocessing.text import make_dataset
from tfhub_transfer.training.feature_cache import FeatureSpec, build_feature_cache, cached_dataset, read_manifest

# Both runs: AdamW at peak 1e-3, 10 % warmup then linear decay over all the steps.
SCHEDULE = dict(learning_rate=1e-3, schedule="linear", warmup_fraction=0.1, weight_decay=0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(OUT / "feature_cache_speed.json"))
    args = parser.parse_args()
    sst2 = require_shared("sst2")
    splits = load_labelled(sst2 / "train.tsv", sst2 / "dev.tsv", max_train_examples=args.train_examples)
    tf_keras.utils.set_random_seed(0)
    steps = math.ceil(len(splits.train) / 32) * args.epochs
    plain = TextClassifier(ClassifierConfig(2, mode="freeze", pooling="mean", layer_mix="last"))
    ds = make_dataset(splits.train.texts, splits.train_ids, plain.preprocessor, 32, 128, shuffle=True)
    plain.compile("adamw", total_steps=steps, **SCHEDULE)
    uncached = TrainTimer()
    plain.fit(ds, epochs=args.epochs, callbacks=[uncached], verbose=2)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        path = build_feature_cache(plain.get_layer("encoder"), plain.preprocessor, plain.spec,
                                   FeatureSpec("mean", 128), splits.train.texts, root=root, verbose=0)
        build_seconds = time.perf_counter() - started
        manifest = read_manifest(path)
        head = CachedHead(plain, manifest["layers"], manifest["hidden"])
        head.compile("adamw", total_steps=steps, **SCHEDULE)
        cached = TrainTimer()
        head.fit(cached_dataset(path, splits.train_ids, 32, shuffle=True), epochs=args.epochs,
                 callbacks=[cached], verbose=2)
    later_uncached = sum(uncached.epoch_seconds[1:])
    later_cached = sum(cached.epoch_seconds[1:])
    report = {"machine": machine(), "args": vars(args), "uncached_epoch_seconds": uncached.epoch_seconds,
              "cache_build_seconds": build_seconds, "cached_epoch_seconds": cached.epoch_seconds,
              "speedup_epochs_2_to_n": later_uncached / later_cached}
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
