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
from collections.abc import Callable, Sequence

import numpy as np

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode
from tfhub_transfer.transfer.modes.contrastive import Contrastive

# Contrastive (SetFit) led plain fine-tuning at 8, 16 and 64 labelled examples per class on SST-2 (+6.5,
# +2.2, +3.8 points) and AG News (+0.8, +1.2, +1.0), 5 seeds each (RESULTS.md, few-shot summary). Against fine-tuning
# in batches of 8 (below), the same 3 draws each (RESULTS.md, "Fine-tuning in batches of 8", 2026-12-07): at 64 per
# class the two were level (SST-2 74.8 against 74.3, AG News 86.0 against 86.3; the pairs 1.6x slower), at 128 the
# pairs fell behind on SST-2 (75.6 against 78.0; AG News 86.7 against 86.4), so the pairs stop at 64.
FEW_SHOT_PER_CLASS = 64
# Past the pairs, up to this many per class: `finetune` in batches of 8 on every label for `--epochs auto`'s 200
# steps or more. At 128 per class, 3 draws: SST-2 78.0 against the pairs' 75.6, `gradual` 75.2, `finetune` in
# batches of 32 with a held-out tenth 74.2 and the Hugging Face Trainer's defaults 77.3, in ~30 s against 48-104 s
# (AG News 86.4 against the pairs' 86.7, the Trainer's 87.5). `finetune` with the Trainer's own budget (3 epochs)
# scored the same at 128 (77.7, 86.8) but 67.3 on SST-2 at 64 per class (48 steps), so the budget stays ours. At
# 512 per class `gradual` in batches of 32 led (SST-2 82.3 against 81.8, in 74 against 89 s; one draw), so past
# 128 the recipe goes back to `gradual`'s.
SMALL_DATA_PER_CLASS = 128
SMALL_DATA_BATCH_SIZE = 8
# Sentence pairs take the same small batches on every label up to this many per class (the largest N measured).
# MRPC (RESULTS.md, "Sentence pairs and multi-label on the curve", 2026-12-07): at 256 per class, 2 draws, 69.4 /
# 67.4 against `gradual` in batches of 32 (the default before) 63.7 / 63.0 and `finetune` in batches of 32 58.8 /
# 54.9, in 79-89 s against 231-272 s (the HF Trainer's defaults 70.6 / 68.9); at 512, one draw, 75.0 in 120 s
# against `gradual`'s 64.2 in 214 s. At 16 per class every recipe was near chance (46-61 on a dev set with 68 %
# positives; on the two draws both ran, one each way), where the small batches cost a quarter of the time.
SMALL_PAIRS_PER_CLASS = 512
# Up to this many, sentence pairs are read apart by the frozen sentence encoder (`--pairs siamese --feature-cache`:
# each text embedded once, a logistic head on |u-v|, u*v and the cosine; layers.pooling.PairFeatures). Same draws,
# accuracy (RESULTS.md, "Sentence pairs read apart", 2026-12-07, sixth session): MRPC at 16 per class 73.0 / 66.7 /
# 73.3 in 3-5 s against fine-tuning in batches of 8 (the rule before) 46.3 / 54.2 / 61.0 in 72-92 s (every recipe that
# reads a pair as one sequence was near chance there); at 64 and 128 per class 69.0 and 69.5 against 62.3 and 62.5;
# at 256, 66.4 / 68.4 / 69.9 against 69.4 / 67.4 / 69.1 (0.4 behind, in a tenth of the time); at 512, 69.6 / 66.4 /
# 69.4 against 75.0 / 72.3 / 73.8, so past 256 the pair read as one sequence fine-tunes better. RTE at 16 per class
# 61.7 / 61.4 / 63.9 against 54.2 / 54.2 / 49.5, at 256, 61.4 / 59.9 against 53.4 / 45.9.
FEW_PAIRS_PER_CLASS = 256
# Multi-label up to this many per class: SetFit's pairs (`contrastive` as given: batches of 32, a tenth held out),
# since its head on the tuned embeddings is standardised (models.contrastive.feature_standardisation). GoEmotions,
# dev macro-F1 on 1,000 rows, the same draws (RESULTS.md, "The Python API's default", 2026-12-08): at 64 per label
# 24.0 / 21.8 against the cached, tuned head's 20.6 / 20.3 (the rule before) in 135 s against 61-69 s; at 16 per
# label 13.1 / 15.0 / 14.7 against 12.1 / 15.3 / 15.6 (level, 14.3 each); at 8 per label, one draw, 11.4 against
# 12.4. The bound is the single-label pairs' (FEW_SHOT_PER_CLASS); past it the tuned head stays (unmeasured there).
FEW_MULTI_LABEL_PAIRS_PER_CLASS = FEW_SHOT_PER_CLASS
# Multi-label: the cached features with a tuned head led at every size measured on GoEmotions (28 labels, macro-F1,
# RESULTS.md "Sentence pairs and multi-label on the curve", 2026-12-07): at 16 per label (3 draws) 0.121-0.156
# against `gradual` 0.031-0.044 and `finetune` 0.043-0.051; at up to 256 per label (6,459 texts, the rarest label
# 65) 0.255 against `gradual`'s 0.068 (the default then: 65 is past the earlier bound of 64); on the full training set
# (the rarest label 77 rows) 0.419 against fine-tuning's 0.308 (RESULTS.md, issue #4). The bound covers those draws.
FEW_MULTI_LABEL_PER_CLASS = 256
# The pairs: every unique pair once, balanced (`contrastive` with no argument, SetFit 1.x's default), in batches
# of 8. SST-2 at 8 per class, 5 seeds, the same draws (RESULTS.md, "SST-2 at 8 per class, 5 seeds", 2026-12-07):
# 63.1 +- 3.7 in 12 s (62.6 +- 3.1 since a pair's texts share one batch: float rounding); the previous default
# (20 iterations, batches of 32) 60.5 +- 5.6 in 24-38 s, three passes of those 62.9 in 89 s, batches of 16: 61.7
# (iterations) and 59.4 (unique pairs); SetFit 1.2's defaults 61.0 +- 3.9 (ours ahead on all 5 draws). AG News at
# 8 per class, 3 seeds: 80.2 in 47-90 s against the previous default's 79.1 in 72-150 s and SetFit's 81.1 in 48-81 s
# (5 seeds, third session: 80.9 against SetFit's 81.8, 0.95x its time).
PAIR_BATCH_SIZE = 8
# Multi-label with few labels per class: the frozen encoder's cached features with a tuned head. GoEmotions
# (28 labels) at 16 per class, dev macro-F1 on 500 rows, 2 seeds (RESULTS.md, 2026-12-07): contrastive 0.000 and
# 0.000 (its head predicted no label; with the head's features standardised since, 0.114 / 0.131 at 8 / 16 per label
# on one draw of 1,000 rows against this rule's 0.124 / 0.121, 2026-12-08), gradual 0.040 (1 seed), freeze 0.067 /
# 0.055, freeze + cache + tuned head 0.140 / 0.157.
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
        single_vector_head: the head is the dense one on one pooled vector per text, on unpacked rows (not a
            BiLSTM over the tokens, not a head layer of one's own, no `--pack`): what the pair recipes read.
        texts_in_memory: the texts are at hand as lists (not streamed, not a tf.data dataset or token ids): the
            recipes that draw pairs from them or fit a head on their fixed features need that.
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
    single_vector_head: bool = True
    texts_in_memory: bool = True

    @classmethod
    def from_counts(cls, counts: Sequence[int], examples: int, **fields) -> DataProfile:
        """The profile of `examples` labelled examples whose classes hold `counts` examples each ([] for
        regression or tagging); `fields` are the other attributes.

        Example:
            >>> DataProfile.from_counts([8, 12], 20, sentence_encoder=True).per_class
            8.0
        """
        return cls(examples=examples, classes=max(len(counts), 1), smallest_class=min(counts) if len(counts) else None,
                   **fields)

    @classmethod
    def token_labels(cls) -> DataProfile:
        """The profile of any token-labelling data: its rule does not depend on how much there is."""
        return cls(0, 0, task="tokens")

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
    pairs: str | None = None  # how sentence pairs are read (--pairs, when left at its default); None: as configured
    feature_cache: bool = False  # turn on --feature-cache alone (the pairs' fixed features; when left at its default)

    def describe(self) -> str:
        batches = f", batches of {self.batch_size}" if self.batch_size else ""
        cached = (" --feature-cache --tune-head" if self.tuned_cached_head else
                  " --feature-cache" if self.feature_cache else "")
        pairs = f" --pairs {self.pairs}" if self.pairs else ""
        return f"auto: {self.reason} -> {self.mode}{batches}{pairs}{cached} ({self.rule})"


def holdout_for(profile: DataProfile) -> float | None:
    """0 (train on every label) below `NO_HOLDOUT_PER_CLASS` per class without a validation file, else None."""
    if profile.validation_given or profile.per_class >= NO_HOLDOUT_PER_CLASS:
        return None
    return 0.0


def every_label(profile: DataProfile) -> float | None:
    """0 (no hold-out) unless a validation file was given: the small-batch recipe was measured that way."""
    return None if profile.validation_given else 0.0


def keep_holdout(profile: DataProfile) -> None:
    """The configured fraction: the tuned head needs its held-out rows (as measured)."""
    return None


def _pairs_can_read(profile: DataProfile) -> bool:
    """The pair recipes (SetFit's pairs, pairs read apart) need the texts at hand and one vector a text."""
    return profile.texts_in_memory and profile.single_vector_head


def _few_shot(profile: DataProfile) -> bool:
    try:
        Contrastive.check_applies(profile.task, profile.pair, profile.windowed, profile.architecture)
    except ConfigError:
        return False
    # Measured with a mean-pooled sentence encoder only (SetFit's setting); a plain BERT fine-tunes instead.
    # Single-label only: on multi-label data the cached, tuned head led (see above).
    return (profile.sentence_encoder and profile.per_class <= FEW_SHOT_PER_CLASS and profile.task == "single_label"
            and _pairs_can_read(profile))


def _whole_texts_sentence_encoder(profile: DataProfile) -> bool:
    """The setting the few-label rules were measured in: texts read whole by a mean-pooled sentence encoder."""
    return profile.sentence_encoder and profile.architecture == "encoder" and not profile.windowed


def _one_text_sentence_encoder(profile: DataProfile) -> bool:
    return _whole_texts_sentence_encoder(profile) and not profile.pair


def _small_data(profile: DataProfile) -> bool:
    return (profile.task == "single_label" and _one_text_sentence_encoder(profile)
            and profile.per_class <= SMALL_DATA_PER_CLASS)


def _few_pairs(profile: DataProfile) -> bool:
    return (profile.task == "single_label" and profile.pair and _whole_texts_sentence_encoder(profile)
            and profile.per_class <= FEW_PAIRS_PER_CLASS and _pairs_can_read(profile))


def _small_pairs(profile: DataProfile) -> bool:
    return (profile.task == "single_label" and profile.pair and _whole_texts_sentence_encoder(profile)
            and profile.per_class <= SMALL_PAIRS_PER_CLASS)


def _few_multi_label_pairs(profile: DataProfile) -> bool:
    return (profile.task == "multi_label" and _one_text_sentence_encoder(profile) and _pairs_can_read(profile)
            and profile.per_class <= FEW_MULTI_LABEL_PAIRS_PER_CLASS)


def _few_multi_label(profile: DataProfile) -> bool:
    return (profile.task == "multi_label" and _one_text_sentence_encoder(profile)
            and profile.per_class <= FEW_MULTI_LABEL_PER_CLASS)


@dataclasses.dataclass(frozen=True)
class Rule:
    """One row of the decision table: when it applies, the mode it picks and the settings that come with it.

    Args:
        text: the rule in words (printed in the choice line and written to metrics.json).
        applies: whether the rule applies to a `DataProfile`.
        mode: the mode it picks.
        batch_size: the batch size it sets when the user left `--batch-size` alone (None: keep it).
        holdout: the validation fraction it sets for a profile (None: keep the configured one).
        tuned_cached_head: it turns on `--feature-cache --tune-head` when the user left both alone.
        pairs: how it reads sentence pairs (`--pairs`) when the user left that alone (None: keep it).
        feature_cache: it turns on `--feature-cache` alone (with `pairs="siamese"`: the pairs' fixed features).
    """

    text: str
    applies: Callable[[DataProfile], bool]
    mode: str
    batch_size: int | None = None
    holdout: Callable[[DataProfile], float | None] = holdout_for
    tuned_cached_head: bool = False
    pairs: str | None = None
    feature_cache: bool = False


# The decision table, first match wins.
RULES = (
    Rule("one block of variables: no groups to phase", lambda p: p.architecture != "encoder", "finetune"),
    Rule(f"<= {FEW_SHOT_PER_CLASS} per class, one text, class labels, a sentence encoder: SetFit's pairs",
         _few_shot, "contrastive", batch_size=PAIR_BATCH_SIZE),
    Rule(f"<= {SMALL_DATA_PER_CLASS} per class, one text, class labels, a sentence encoder: small batches, "
         "every label", _small_data, "finetune", batch_size=SMALL_DATA_BATCH_SIZE, holdout=every_label),
    Rule(f"<= {FEW_PAIRS_PER_CLASS} per class, sentence pairs, class labels, a sentence encoder: each text "
         "embedded apart, a head on the pairs' fixed features, every label", _few_pairs, "freeze",
         holdout=every_label, pairs="siamese", feature_cache=True),
    Rule(f"<= {SMALL_PAIRS_PER_CLASS} per class, sentence pairs, class labels, a sentence encoder: small batches, "
         "every label", _small_pairs, "finetune", batch_size=SMALL_DATA_BATCH_SIZE, holdout=every_label),
    Rule(f"<= {FEW_MULTI_LABEL_PAIRS_PER_CLASS} per class, multi-label, one text, a sentence encoder: SetFit's pairs",
         _few_multi_label_pairs, "contrastive", holdout=keep_holdout),
    Rule(f"<= {FEW_MULTI_LABEL_PER_CLASS} per class, multi-label, a sentence encoder: its cached features, head tuned",
         _few_multi_label, "freeze", holdout=keep_holdout, tuned_cached_head=True),
    Rule("more labels, or a task pairs do not fit: phased fine-tuning",
         lambda p: p.architecture == "encoder" and p.task != "tokens", FINE_TUNING_MODE),
    Rule("token labels: every layer trains", lambda p: True, "finetune"),
)


def _reason(profile: DataProfile) -> str:
    if profile.task in ("regression", "tokens"):
        return f"{profile.examples} examples, --task {profile.task}"
    kinds = "sentence pairs, " if profile.pair else ""
    return (f"{profile.examples} examples, {kinds}{profile.classes} classes, "
            f"{profile.per_class:g} in the rarest")


@register_mode
@dataclasses.dataclass(frozen=True)
class Auto(TransferMode):
    """Chooses among the other modes from the data (`resolve`); it never trains as itself."""

    name = "auto"
    summary = ("the package chooses from the data (examples per class, task, encoder): contrastive for few "
               "labels per class (single- or multi-label), finetune in small batches for a few more, gradual past "
               f"that (multi-label: a tuned head on cached features up to {FEW_MULTI_LABEL_PER_CLASS}), finetune where "
               f"groups or pairs do not apply; sentence pairs: a frozen siamese reading up to {FEW_PAIRS_PER_CLASS} "
               f"per class, small batches up to {SMALL_PAIRS_PER_CLASS}")

    def resolve(self, profile: DataProfile) -> Choice:
        rule = next(r for r in RULES if r.applies(profile))  # the last rule applies to every profile
        # epochs None: --epochs auto gives each mode its own budget (contrastive: one pass over its pairs)
        return Choice(rule.mode, rule.holdout(profile), None, rule.text, _reason(profile), rule.batch_size,
                      tuned_cached_head=rule.tuned_cached_head, pairs=rule.pairs, feature_cache=rule.feature_cache)

    def check_applies(self, *args, **kwargs) -> None:  # what it resolves to checks for itself
        return None

    @staticmethod
    def before_data() -> str:
        """The mode a Keras model in `auto` mode is built in until its first `fit` shows it the data: plain
        fine-tuning, which applies to every encoder; that fit rebuilds the model for the mode chosen."""
        return "finetune"



def label_counts(targets: np.ndarray, target: str, num_classes: int) -> list[int]:
    """Examples per class of encoded targets: class ids (`target` "class"), multi-hot rows ("classes": texts
    carrying each label); [] for scores.

    Example:
        >>> label_counts(np.array([0, 1, 1]), "class", 3)
        [1, 2, 0]
    """
    if target == "number":
        return []
    rows = np.asarray(targets)
    if target == "classes":
        return [int(c) for c in rows.reshape(len(rows), -1).sum(0)]
    return [int(c) for c in np.bincount(rows.astype(int).ravel(), minlength=num_classes)]


def resolve_mode(mode: TransferMode, profile: DataProfile) -> Choice | None:
    """The choice `auto` makes for `profile`, or None for a mode given explicitly (it trains as given).

    Example:
        >>> resolve_mode(TransferMode.parse("auto"), DataProfile(16, 2, smallest_class=8, sentence_encoder=True)).mode
        'contrastive'
    """
    return mode.resolve(profile) if isinstance(mode, Auto) else None
