"""Keras callbacks used by `train`."""

from __future__ import annotations

import numpy as np
import tf_keras


class RestoreBestWeights(tf_keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` and restores them when training ends."""

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max"):
        super().__init__()
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = -np.inf
        self.best_epoch: int | None = None
        self._best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.sign * value > self.best:
            self.best = self.sign * value
            self.best_epoch = epoch
            self._best_weights = [w.numpy() for w in self.model.trainable_weights]

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            for weight, value in zip(self.model.trainable_weights, self._best_weights):
                weight.assign(value)
