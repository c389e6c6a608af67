"""Transfer modes: which pretrained weights train, when, and how fast.

- `freeze`: feature extraction; only the new head trains, the encoder runs in inference mode.
- `finetune`: everything trains.
- `partial:K` (alias `freeze_bottom:K`): embeddings and layers 0..K-1 fixed; the rest trains.
- `gradual` / `gradual:STEPS`: one more layer group thaws, top-down, spread evenly over the
  first quarter of the steps, so every group trains for at least three quarters of them
  (ULMFiT's one group per epoch needs more epochs than a short budget has, and a head-only
  phase first cost 1–1.5 points at 8k examples; benchmarks/RESULTS.md); the groups' rates are
  spread as below (ULMFiT pairs both). `gradual:STEPS` thaws one group every STEPS steps,
  after STEPS steps of the head alone (unless `frozen_epochs` is given).
- `discriminative` / `discriminative:DECAY`: everything trains, each group at its own rate.
  By default the rates are spread geometrically from LR/`lr_mult` (embeddings) to LR (top
  layer), as fastai's `slice(lr / lr_mult, lr)`, with `lr_mult` 10; `frozen_epochs` > 0
  trains the head alone first (fastai's `fine_tune`). `discriminative:DECAY` instead gives
  each group the rate of the one above it times DECAY (ULMFiT's 1/2.6, ELECTRA's 0.8).
- `slow_embeddings:FACTOR`: everything trains; the embeddings at FACTOR times the rate.
- `reinit`: the encoder's architecture with fresh weights, all trained (no-transfer baseline).
- `contrastive` / `contrastive:ITERATIONS`: few-shot (SetFit): the encoder is first fine-tuned on
  pairs of labelled texts (cosine 1 for the same class, 0 otherwise; ITERATIONS pairs of each kind
  per example, default 20), then the head is fitted on its frozen embeddings (models.contrastive).

Any mode that trains the encoder takes `frozen_epochs` (head-only epochs first, fastai's
`fine_tune`; fractions allowed) and `embedding_multiplier` (CLI `--embedding-lr-multiplier`).
The head's own learning rates (`head_learning_rate` while the encoder is frozen,
`head_lr_multiplier` x LR while it trains) are compile options: see models.base.
"""

from __future__ import annotations

import dataclasses
import math

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.layer_groups import LayerGroups

KINDS = ("freeze", "finetune", "partial", "gradual", "discriminative", "slow_embeddings", "reinit", "contrastive")
ALIASES = {"freeze_bottom": "partial", "feature_extraction": "freeze", "full": "finetune",
           "layerwise": "discriminative"}
ULMFIT_DECAY = 1 / 2.6
# Measured on SST-2 (1k / 8k examples, 2 epochs, benchmarks/RESULTS.md): a spread centred on the usual rate
# beats a uniform one for both; a head-only half epoch first costs discriminative encoder steps it needs.
DEFAULT_LR_MULT = {"discriminative": 10.0, "gradual": 10.0}  # top group's rate / the embeddings'
DEFAULT_FROZEN_EPOCHS: dict[str, float] = {}  # head-only epochs first, by mode (none by default)
THAW_FRACTION = 0.25  # gradual: all groups thawed after this fraction of the steps after the head phase
SPREAD_KINDS = ("discriminative", "gradual")  # the modes that take lr_mult
CONTRASTIVE_ITERATIONS = 20  # SetFit's num_iterations


@dataclasses.dataclass(frozen=True)
class TransferMode:
    """A parsed transfer mode; `TransferMode.parse("partial:3")` and friends."""

    kind: str = "finetune"
    frozen_layers: int = 0
    decay: float | None = None  # discriminative:DECAY (per group); None: spread by lr_mult
    embedding_multiplier: float | None = None
    unfreeze_every_steps: int | None = None  # gradual: None = spread over THAW_FRACTION of training
    lr_mult: float | None = None  # None: the mode's default (DEFAULT_LR_MULT, else no spread)
    frozen_epochs: float | None = None  # None: the mode's default (DEFAULT_FROZEN_EPOCHS, else 0)
    pair_iterations: int = CONTRASTIVE_ITERATIONS  # contrastive: positive (and negative) pairs per example

    @classmethod
    def parse(cls, spec: str | TransferMode, embedding_multiplier: float | None = None,
              lr_mult: float | None = None, frozen_epochs: float | None = None) -> TransferMode:
        """The mode `spec` names (`gradual:100`, ...) with the recipe options given beside it."""
        if isinstance(spec, TransferMode):
            return spec
        name, _, arg = str(spec).partition(":")
        kind = ALIASES.get(name, name)
        if kind not in KINDS:
            raise ConfigError(
                f"unknown transfer mode {spec!r}; choose one of freeze, finetune, partial:K, "
                f"gradual[:STEPS], discriminative[:DECAY], slow_embeddings:FACTOR, reinit, "
                f"contrastive[:ITERATIONS]"
            )
        try:
            value = float(arg) if arg else None
        except ValueError:
            raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a number") from None
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a finite number")
        options = dict(embedding_multiplier=embedding_multiplier, lr_mult=lr_mult, frozen_epochs=frozen_epochs)
        _check_recipe(kind, spec, value, lr_mult, frozen_epochs)
        if kind == "partial":
            if value is None or value < 0 or value != int(value):
                raise ConfigError(f"transfer mode {spec!r} needs a layer count, e.g. partial:3")
            return cls(kind, frozen_layers=int(value), **options)
        if kind == "gradual":
            if value is not None and (value < 1 or value != int(value)):
                raise ConfigError(f"transfer mode {spec!r}: gradual:N unfreezes every N steps; N must be a whole "
                                  "number >= 1, e.g. gradual:100")
            return cls(kind, unfreeze_every_steps=int(value) if value else None, **options)
        if kind == "discriminative":
            if value is not None and not 0 < value <= 1:
                raise ConfigError(f"discriminative decay must be in (0, 1], not {value}")
            return cls(kind, decay=value, **options)
        if kind == "contrastive":
            if value is not None and (value < 1 or value != int(value)):
                raise ConfigError(f"transfer mode {spec!r}: contrastive:N draws N positive and N negative pairs "
                                  "per example; N must be a whole number >= 1, e.g. contrastive:20")
            return cls(kind, pair_iterations=int(value) if value else CONTRASTIVE_ITERATIONS, **options)
        if kind == "slow_embeddings":
            if value is None or value <= 0:
                raise ConfigError(f"transfer mode {spec!r} needs a factor, e.g. slow_embeddings:0.01")
            return cls(kind, **{**options, "embedding_multiplier": value})
        if arg:
            raise ConfigError(f"transfer mode {kind!r} takes no argument (got {spec!r})")
        return cls(kind, **options)

    def __str__(self) -> str:
        arg = {"partial": self.frozen_layers, "gradual": self.unfreeze_every_steps,
               "discriminative": None if self.decay is None else round(self.decay, 4),
               "slow_embeddings": self.embedding_multiplier, "contrastive": self.pair_iterations}.get(self.kind)
        return f"{self.kind}:{arg}" if arg is not None else self.kind

    def describe(self) -> str:
        """The mode with its recipe, e.g. `discriminative (head first 0.5 epochs, LR/10 .. LR)`."""
        parts = []
        if self.kind == "gradual" and self.unfreeze_every_steps and self.frozen_epochs is None:
            parts.append(f"head first {self.unfreeze_every_steps} steps")
        elif self.head_epochs:
            parts.append(f"head first {self.head_epochs:g} epochs")
        if self.kind == "discriminative" and self.decay is not None:
            parts.append(f"x{self.decay:.3g} per group")
        elif self.spread > 1:
            parts.append(f"LR/{self.spread:g} .. LR")
        return f"{self} ({', '.join(parts)})" if parts else str(self)

    @property
    def encoder_trainable(self) -> bool:
        """Whether the hub.KerasLayer is trainable at all (False runs it in inference mode)."""
        return self.kind != "freeze"

    @property
    def head_epochs(self) -> float:
        """Epochs that train the head alone before the encoder does (0 for none)."""
        if self.frozen_epochs is not None:
            return float(self.frozen_epochs)
        return DEFAULT_FROZEN_EPOCHS.get(self.kind, 0.0)

    @property
    def spread(self) -> float:
        """Ratio of the top group's rate to the bottom group's (1: no spread)."""
        if self.lr_mult is not None:
            return float(self.lr_mult)
        if self.kind == "discriminative" and self.decay is not None:
            return 1.0
        return DEFAULT_LR_MULT.get(self.kind, 1.0)

    def default_rate(self, encoder_rate: float) -> float:
        """The default peak rate (the top group's) when none is given: a spread is centred on the encoder's
        usual rate (its geometric mean), so the middle groups train as under `finetune`, the top ones
        faster and the bottom ones slower; a short budget leaves no room for a lower average rate."""
        return encoder_rate * math.sqrt(self.spread) if self.encoder_trainable else encoder_rate

    @property
    def has_phases(self) -> bool:
        """Whether training changes which groups train along the way (head first, gradual thawing)."""
        return self.kind == "gradual" or (self.encoder_trainable and self.head_epochs > 0)

    @property
    def needs_groups(self) -> bool:
        return self.kind in ("partial", "gradual", "discriminative", "slow_embeddings") or self.has_phases or (
            self.embedding_multiplier is not None and self.kind != "freeze"
        )

    def settled_frozen(self, groups: LayerGroups) -> list[str]:
        """Groups that stay frozen once the head-only phase (and any thawing) is over."""
        if self.kind == "partial":
            return groups.bottom(self.frozen_layers)
        return []

    def initially_frozen(self, groups: LayerGroups) -> list[str]:
        """Groups that take no update at the start of training."""
        if self.has_phases:
            return list(groups.order)
        return self.settled_frozen(groups)

    def learning_rate_multipliers(self, groups: LayerGroups, unused: tuple[str, ...] = ()) -> dict[str, float]:
        """LR factor per encoder group, relative to the encoder's rate (the head's is set at compile).

        `unused` groups (e.g. the pooler under mean pooling) take no gradient, so they do not
        count in the spread; they get the top group's factor.
        """
        used = [name for name in groups.order if name not in unused]
        factors = dict.fromkeys(groups.order, 1.0)
        if self.kind == "discriminative" and self.decay is not None:
            factors.update({name: self.decay ** (depth + 1) for depth, name in enumerate(reversed(used))})
        elif self.spread > 1 and len(used) > 1:
            steps = len(used) - 1
            factors.update({name: self.spread ** (-(steps - i) / steps) for i, name in enumerate(used)})
        for name in unused:
            factors[name] = factors[used[-1]] if used else 1.0
        if self.embedding_multiplier is not None:
            factors["embeddings"] = self.embedding_multiplier
        return factors


def _check_recipe(kind: str, spec, value, lr_mult: float | None, frozen_epochs: float | None) -> None:
    if lr_mult is not None:
        if kind not in SPREAD_KINDS:
            raise ConfigError(f"--lr-mult spreads learning rates over the layer groups in modes {SPREAD_KINDS}; "
                              f"mode {spec!r} takes none (use --mode discriminative)")
        if kind == "discriminative" and value is not None:
            raise ConfigError(f"mode {spec!r} sets a per-group decay; give either it or --lr-mult, not both")
        if not (math.isfinite(lr_mult) and lr_mult >= 1):
            raise ConfigError(f"--lr-mult {lr_mult}: must be >= 1 (the top group's rate over the bottom one's)")
    if frozen_epochs is not None:
        if not (math.isfinite(frozen_epochs) and frozen_epochs >= 0):
            raise ConfigError(f"--frozen-epochs {frozen_epochs}: must be a number >= 0")
        if kind == "contrastive" and frozen_epochs > 0:
            raise ConfigError("--frozen-epochs does not apply to mode contrastive: it tunes the encoder on pairs "
                              "first, then fits the head on its embeddings")
        if kind == "freeze" and frozen_epochs > 0:
            raise ConfigError("--frozen-epochs does not apply to mode freeze: the encoder never trains "
                              "(only the head does, for all --epochs)")
