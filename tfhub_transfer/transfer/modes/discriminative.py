"""`discriminative` / `discriminative:DECAY`: everything trains, each layer group at its own rate.

By default the rates are spread geometrically from LR/`lr_mult` (embeddings) to LR (top layer), as
fastai's `slice(lr / lr_mult, lr)`, with `lr_mult` 10; `frozen_epochs` > 0 trains the head alone
first (fastai's `fine_tune`). `discriminative:DECAY` instead gives each group the rate of the one
above it times DECAY (ULMFiT's 1/2.6, ELECTRA's 0.8).
"""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode

ULMFIT_DECAY = 1 / 2.6
# Measured on SST-2 (1k / 8k examples, 2 epochs, benchmarks/RESULTS.md): a spread centred on the usual rate
# beats a uniform one; a head-only half epoch first costs discriminative encoder steps it needs.
DEFAULT_SPREAD = 10.0


@register_mode
@dataclasses.dataclass(frozen=True)
class Discriminative(TransferMode):
    """Per-group rates: a geometric spread (default), or a per-group decay with `:DECAY`."""

    decay: float | None = None  # None: spread by lr_mult

    name = "discriminative"
    aliases = ("layerwise",)
    argument = "DECAY"
    summary = ("everything, at rates spread geometrically from LR/`--lr-mult` (embeddings) to LR (top layer), "
               "default 10; `:DECAY` instead gives each group the rate of the one above x DECAY")
    default_lr_mult = DEFAULT_SPREAD
    takes_lr_mult = True
    needs_layer_groups = True

    @classmethod
    def from_argument(cls, spec, value, **options) -> Discriminative:
        if value is not None and not 0 < value <= 1:
            raise ConfigError(f"discriminative decay must be in (0, 1], not {value}")
        return cls(decay=value, **options)

    @classmethod
    def check_recipe(cls, spec, value, lr_mult, frozen_epochs) -> None:
        super().check_recipe(spec, value, lr_mult, frozen_epochs)
        if lr_mult is not None and value is not None:
            raise ConfigError(f"mode {spec!r} sets a per-group decay; give either it or --lr-mult, not both")

    def argument_value(self) -> float | None:
        return None if self.decay is None else round(self.decay, 4)

    @property
    def spread(self) -> float:
        if self.decay is not None and self.lr_mult is None:
            return 1.0
        return super().spread

    def recipe_parts(self) -> list[str]:
        if self.decay is None:
            return super().recipe_parts()
        head = [f"head first {self.head_epochs:g} epochs"] if self.head_epochs else []
        return [*head, f"x{self.decay:.3g} per group"]

    def group_factors(self, used: list[str]) -> dict[str, float]:
        if self.decay is None:
            return super().group_factors(used)
        return {name: self.decay ** (depth + 1) for depth, name in enumerate(reversed(used))}
