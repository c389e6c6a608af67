"""Gradual unfreezing (ULMFiT) as a Keras callback: the head first, then one more group top-down."""

from __future__ import annotations

import tf_keras

from tfhub_transfer.transfer.layer_groups import LayerGroups


def unfreezing_stages(groups: LayerGroups) -> list[list[str]]:
    """Gradual unfreezing: frozen groups at each stage, top group thawed first (ULMFiT)."""
    order = list(groups.order)
    return [order[: len(order) - stage] for stage in range(len(order) + 1)]


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
