"""The transfer-mode contract and its registry: one `TransferMode` subclass per mode, one module each.

A mode says which pretrained weights train, when, and how fast. Each subclass declares:
- its `name`, `aliases` and the argument it parses (`partial:K`: `argument = "K"`), in `from_argument`;
- which layer groups start and stay frozen (`initially_frozen`, `settled_frozen`), whether the encoder
  trains at all (`encoder_trainable`) and which encoder variables never train (`fixed_variables`);
- its learning-rate multipliers per group (`learning_rate_multipliers`, `default_lr_mult`);
- its phases, as numbers (`phase_plan`; transfer.unfreezing turns them into a Keras callback);
- whether it re-initialises the encoder (`reinitializes`) or brings its own fit (`brings_own_fit`);
- which tasks and backbones it applies to (`check_applies`).

`register_mode` adds a class to the registry; `TransferMode.parse("partial:3")` finds it by name or
alias. Importing `tfhub_transfer.transfer.modes` registers every module in that folder, so adding a
mode is adding one module there (and its test). Nothing here imports TensorFlow: the CLI reads the
registry to check `--mode` before TensorFlow loads.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import TYPE_CHECKING, ClassVar

from tfhub_transfer.errors import ConfigError

if TYPE_CHECKING:  # type hints only: the layer groups module imports TensorFlow
    from tfhub_transfer.transfer.layer_groups import LayerGroups

_REGISTRY: dict[str, type[TransferMode]] = {}
_ALIASES: dict[str, str] = {}


def register_mode(cls: type[TransferMode]) -> type[TransferMode]:
    """Class decorator: makes a `TransferMode` subclass available to `TransferMode.parse` by its name and
    aliases.

    Args:
        cls: the mode class; its `name` must be new.

    Returns:
        The class itself.

    Example:
        >>> @register_mode
        ... @dataclasses.dataclass(frozen=True)
        ... class HeadOnly(TransferMode):  # doctest: +SKIP
        ...     name = "head_only"
    """
    if not cls.name or cls.name in _REGISTRY or cls.name in _ALIASES:
        raise ValueError(f"transfer mode {cls.name!r} is unnamed or already registered")
    _REGISTRY[cls.name] = cls
    for alias in cls.aliases:
        _ALIASES[alias] = cls.name
    return cls


def mode_names() -> list[str]:
    """Every registered mode's name, in registration order (aliases not included)."""
    return list(_REGISTRY)


def mode_classes() -> list[type[TransferMode]]:
    """Every registered mode class, in registration order."""
    return list(_REGISTRY.values())


def mode_syntax() -> str:
    """The modes as a user writes them: `freeze, finetune, partial:K, gradual[:STEPS], ...`."""
    return ", ".join(cls.syntax() for cls in _REGISTRY.values())


def mode_class(name: str) -> type[TransferMode]:
    """The mode class registered under `name` or an alias of it.

    Args:
        name: a mode name such as `gradual` or an alias such as `freeze_bottom`.

    Returns:
        The registered `TransferMode` subclass.

    Raises:
        ConfigError: no mode has that name; the message suggests the closest one.
    """
    canonical = _ALIASES.get(name, name)
    if canonical in _REGISTRY:
        return _REGISTRY[canonical]
    close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown transfer mode {name!r}{hint}; choose one of {mode_syntax()}")


def _number(spec: str, arg: str) -> float | None:
    if not arg:
        return None
    try:
        value = float(arg)
    except ValueError:
        raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a number") from None
    if not math.isfinite(value):
        raise ConfigError(f"transfer mode {spec!r}: {arg!r} is not a finite number")
    return value


def whole_number(spec: str, value: float | None, what: str) -> int | None:
    """`value` as an int >= 1 (None stays None); else one error that says what the number means."""
    if value is not None and (value < 1 or value != int(value)):
        raise ConfigError(f"transfer mode {spec!r}: {what}; it must be a whole number >= 1")
    return None if value is None else int(value)


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """A mode's phases: the head alone for `frozen_steps` steps (or `frozen_epochs` epochs), then the settled
    state at once, or (`gradual`) one more group thawed, top-down, every `every_steps` steps (every epoch when
    None)."""

    settled: tuple[str, ...] = ()  # groups that never thaw
    frozen_steps: int | None = None
    frozen_epochs: int | None = None
    gradual: bool = False
    every_steps: int | None = None


@dataclasses.dataclass(frozen=True)
class TransferMode:
    """A parsed transfer mode with its recipe options; `TransferMode.parse("partial:3")` builds one.

    The fields here are the recipe options every mode takes (the CLI's `--embedding-lr-multiplier`,
    `--lr-mult`, `--frozen-epochs`); a subclass adds the fields its own argument sets. A new mode is one
    module in `transfer/modes/` with a subclass decorated by `register_mode`.

    Args:
      embedding_multiplier: scales the embeddings' learning rate (None: the mode's own).
      lr_mult: discriminative / gradual spread, the top group's rate over the embeddings' (None: the default).
      frozen_epochs: head-only epochs before the encoder trains (None: the mode's default).

    Example:
      >>> from tfhub_transfer import TransferMode
      >>> mode = TransferMode.parse("partial:3")
      >>> str(mode), mode.encoder_trainable
      ('partial:3', True)
      >>> TransferMode.parse("freeze").encoder_trainable
      False
    """

    embedding_multiplier: float | None = None
    lr_mult: float | None = None  # None: the mode's default spread (default_lr_mult)
    frozen_epochs: float | None = None  # head-only epochs first; None: the mode's default (none)

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()
    argument: ClassVar[str | None] = None  # the argument's placeholder in `name:ARG`, None: takes none
    argument_optional: ClassVar[bool] = True
    summary: ClassVar[str] = ""  # one line: what trains (the CLI's --mode help, the README's table)
    encoder_trainable: ClassVar[bool] = True  # False runs the hub.KerasLayer in inference mode
    reinitializes: ClassVar[bool] = False  # the encoder's architecture with fresh weights
    brings_own_fit: ClassVar[bool] = False  # jobs call the mode's own fit (contrastive) instead of the loop's
    # The head reads unit-length, mean-pooled sentence embeddings of single, unpacked texts (contrastive).
    reads_sentence_embeddings: ClassVar[bool] = False
    no_head_first_phase: ClassVar[str | None] = None  # why --frozen-epochs does not apply (None: it does)
    default_lr_mult: ClassVar[float] = 1.0  # the top group's rate over the embeddings' when none is given
    takes_lr_mult: ClassVar[bool] = False
    backbones: ClassVar[tuple[str, ...]] = ("encoder",)  # architectures it trains (text_embedding: one block)
    needs_layer_groups: ClassVar[bool] = False  # works per layer group (freezes some, or rates per group)

    # -- parsing ------------------------------------------------------------------------------------
    @classmethod
    def parse(cls, spec: str | TransferMode, embedding_multiplier: float | None = None,
              lr_mult: float | None = None, frozen_epochs: float | None = None) -> TransferMode:
        """The mode `spec` names (`gradual:100`, ...) with the recipe options given beside it.

        Args:
            spec: `NAME[:ARG]` (or a mode already parsed, returned as it is).
            embedding_multiplier: the embeddings' learning-rate factor (`--embedding-lr-multiplier`).
            lr_mult: the top group's rate over the bottom group's (`--lr-mult`).
            frozen_epochs: head-only epochs before the encoder trains (`--frozen-epochs`).

        Returns:
            An instance of the registered mode class.

        Example:
            >>> str(TransferMode.parse("freeze_bottom:2"))
            'partial:2'
        """
        if isinstance(spec, TransferMode):
            return spec
        name, _, arg = str(spec).partition(":")
        chosen = mode_class(name)
        value = _number(str(spec), arg)
        chosen.check_recipe(str(spec), value, lr_mult, frozen_epochs)
        options = dict(embedding_multiplier=embedding_multiplier, lr_mult=lr_mult, frozen_epochs=frozen_epochs)
        return chosen.from_argument(str(spec), value, **options)

    @classmethod
    def from_argument(cls, spec: str, value: float | None, **options) -> TransferMode:
        """Builds the mode from its parsed argument (None when `spec` has no `:ARG`)."""
        if value is not None:
            raise ConfigError(f"transfer mode {cls.name!r} takes no argument (got {spec!r})")
        return cls(**options)

    @classmethod
    def syntax(cls) -> str:
        """How the mode is written: `freeze`, `partial:K`, `gradual[:STEPS]`."""
        if cls.argument is None:
            return cls.name
        return f"{cls.name}[:{cls.argument}]" if cls.argument_optional else f"{cls.name}:{cls.argument}"

    @classmethod
    def check_recipe(cls, spec: str, value: float | None, lr_mult: float | None,
                     frozen_epochs: float | None) -> None:
        """Refuses recipe options this mode does not take, or values out of range."""
        if lr_mult is not None:
            if not cls.takes_lr_mult:
                takers = tuple(c.name for c in _REGISTRY.values() if c.takes_lr_mult)
                raise ConfigError(f"--lr-mult spreads learning rates over the layer groups in modes {takers}; "
                                  f"mode {spec!r} takes none (use --mode discriminative)")
            if not (math.isfinite(lr_mult) and lr_mult >= 1):
                raise ConfigError(f"--lr-mult {lr_mult}: must be >= 1 (the top group's rate over the bottom one's)")
        if frozen_epochs is not None and not (math.isfinite(frozen_epochs) and frozen_epochs >= 0):
            raise ConfigError(f"--frozen-epochs {frozen_epochs}: must be a number >= 0")
        if frozen_epochs and cls.no_head_first_phase:
            raise ConfigError(f"--frozen-epochs does not apply to mode {cls.name}: {cls.no_head_first_phase}")

    def argument_value(self) -> float | int | None:
        """The value written after `name:` when the mode is printed (None: nothing)."""
        return None

    def __str__(self) -> str:
        arg = self.argument_value()
        return f"{self.name}:{arg}" if arg is not None else self.name

    @property
    def kind(self) -> str:
        """The mode's registered name (for display and records; behaviour lives in the class)."""
        return self.name

    # -- what the task applies to --------------------------------------------------------------------
    @classmethod
    def check_applies(cls, task: str, pair: bool = False, windowed: bool = False,
                      architecture: str = "encoder") -> None:
        """Refuses a task or backbone this mode cannot train, with a ConfigError naming it and what applies.

        Args:
            task: `single_label`, `multi_label`, `regression` or `tokens`.
            pair: sentence pairs (`--text-b-column`).
            windowed: long texts read in windows (`--long-text windows`).
            architecture: the backbone, `encoder` or `text_embedding`.
        """
        if architecture not in cls.backbones:
            fits = [c.name for c in _REGISTRY.values() if architecture in c.backbones]
            raise ConfigError(f"--mode {cls.name} does not apply to {architecture} models: a text-embedding module "
                              f"is one block of variables with no layer groups; use {' or '.join(fits)}")

    # -- recipe -------------------------------------------------------------------------------------
    def describe(self) -> str:
        """The mode with its recipe, e.g. `discriminative (head first 0.5 epochs, LR/10 .. LR)`."""
        parts = self.recipe_parts()
        return f"{self} ({', '.join(parts)})" if parts else str(self)

    def recipe_parts(self) -> list[str]:
        parts = [f"head first {self.head_epochs:g} epochs"] if self.head_epochs else []
        if self.spread > 1:
            parts.append(f"LR/{self.spread:g} .. LR")
        return parts

    @property
    def head_epochs(self) -> float:
        """Epochs that train the head alone before the encoder does (0 for none)."""
        return float(self.frozen_epochs) if self.frozen_epochs is not None else 0.0

    @property
    def spread(self) -> float:
        """Ratio of the top group's rate to the bottom group's (1: no spread)."""
        return float(self.lr_mult) if self.lr_mult is not None else self.default_lr_mult

    def default_rate(self, encoder_rate: float) -> float:
        """The default peak rate (the top group's) when none is given: a spread is centred on the encoder's
        usual rate (its geometric mean), so the middle groups train as under `finetune`, the top ones
        faster and the bottom ones slower; a short budget leaves no room for a lower average rate."""
        return encoder_rate * math.sqrt(self.spread) if self.encoder_trainable else encoder_rate

    @property
    def has_phases(self) -> bool:
        """Whether training changes which groups train along the way (head first, gradual thawing)."""
        return self.encoder_trainable and self.head_epochs > 0

    @property
    def needs_groups(self) -> bool:
        """Whether the mode works per layer group (so the encoder's variables must group by name)."""
        return self.needs_layer_groups or self.has_phases or (
            self.embedding_multiplier is not None and self.encoder_trainable)

    # -- which weights train ---------------------------------------------------------------------------
    def settled_frozen(self, groups: LayerGroups) -> list[str]:
        """Groups that stay frozen once the head-only phase (and any thawing) is over."""
        return []

    def initially_frozen(self, groups: LayerGroups) -> list[str]:
        """Groups that take no update at the start of training."""
        return list(groups.order) if self.has_phases else self.settled_frozen(groups)

    def fixed_variables(self, variables: list) -> list:
        """Encoder variables that never train in this mode, whatever the groups do (none by default)."""
        return []

    def learning_rate_multipliers(self, groups: LayerGroups, unused: tuple[str, ...] = ()) -> dict[str, float]:
        """LR factor per encoder group, relative to the encoder's rate (the head's is set at compile).

        `unused` groups (e.g. the pooler under mean pooling) take no gradient, so they do not
        count in the spread; they get the top group's factor.
        """
        used = [name for name in groups.order if name not in unused]
        factors = dict.fromkeys(groups.order, 1.0)
        factors.update(self.group_factors(used))
        for name in unused:
            factors[name] = factors[used[-1]] if used else 1.0
        if self.embedding_multiplier is not None:
            factors["embeddings"] = self.embedding_multiplier
        return factors

    def group_factors(self, used: list[str]) -> dict[str, float]:
        """The spread over the used groups: geometric from 1/spread (bottom) to 1 (top)."""
        if self.spread <= 1 or len(used) < 2:
            return {}
        steps = len(used) - 1
        return {name: self.spread ** (-(steps - i) / steps) for i, name in enumerate(used)}

    # -- phases ------------------------------------------------------------------------------------------
    def phase_plan(self, groups: LayerGroups, unused: tuple[str, ...], steps_per_epoch: int | None,
                   epochs: int) -> PhasePlan | None:
        """This mode's phases in a fit of `epochs` epochs, as numbers (None: no phases); the callback that
        walks a model through them is built from the plan (transfer.unfreezing.phase_callback)."""
        if not self.has_phases:
            return None
        settled = tuple(self.settled_frozen(groups))
        if steps_per_epoch is None:  # unknown length: whole epochs
            return PhasePlan(settled, frozen_epochs=math.ceil(self.head_epochs))
        return PhasePlan(settled, frozen_steps=round(self.head_epochs * steps_per_epoch))
