"""`freeze`: feature extraction; only the new head trains, the encoder runs in inference mode."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
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

    @classmethod
    def check_recipe(cls, spec, value, lr_mult, frozen_epochs) -> None:
        super().check_recipe(spec, value, lr_mult, frozen_epochs)
        if frozen_epochs:
            raise ConfigError("--frozen-epochs does not apply to mode freeze: the encoder never trains "
                              "(only the head does, for all --epochs)")
