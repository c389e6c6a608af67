"""`slow_embeddings:FACTOR`: everything trains; the embeddings at FACTOR times the rate."""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode


@register_mode
@dataclasses.dataclass(frozen=True)
class SlowEmbeddings(TransferMode):
    """Fine-tuning whose embedding table learns FACTOR times slower (or faster)."""

    name = "slow_embeddings"
    argument = "FACTOR"
    argument_optional = False
    summary = "everything; embeddings at FACTOR x LR (`--embedding-lr-multiplier` does the same in any mode)"
    needs_layer_groups = True

    @classmethod
    def from_argument(cls, spec, value, **options) -> SlowEmbeddings:
        if value is None or value <= 0:
            raise ConfigError(f"transfer mode {spec!r} needs a factor, e.g. slow_embeddings:0.01")
        return cls(**{**options, "embedding_multiplier": value})

    def argument_value(self) -> float | None:
        return self.embedding_multiplier
