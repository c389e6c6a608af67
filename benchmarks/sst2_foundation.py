"""SST-2 with the default encoder: freeze vs finetune, and the TF-tutorial pipeline shape as baseline.

    python benchmarks/sst2_foundation.py --train-examples 4000 --epochs 2

Ours: preprocessing in tf.data (tokenise once, cache, dynamic padding per batch),
encoder inputs into the model. Baseline (the TF "classify text with BERT"
tutorial's shape): string input, preprocessing hub.KerasLayer inside the model,
fixed seq 128. Same encoder, pooling, head, optimizer, data and seed.
Train examples/s counts the training part of epochs 2..N (epoch 1 includes tracing).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras
from common import OUT, TrainTimer, add_sst2_arguments, load_sst2_subset, machine, steady_rate

from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.layers.heads import ClassificationHead
from tfhub_transfer.layers.pooling import SequencePooling
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.preprocessing.text import make_dataset
from tfhub_transfer.training.objectives import compile_args
from tfhub_transfer.training.optimizers import make_adamw


def fit_and_score(model, train_ds, dev_ds, splits, args) -> dict:
    """Fits (timing the training part of each epoch) and scores on dev."""
    timer = TrainTimer()
    model.fit(train_ds, validation_data=dev_ds, epochs=args.epochs, callbacks=[timer], verbose=2)
    logits = model.predict(dev_ds.map(lambda x, y: x), verbose=0)
    return {"dev_accuracy": float(np.mean(logits.argmax(-1) == splits.valid_ids)),
            "train_examples_per_s": steady_rate(timer, len(splits.train)),
            "epoch_seconds": timer.epoch_seconds}


def run_ours(splits, mode: str, lr: float, args) -> dict:
    tf_keras.utils.set_random_seed(args.seed)
    model = TextClassifier.from_encoder("default", num_classes=2, mode=mode, seq_length=128, seed=args.seed)
    pre = model.preprocessor
    train_ds = make_dataset(splits.train.texts, splits.train_ids, pre, args.batch_size, 128,
                            shuffle=True, seed=args.seed)
    dev_ds = make_dataset(splits.valid.texts, splits.valid_ids, pre, 64, 128)
    steps = math.ceil(len(splits.train) / args.batch_size) * args.epochs
    model.compile("adamw", learning_rate=lr, schedule="linear", warmup_fraction=0.1, weight_decay=0.01,
                  total_steps=steps)
    return fit_and_score(model, train_ds, dev_ds, splits, args)


def run_tutorial_shape(splits, lr: float, args, return_model: bool = False):
    tf_keras.utils.set_random_seed(args.seed)
    spec = resolve_encoder("default")
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    inputs = hub.KerasLayer(spec.preprocessor, name="preprocessing")(text)  # fixed seq 128
    outputs = hub.KerasLayer(spec.encoder, trainable=True, name="encoder")(inputs)
    features = SequencePooling(spec.pooling)(outputs, inputs["input_mask"])
    logits = ClassificationHead(2, 0.1, args.seed)(features)
    model = tf_keras.Model(text, logits)
    train_ds = (tf.data.Dataset.from_tensor_slices((splits.train.texts, splits.train_ids))
                .shuffle(10_000, seed=args.seed).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    dev_ds = tf.data.Dataset.from_tensor_slices((splits.valid.texts, splits.valid_ids)).batch(64)
    steps = math.ceil(len(splits.train) / args.batch_size) * args.epochs
    model.compile(optimizer=make_adamw(lr, steps), **compile_args("single_label", 2))
    scores = fit_and_score(model, train_ds, dev_ds, splits, args)
    return (scores, model) if return_model else scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_sst2_arguments(parser, str(OUT / "sst2_foundation.json"))
    args = parser.parse_args()
    _, splits = load_sst2_subset(args)
    results = {"machine": machine(), "args": vars(args), "runs": {}}
    started = time.time()
    results["runs"]["ours_freeze"] = run_ours(splits, "freeze", 1e-3, args)
    results["runs"]["ours_finetune"] = run_ours(splits, "finetune", 5e-5, args)
    results["runs"]["tutorial_finetune"] = run_tutorial_shape(splits, 5e-5, args)
    runs = results["runs"]
    results["speedup_finetune_vs_tutorial"] = (
        runs["ours_finetune"]["train_examples_per_s"] / runs["tutorial_finetune"]["train_examples_per_s"]
    )
    results["wall_seconds"] = time.time() - started
    print(json.dumps(results, indent=2))
    from pathlib import Path

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
