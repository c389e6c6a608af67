"""Keras callbacks used by `train`."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tf_keras


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
        self.store.parent.mkdir(parents=True, exist_ok=True)
        partial = self.store.with_name(self.store.name + ".partial.npz")
        arrays = {f"w{i}": w for i, w in enumerate(self._best_weights)}
        np.savez(partial, best=self.best, epoch=self.best_epoch, **arrays)
        os.replace(partial, self.store)

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            for weight, value in zip(self.model.trainable_weights, self._best_weights):
                weight.assign(value)


class GradualUnfreezing(tf_keras.callbacks.Callback):
    """ULMFiT's gradual unfreezing: thaw one more layer group, top-down, per epoch or every N steps.

    Stage 0 trains the head only; stage s also trains the top s encoder groups. The
    model's train function is rebuilt when the stage changes (no recompile, and it
    works under any distribution strategy because `make_train_function` handles it).
    """

    def __init__(self, every_steps: int | None = None, groups_per_stage: int = 1):
        super().__init__()
        self.every_steps = every_steps
        self.groups_per_stage = groups_per_stage
        self.stage = 0
        self.history: list[tuple[int, tuple[str, ...]]] = []
        self._steps = 0

    def _apply(self, stage: int) -> None:
        from tfhub_transfer.transfer_modes import unfreezing_stages

        stages = unfreezing_stages(self.model.layer_groups)
        self.stage = min(stage, (len(stages) - 1))
        frozen = stages[min(self.stage * self.groups_per_stage, len(stages) - 1)]
        self.model.set_frozen_groups(frozen)
        self.history.append((self._steps, tuple(frozen)))

    def on_train_begin(self, logs=None):
        self._steps = 0
        self._apply(0)

    def on_epoch_begin(self, epoch, logs=None):
        if self.every_steps is None and epoch > 0:
            self._apply(epoch)
        elif self.every_steps and self._steps == 0:
            # A resumed run: the optimizer's restored step count says how far training got.
            self._steps = int(self.model.optimizer.iterations.numpy())
            if self._steps >= self.every_steps:
                self._apply(self._steps // self.every_steps)

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        if self.every_steps and self._steps % self.every_steps == 0:
            self._apply(self._steps // self.every_steps)
