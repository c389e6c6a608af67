"""Why a multi-label head on fixed features is standardised: one GoEmotions draw, the same embeddings, five heads.

    cd benchmarks && ../.venv/bin/python multi_label_feature_head.py --per-class 8 --seed 0

Draws `--per-class` texts per first label (few_shot_draws, as learning_curve.py draws), embeds them once with the
default encoder (frozen, mean-pooled: what `fit_head` reads), then fits `FeatureHead` (the logistic regression of
models.contrastive.fit_head, to its training loss's plateau) on the features as they are, centred, standardised,
and standardised with a tenth of the L2 and with none, and scores dev macro-F1 (1,000 rows) with logits > 0.
"""

from __future__ import annotations

import argparse

import numpy as np
import tf_keras
from common import cpu_flags, machine, require_shared
from few_shot_draws import evaluation_rows, first_labels, macro_f1
from learning_curve import drawn, read_split

from tfhub_transfer import TextClassifier
from tfhub_transfer.config import OptimizationConfig, RuntimeConfig
from tfhub_transfer.data.tables import Examples
from tfhub_transfer.models import contrastive
from tfhub_transfer.training.loop import fit_task

VARIANTS = {  # name -> (centre, scale, L2 as a multiple of scikit-learn's C=1)
    "raw, C=1": (False, False, 1.0), "centred, C=1": (True, False, 1.0), "standardised, C=1": (True, True, 1.0),
    "standardised, C=10": (True, True, 0.1), "standardised, no L2": (True, True, 0.0),
}


def fitted_logits(model, features, targets, test, centre: bool, scale: bool, l2: float) -> np.ndarray:
    mean = features.mean(0) if centre else 0.0
    spread = features.std(0) + 1e-6 if scale else 1.0
    train, test = (features - mean) / spread, (test - mean) / spread
    steps = -(-len(train) // 32)
    examples = contrastive.FeatureExamples(train, targets).repeated(-(-contrastive.HEAD_EPOCH_STEPS // steps))
    tf_keras.utils.set_random_seed(0)
    head = contrastive.FeatureHead(model, train.shape[-1], l2=l2 / (2 * len(train)))
    recipe = OptimizationConfig(epochs=contrastive.HEAD_MAX_EPOCHS, learning_rate=contrastive.HEAD_LEARNING_RATE,
                                optimizer="adamw", schedule="constant", warmup_fraction=0.0, weight_decay=0.0,
                                batch_size=32)
    stop = tf_keras.callbacks.EarlyStopping("loss", min_delta=contrastive.HEAD_MIN_DELTA,
                                            patience=contrastive.HEAD_PATIENCE)
    fit_task(head, examples, None, recipe, RuntimeConfig(verbose=0, callbacks=[]), None, job="benchmark",
             extra_callbacks=(stop,))
    return head.predict(test, verbose=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", default="default")
    args = parser.parse_args()
    print(f"machine: {machine()}; lscpu flags: {cpu_flags()}", flush=True)
    root = require_shared("goemotions")
    texts, _, labels = read_split(root / "train.tsv", None)
    dev_texts, _, dev_labels = read_split(root / "dev.tsv", None)
    keep = evaluation_rows(len(dev_texts), 1000)
    dev_texts, dev_labels = [dev_texts[i] for i in keep], [dev_labels[i] for i in keep]
    picked, _ = drawn(first_labels(labels), args.per_class, args.seed, True)
    texts, labels = [texts[i] for i in picked], [labels[i] for i in picked]
    names = sorted({n for y in labels for n in y.split(",")})
    tf_keras.utils.set_random_seed(args.seed)
    model = TextClassifier.from_encoder(args.encoder, labels=names, task="multi_label", mode="freeze", seed=0)
    model.compile()
    targets = model.encode_labels(labels)
    features = contrastive.features_of(model, Examples(texts, targets), 32).features
    test = contrastive.embed(model, dev_texts, 64)
    truth = np.array([[n in y.split(",") for n in names] for y in dev_labels])
    for name, (centre, scale, l2) in VARIANTS.items():
        logits = fitted_logits(model, features, targets, test, centre, scale, l2)
        print(f"{name}: macro-F1 {macro_f1(truth, logits > 0):.4f}, labels predicted on {np.mean(logits > 0):.2%} "
              f"of (row, label) cells", flush=True)


if __name__ == "__main__":
    main()
