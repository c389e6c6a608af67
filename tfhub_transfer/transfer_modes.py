"""Transfer modes: which of the pretrained encoder's weights train.

- `freeze`: feature extraction; the encoder is fixed, only the new head trains.
- `finetune`: the encoder and the head train together.
"""

from __future__ import annotations

from tfhub_transfer.errors import ConfigError

TRANSFER_MODES = ("freeze", "finetune")


def check_mode(mode: str) -> str:
    if mode not in TRANSFER_MODES:
        raise ConfigError(f"unknown transfer mode {mode!r}; choose one of {TRANSFER_MODES}")
    return mode


def encoder_trainable(mode: str) -> bool:
    return check_mode(mode) != "freeze"
