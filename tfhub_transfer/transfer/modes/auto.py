"""`auto`: chooses the recipe from the data it is given, then delegates to that mode.

Before training, the job describes the data (`DataProfile`: labelled examples, the rarest class's
count, classes, task, sentence pairs, whether the encoder is a mean-pooled sentence encoder, whether a
validation file was given, a time budget) and `Auto.resolve(profile)` returns a `Choice`: the concrete
mode, how many pairs or epochs, whether to hold out validation, and one line saying why. The rules are
the small table `RULES` below; each threshold names the measurement that set it
(benchmarks/RESULTS.md). Every other mode resolves to itself, so a job asks every mode the same way.
"""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode
from tfhub_transfer.transfer.modes.contrastive import Contrastive

# Contrastive (SetFit) led plain fine-tuning at 8, 16 and 64 labelled examples per class on SST-2 (+6.5,
# +2.2, +3.8 points) and AG News (+0.8, +1.2, +1.0), 5 seeds each (RESULTS.md, few-shot summary). At 128 per class
# (RESULTS.md, "the curve past 64 per class", 2026-12-07) its pairs in batches of 8 scored 76.6 / 71.2 on SST-2
# (gradual 74.2 / 72.6, finetune 70.5 / 78.0) and 86.7 on AG News (gradual 85.3, finetune 85.1), in about half
# gradual's time (48 against 88-104 s; 97 against 181 s); nothing between 128 and 512 was measured, so past 128 the
# fine-tuning recipes take over.
FEW_SHOT_PER_CLASS = 128
# Multi-label's few-label rule was measured at 16 per label and inherited the few-shot range of its day.
FEW_MULTI_LABEL_PER_CLASS = 64
# The pairs: every unique pair once, balanced (`contrastive` with no argument, SetFit 1.x's default), in batches
# of 8. SST-2 at 8 per class, 5 seeds, the same draws (RESULTS.md, "SST-2 at 8 per class, 5 seeds", 2026-12-07):
# 63.1 +- 3.7 in 12 s (62.6 +- 3.1 since a pair's texts share one batch: float rounding); the previous default
# (20 iterations, batches of 32) 60.5 +- 5.6 in 24-38 s, three passes of those 62.9 in 89 s, batches of 16: 61.7
# (iterations) and 59.4 (unique pairs); SetFit 1.2's defaults 61.0 +- 3.9 (ours ahead on all 5 draws). AG News at
# 8 per class, 3 seeds: 80.2 in 47-90 s against the previous default's 79.1 in 72-150 s and SetFit's 81.1 in 48-81 s
# (5 seeds, third session: 80.9 against SetFit's 81.8, 0.95x its time).
PAIR_BATCH_SIZE = 8
# Multi-label with few labels per class: the frozen encoder's cached features with a tuned head. GoEmotions
# (28 labels) at 16 per class, dev macro-F1, 2 seeds (RESULTS.md, 2026-12-07): contrastive 0.000 and 0.000
# (its head predicts no label), gradual 0.040 (1 seed), freeze 0.067 / 0.055, freeze + cache + tuned head
# 0.140 / 0.157.
# `gradual` scored 80.43 against finetune's 78.44 at 1k SST-2 sentences and level at 8k (3 seeds each,
# RESULTS.md: the transfer-mode recipes); it is the fine-tuning recipe past the few-shot range.
FINE_TUNING_MODE = "gradual"
# Under about 50 labelled examples per class a held-out tenth is a handful of texts: its accuracy moves in
# steps of 10-20 points and those labels are worth more in training (the 16-example case held out 2).
NO_HOLDOUT_PER_CLASS = 50


@dataclasses.dataclass(frozen=True)
class DataProfile:
    """What `auto` sees of the data and setup before training.

    Args:
        examples: labelled training examples (before any validation split).
        classes: label classes (1 for regression).
        task: `single_label`, `multi_label`, `regression` or `tokens`.
        smallest_class: examples of the rarest class (None: not a classification task).
        pair: sentence pairs.
        windowed: long texts read in windows.
        sentence_encoder: the encoder was trained to be read by mean pooling (sentence-transformers).
        validation_given: a validation set was given (`--valid`), so none is held out of training.
        architecture: `encoder`, `rnn` or `text_embedding`.
    """

    examples: int
    classes: int
    task: str = "single_label"
    smallest_class: int | None = None
    pair: bool = False
    windowed: bool = False
    sentence_encoder: bool = False
    validation_given: bool = False
    architecture: str = "encoder"

    @property
    def per_class(self) -> float:
        """Labelled examples of the rarest class (all examples for regression and tagging)."""
        if self.smallest_class is not None:
            return float(self.smallest_class)
        return float(self.examples)


@dataclasses.dataclass(frozen=True)
class Choice:
    """What `auto` decided: the mode to train with, the validation hold-out and the reason, in one line."""

    mode: str
    validation_fraction: float | None  # None: keep the configured fraction
    epochs: int | None  # None: the configured epochs (or the step budget of `--epochs auto`)
    rule: str
    reason: str
    batch_size: int | None = None  # None: keep the configured batch size
    tuned_cached_head: bool = False  # turn on --feature-cache and --tune-head (when left at their defaults)

    def describe(self) -> str:
        batches = f", batches of {self.batch_size}" if self.batch_size else ""
        cached = " --feature-cache --tune-head" if self.tuned_cached_head else ""
        return f"auto: {self.reason} -> {self.mode}{batches}{cached} ({self.rule})"


def _few_shot(profile: DataProfile) -> bool:
    try:
        Contrastive.check_applies(profile.task, profile.pair, profile.windowed, profile.architecture)
    except ConfigError:
        return False
    # Measured with a mean-pooled sentence encoder only (SetFit's setting); a plain BERT fine-tunes instead.
    # Single-label only: on multi-label data its head predicted no label at all (see above).
    return profile.sentence_encoder and profile.per_class <= FEW_SHOT_PER_CLASS and profile.task == "single_label"


def _few_multi_label(profile: DataProfile) -> bool:
    return (profile.task == "multi_label" and profile.sentence_encoder and profile.architecture == "encoder"
            and not profile.pair and not profile.windowed and profile.per_class <= FEW_MULTI_LABEL_PER_CLASS)


# The decision table, first match wins: (rule, applies to the profile, the mode it picks).
RULES = (
    ("one block of variables: no groups to phase", lambda p: p.architecture != "encoder", lambda p: "finetune"),
    (f"<= {FEW_SHOT_PER_CLASS} per class, one text, class labels, a sentence encoder: SetFit's pairs",
     _few_shot, lambda p: "contrastive"),
    (f"<= {FEW_MULTI_LABEL_PER_CLASS} per class, multi-label, a sentence encoder: its cached features, head tuned",
     _few_multi_label, lambda p: "freeze"),
    ("more labels, or a task pairs do not fit: phased fine-tuning",
     lambda p: p.architecture == "encoder" and p.task != "tokens", lambda p: FINE_TUNING_MODE),
    ("token labels: every layer trains", lambda p: True, lambda p: "finetune"),
)


def _reason(profile: DataProfile) -> str:
    if profile.task in ("regression", "tokens"):
        return f"{profile.examples} examples, --task {profile.task}"
    kinds = "sentence pairs, " if profile.pair else ""
    return (f"{profile.examples} examples, {kinds}{profile.classes} classes, "
            f"{profile.per_class:g} in the rarest")


def holdout_for(profile: DataProfile) -> float | None:
    """0 (train on every label) below `NO_HOLDOUT_PER_CLASS` per class without a validation file, else None."""
    if profile.validation_given or profile.per_class >= NO_HOLDOUT_PER_CLASS:
        return None
    return 0.0


@register_mode
@dataclasses.dataclass(frozen=True)
class Auto(TransferMode):
    """Chooses among the other modes from the data (`resolve`); it never trains as itself."""

    name = "auto"
    summary = ("the package chooses from the data (examples per class, task, encoder): contrastive for few "
               "labels per class, gradual past that, finetune where groups or pairs do not apply")

    def resolve(self, profile: DataProfile) -> Choice:
        for rule, applies, pick in RULES:
            if applies(profile):
                mode = pick(profile)
                epochs = None  # --epochs auto: each mode's own budget (contrastive: one pass over its pairs)
                batch = PAIR_BATCH_SIZE if mode.startswith("contrastive") else None
                tuned = applies is _few_multi_label  # its head is tuned on held-out rows: keep them (as measured)
                return Choice(mode, None if tuned else holdout_for(profile), epochs, rule, _reason(profile), batch,
                              tuned_cached_head=tuned)
        raise AssertionError("the last rule applies to every profile")

    def check_applies(self, *args, **kwargs) -> None:  # what it resolves to checks for itself
        return None



def resolve_mode(mode: TransferMode, profile: DataProfile) -> Choice | None:
    """The choice `auto` makes for `profile`, or None for a mode given explicitly (it trains as given).

    Example:
        >>> resolve_mode(TransferMode.parse("auto"), DataProfile(16, 2, smallest_class=8, sentence_encoder=True)).mode
        'contrastive'
    """
    return mode.resolve(profile) if isinstance(mode, Auto) else None
