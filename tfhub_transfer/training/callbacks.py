"""Keras callbacks used by `train`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tf_keras

from tfhub_transfer.files import replace_file


class RestoreBestWeights(tf_keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` and restores them when training ends.

    With `store`, the best weights are also written there (atomically, by the chief
    only) and read back when a resumed run begins, so a crash loses no best epoch.
    """

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max",
                 store: str | Path | None = None, write: bool = True):
        super().__init__()
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.store = Path(store) if store is not None else None
        self.write = write
        self.best = -np.inf
        self.best_epoch: int | None = None
        self._best_weights = None

    def on_train_begin(self, logs=None):
        if self.store is not None and self.store.exists():
            with np.load(self.store) as saved:
                self.best, self.best_epoch = float(saved["best"]), int(saved["epoch"])
                self._best_weights = [saved[f"w{i}"] for i in range(len(self.model.trainable_weights))]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.sign * value > self.best:
            self.best = self.sign * value
            self.best_epoch = epoch
            self._best_weights = [w.numpy() for w in self.model.trainable_weights]
            if self.store is not None and self.write:
                self._save()

    def _save(self) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self._best_weights)}
        replace_file(self.store, lambda handle: np.savez(handle, best=self.best, epoch=self.best_epoch, **arrays))

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            for weight, value in zip(self.model.trainable_weights, self._best_weights):
                weight.assign(value)
