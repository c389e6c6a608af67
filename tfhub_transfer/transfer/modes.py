"""Transfer modes: which pretrained weights train, when, and how fast.

- `freeze`: feature extraction; only the new head trains, the encoder runs in inference mode.
- `finetune`: everything trains.
- `partial:K` (alias `freeze_bottom:K`): embeddings and layers 0..K-1 fixed; the rest trains.
- `gradual` / `gradual:STEPS`: starts with the head only; one more layer group, top-down,
  thaws per epoch (ULMFiT) or every STEPS steps.
- `discriminative` / `discriminative:DECAY`: everything trains; each group's learning rate
  is the one above it times DECAY (default 1/2.6 as in ULMFiT; ELECTRA used 0.8).
- `slow_embeddings:FACTOR`: everything trains; the embeddings at FACTOR times the rate.
- `reinit`: the encoder's architecture with fresh weights, all trained (no-transfer baseline).

`embedding_multiplier` (CLI `--embedding-lr-multiplier`) scales the embeddings' LR in any mode
that trains them.
"""

from __future__ import annotations

import dataclasses
import math

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.layer_groups import LayerGroups

KINDS = ("freeze", "finetune", "partial", "gradual", "discriminative", "slow_embeddings", "reinit")
ALIASES = {"freeze_bottom": "partial", "feature_extraction": "freeze", "full": "finetune",
           "layerwise": "discriminative"}
ULMFIT_DECAY = 1 / 2.6


@dataclasses.dataclass(frozen=True)
class TransferMode:
    """A parsed transfer mode; `TransferMode.parse("partial:3")` and friends."""

    kind: str = "finetune"
    frozen_layers: int = 0
    decay: float = 1.0
    embedding_multiplier: float | None = None
    unfreeze_every_steps: int | None = None  # gradual: None = one group per epoch

    @classmethod
    def parse(cls, spec: str | TransferMode, embedding_multiplier: float | None = None) -> TransferMode:
        if isinstance(spec, TransferMode):
            return spec
        name, _, arg = str(spec).partition(":")
        kind = ALIASES.get(name, name)
        if kind not in KINDS:
            raise ConfigError(
                f"unknown transfer mode {spec!r}; choose one of freeze, finetune, partial:K, "
                f"gradual[:STEPS], discriminative[:DECAY], slow_embeddings:FACTOR, reinit"
            )
        try:
            value = float(arg) if arg else None
        except ValueError:
            raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a number") from None
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a finite number")
        if kind == "partial":
            if value is None or value < 0 or value != int(value):
                raise ConfigError(f"transfer mode {spec!r} needs a layer count, e.g. partial:3")
            return cls(kind, frozen_layers=int(value), embedding_multiplier=embedding_multiplier)
        if kind == "gradual":
            if value is not None and (value < 1 or value != int(value)):
                raise ConfigError(f"transfer mode {spec!r}: gradual:N unfreezes every N steps; N must be a whole "
                                  "number >= 1, e.g. gradual:100")
            steps = int(value) if value else None
            return cls(kind, unfreeze_every_steps=steps, embedding_multiplier=embedding_multiplier)
        if kind == "discriminative":
            decay = ULMFIT_DECAY if value is None else value
            if not 0 < decay <= 1:
                raise ConfigError(f"discriminative decay must be in (0, 1], not {decay}")
            return cls(kind, decay=decay, embedding_multiplier=embedding_multiplier)
        if kind == "slow_embeddings":
            if value is None or value <= 0:
                raise ConfigError(f"transfer mode {spec!r} needs a factor, e.g. slow_embeddings:0.01")
            return cls(kind, embedding_multiplier=value)
        if arg:
            raise ConfigError(f"transfer mode {kind!r} takes no argument (got {spec!r})")
        return cls(kind, embedding_multiplier=embedding_multiplier)

    def __str__(self) -> str:
        arg = {"partial": self.frozen_layers, "gradual": self.unfreeze_every_steps,
               "discriminative": round(self.decay, 4),
               "slow_embeddings": self.embedding_multiplier}.get(self.kind)
        return f"{self.kind}:{arg}" if arg is not None else self.kind

    @property
    def encoder_trainable(self) -> bool:
        """Whether the hub.KerasLayer is trainable at all (False runs it in inference mode)."""
        return self.kind != "freeze"

    @property
    def needs_groups(self) -> bool:
        return self.kind in ("partial", "gradual", "discriminative", "slow_embeddings") or (
            self.embedding_multiplier is not None and self.kind != "freeze"
        )

    def initially_frozen(self, groups: LayerGroups) -> list[str]:
        """Groups that take no update at the start of training."""
        if self.kind == "partial":
            return groups.bottom(self.frozen_layers)
        if self.kind == "gradual":
            return list(groups.order)
        return []

    def learning_rate_multipliers(self, groups: LayerGroups) -> dict[str, float]:
        """LR factor per encoder group (the head is always 1)."""
        top_down = list(reversed(groups.order))
        factors = {name: self.decay ** (depth + 1) for depth, name in enumerate(top_down)}
        if self.kind != "discriminative":
            factors = dict.fromkeys(groups.order, 1.0)
        if self.embedding_multiplier is not None:
            factors["embeddings"] = self.embedding_multiplier
        return factors
