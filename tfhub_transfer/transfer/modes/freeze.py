"""`freeze`: feature extraction; only the new head trains, the encoder runs in inference mode."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.transfer.modes.base import TransferMode, register_mode


@register_mode
@dataclasses.dataclass(frozen=True)
class Freeze(TransferMode):
    """The head only: the `hub.KerasLayer` is untrainable (no dropout, no weight gradients)."""

    name = "freeze"
    aliases = ("feature_extraction",)
    backbones = ("encoder", "text_embedding")
    summary = "the head only (feature extraction; encoder in inference mode)"
    encoder_trainable = False
    no_head_first_phase = "the encoder never trains (only the head does, for all --epochs)"
