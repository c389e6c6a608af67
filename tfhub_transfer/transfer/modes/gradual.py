"""`gradual` / `gradual:STEPS`: ULMFiT's gradual unfreezing, sized for a short budget.

One more layer group thaws, top-down, spread evenly over the first quarter of the steps, so every
group trains for at least three quarters of them (ULMFiT's one group per epoch needs more epochs than
a short budget has, and a head-only phase first cost 1–1.5 points at 8k examples;
benchmarks/RESULTS.md); the groups' rates are spread as in `discriminative` (ULMFiT pairs both).
`gradual:STEPS` thaws one group every STEPS steps, after STEPS steps of the head alone (unless
`frozen_epochs` is given).
"""

from __future__ import annotations

import dataclasses
import math

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import PhasePlan, TransferMode, register_mode

THAW_FRACTION = 0.25  # all groups thawed after this fraction of the steps after the head phase
DEFAULT_SPREAD = 10.0  # top group's rate / the embeddings' (SST-2 1k and 8k, RESULTS.md)


@register_mode
@dataclasses.dataclass(frozen=True)
class Gradual(TransferMode):
    """Thaws one more group at a time, top-down, at discriminative rates."""

    unfreeze_every_steps: int | None = None  # None: spread over THAW_FRACTION of training

    name = "gradual"
    argument = "STEPS"
    summary = ("ULMFiT's gradual unfreezing for a short budget: one more group top-down, the thaws spread over "
               "the first quarter of the steps (or one every STEPS steps), at discriminative rates")
    default_lr_mult = DEFAULT_SPREAD
    takes_lr_mult = True
    needs_layer_groups = True

    @classmethod
    def from_argument(cls, spec, value, **options) -> Gradual:
        if value is not None and (value < 1 or value != int(value)):
            raise ConfigError(f"transfer mode {spec!r}: gradual:N unfreezes every N steps; N must be a whole "
                              "number >= 1, e.g. gradual:100")
        return cls(unfreeze_every_steps=int(value) if value else None, **options)

    def argument_value(self) -> int | None:
        return self.unfreeze_every_steps

    @property
    def has_phases(self) -> bool:
        return True

    def recipe_parts(self) -> list[str]:
        parts = super().recipe_parts()
        if self.unfreeze_every_steps and self.frozen_epochs is None:
            parts.insert(0, f"head first {self.unfreeze_every_steps} steps")
        return parts

    def phase_plan(self, groups, unused, steps_per_epoch, epochs) -> PhasePlan:
        settled = tuple(self.settled_frozen(groups))
        if steps_per_epoch is None:  # unknown length: whole epochs
            frozen_epochs = math.ceil(self.head_epochs) if self.frozen_epochs is not None else None
            return PhasePlan(settled, frozen_epochs=frozen_epochs, gradual=True, every_steps=self.unfreeze_every_steps)
        frozen_steps = round(self.head_epochs * steps_per_epoch)
        every = self.unfreeze_every_steps
        if every is not None and self.frozen_epochs is None:
            frozen_steps = every  # gradual:STEPS: the head alone is the first stage, as long as the others
        if every is None:
            thaws = len([name for name in groups.order if name not in unused and name not in settled])
            remaining = max(epochs * steps_per_epoch - frozen_steps, 1)
            every = max(1, int(remaining * THAW_FRACTION / max(thaws, 1)))
        return PhasePlan(settled, frozen_steps=frozen_steps, gradual=True, every_steps=every)
