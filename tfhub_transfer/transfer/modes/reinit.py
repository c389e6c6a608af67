"""`reinit`: the encoder's architecture with fresh weights, all trained (the no-transfer baseline)."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.transfer.modes.base import TransferMode, register_mode


@register_mode
@dataclasses.dataclass(frozen=True)
class Reinit(TransferMode):
    """Re-initialises every encoder weight before training: what transfer adds, measured by its absence."""

    name = "reinit"
    summary = "the architecture with fresh weights (no-transfer baseline)"
    reinitializes = True
