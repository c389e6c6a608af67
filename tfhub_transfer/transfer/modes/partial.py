"""`partial:K` (`freeze_bottom:K`): the embeddings and the bottom K layers stay fixed; the rest trains."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode


@register_mode
@dataclasses.dataclass(frozen=True)
class Partial(TransferMode):
    """Freezes the bottom of the encoder: its embeddings and layers 0..K-1."""

    frozen_layers: int = 0

    name = "partial"
    aliases = ("freeze_bottom",)
    argument = "K"
    argument_optional = False
    summary = "all but the embeddings and the bottom K layers"
    needs_layer_groups = True

    @classmethod
    def from_argument(cls, spec, value, **options) -> Partial:
        if value is None or value < 0 or value != int(value):
            raise ConfigError(f"transfer mode {spec!r} needs a layer count, e.g. partial:3")
        return cls(frozen_layers=int(value), **options)

    def argument_value(self) -> int:
        return self.frozen_layers

    def settled_frozen(self, groups) -> list[str]:
        return groups.bottom(self.frozen_layers)
