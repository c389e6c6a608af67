"""Training in phases, as Keras callbacks: the head first, then the encoder (at once or group by group).

- `HeadFirst`: every encoder group frozen for the first `frozen_steps`, then the mode's settled
  state (all groups, or all but the bottom ones for `partial`), as fastai's `fine_tune`.
- `GradualUnfreezing`: ULMFiT's gradual unfreezing; the head alone, then one more group, top-down,
  every `every_steps` steps (or per epoch).

Both rebuild the model's train function when the phase changes (no recompile, and it works under
any distribution strategy because `make_train_function` handles it). Steps count from the start of
this `fit`, read from the optimizer's step counter, so a resumed run picks up its phase.
"""

from __future__ import annotations

import math

import tf_keras

from tfhub_transfer.transfer.layer_groups import LayerGroups


def unfreezing_stages(groups: LayerGroups, unused: tuple[str, ...] = (), settled: tuple[str, ...] = ()) \
        -> list[list[str]]:
    """Frozen groups at each stage of gradual unfreezing: all, then the top used group thawed first, ...

    `unused` groups (no gradient reaches them) are no stage of their own; `settled` groups never thaw.
    """
    thawing = [name for name in groups.order if name not in unused and name not in settled]
    stages = []
    for stage in range(len(thawing) + 1):
        frozen = set(thawing[: len(thawing) - stage]) | set(settled)
        if stage < len(thawing):
            frozen |= set(unused)
        stages.append([name for name in groups.order if name in frozen])
    return stages


class TransferPhases(tf_keras.callbacks.Callback):
    """Walks the model through stages (lists of frozen groups): stage 0 for `frozen_steps`, then one
    more stage every `every_steps` (every remaining stage at once when `every_steps` is None).

    With `frozen_steps=None` the phases count whole epochs instead (`frozen_epochs`, `every_epochs`),
    for inputs whose number of steps per epoch is unknown.
    """

    def __init__(self, frozen_steps: int | None = None, every_steps: int | None = None,
                 frozen_epochs: int = 0, every_epochs: int | None = None):
        super().__init__()
        self.frozen_steps = frozen_steps
        self.every_steps = every_steps
        self.frozen_epochs = frozen_epochs
        self.every_epochs = every_epochs
        self.stages: list[list[str]] = []
        self.stage = -1
        self.history: list[tuple[int, tuple[str, ...]]] = []
        self._start = 0
        self._epoch = 0

    def model_stages(self) -> list[list[str]]:
        """The stages for `self.model`; subclasses say which."""
        raise NotImplementedError

    def stage_at(self, steps: int, epoch: int) -> int:
        """The stage after `steps` steps of this fit, in epoch `epoch`."""
        last = len(self.stages) - 1
        if self.frozen_steps is not None:
            start, every, done = self.frozen_steps, self.every_steps, steps
        else:
            start, every, done = self.frozen_epochs, self.every_epochs, epoch
        if done < start:
            return 0
        return last if not every else min(last, 1 + (done - start) // every)

    def _steps(self) -> int:
        return int(self.model.optimizer.iterations.numpy()) - self._start

    def _apply(self, steps: int) -> None:
        stage = self.stage_at(steps, self._epoch)
        if stage != self.stage:
            self.stage = stage
            self.model.set_frozen_groups(self.stages[stage])
            self.history.append((steps, tuple(self.stages[stage])))

    def on_train_begin(self, logs=None):
        self.stages = self.model_stages()
        self.stage, self.history, self._epoch = -1, [], 0
        self._start = int(self.model.optimizer.iterations.numpy())
        self._apply(0)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._apply(self._steps())  # after a resume's restore, the counter says where the run stands

    def on_train_batch_end(self, batch, logs=None):
        self._apply(self._steps())


class HeadFirst(TransferPhases):
    """All encoder groups frozen for `frozen_steps` steps (or `frozen_epochs` epochs), then only `settled`."""

    def __init__(self, frozen_steps: int | None = None, settled=(), frozen_epochs: int = 0):
        super().__init__(frozen_steps, None, frozen_epochs)
        self.settled = list(settled)

    def model_stages(self) -> list[list[str]]:
        return [list(self.model.layer_groups.order), [g for g in self.model.layer_groups.order if g in self.settled]]


class GradualUnfreezing(TransferPhases):
    """ULMFiT's gradual unfreezing: thaw one more layer group, top-down, per epoch or every N steps.

    Stage 0 trains the head only, for `frozen_steps` steps (default: as long as every later stage);
    stage s also trains the top s encoder groups (`groups_per_stage` more per stage). Groups the model
    lists in `unused_groups` (no gradient reaches them, e.g. the pooler under mean pooling) are no
    stage of their own; `settled` groups never thaw. `--mode gradual` adds it by itself; give it to
    `fit(callbacks=...)` of a model compiled with another mode to run its schedule yourself.

    Args:
      every_steps: thaw the next stage every this many optimizer steps (None: once per epoch).
      groups_per_stage: encoder layer groups thawed per stage.
      frozen_steps: steps of the head-only stage (None: as long as every later stage).
      settled: groups that never thaw.

    Example:
      >>> from tfhub_transfer import GradualUnfreezing
      >>> schedule = GradualUnfreezing(every_steps=50, groups_per_stage=2)
      >>> schedule.groups_per_stage
      2
    """

    def __init__(self, every_steps: int | None = None, groups_per_stage: int = 1, frozen_steps: int | None = None,
                 settled=()):
        if every_steps:
            super().__init__(every_steps if frozen_steps is None else frozen_steps, every_steps)
        else:
            super().__init__(None, None, frozen_epochs=1, every_epochs=1)
        self.groups_per_stage = max(int(groups_per_stage), 1)
        self.settled = tuple(settled)

    def model_stages(self) -> list[list[str]]:
        stages = unfreezing_stages(self.model.layer_groups, tuple(getattr(self.model, "unused_groups", ())),
                                   self.settled)
        last, per = len(stages) - 1, self.groups_per_stage
        return [stages[min(i * per, last)] for i in range(math.ceil(last / per) + 1)]


def phase_callback(mode, groups: LayerGroups, unused: tuple[str, ...], steps_per_epoch: int | None,
                   epochs: int) -> TransferPhases | None:
    """The callback that takes a model in `mode` (a `TransferMode`) through its phases in a fit of `epochs`
    epochs, or None; the mode says what its phases are (`TransferMode.phase_plan`)."""
    plan = mode.phase_plan(groups, unused, steps_per_epoch, epochs)
    if plan is None:
        return None
    if not plan.gradual:
        return HeadFirst(plan.frozen_steps, plan.settled, frozen_epochs=plan.frozen_epochs or 0)
    callback = GradualUnfreezing(plan.every_steps, frozen_steps=plan.frozen_steps, settled=plan.settled)
    if plan.frozen_epochs is not None:
        callback.frozen_epochs = plan.frozen_epochs
    return callback
