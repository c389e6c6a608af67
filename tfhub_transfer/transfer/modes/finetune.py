"""`finetune`: every weight trains at one rate (BERT's recipe)."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.transfer.modes.base import TransferMode, register_mode


@register_mode
@dataclasses.dataclass(frozen=True)
class Finetune(TransferMode):
    """Everything trains; `frozen_epochs` > 0 trains the head alone first (LP-FT)."""

    name = "finetune"
    aliases = ("full",)
    backbones = ("encoder", "text_embedding")
    summary = "everything"
