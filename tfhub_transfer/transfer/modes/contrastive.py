"""`contrastive` / `contrastive:ITERATIONS`: few-shot, SetFit's recipe.

The encoder is first fine-tuned on pairs of labelled texts (cosine 1 for the same class, 0
otherwise), then the head is fitted on its frozen embeddings (models.contrastive brings that fit; the
jobs call it for this mode). The pairs: `contrastive` takes every unique pair of examples once, the
rarer kind (same class / different class) repeated until both kinds are as many (SetFit 1.x's default,
"oversampling"), at most PAIR_BUDGET pairs a pass; `contrastive:N` draws N positive and N negative
partners per example (SetFit's `num_iterations`, its paper's recipe with N = 20).
"""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode, whole_number

CONTRASTIVE_ITERATIONS = 20  # SetFit's num_iterations: what contrastive:N means, and multi-label's pairs
# Pairs per pass at most: 16 examples per class x 2 classes x 20 iterations x 2 kinds (SetFit's paper at 16 per
# class). Every unique pair fits under it up to ~25 examples per class of two classes; past it a balanced sample
# is drawn, so the pair fit costs about the same at 64 per class as at 16 (AG News at 64 per class, 1,024 pairs:
# 86.4, +1.0 over finetune; RESULTS.md, few-shot summary).
PAIR_BUDGET = 1280
# One pass over the pairs (SetFit's paper recipe): on the same draws at 8 per class, SetFit scored 67.0 (SST-2) and
# 82.6 (AG News) with one pass, 68.7 and 81.2 with three (RESULTS.md); one costs a third of the time.
PAIR_EPOCHS = 1
APPLIES_TO = ("single_label", "multi_label")


@register_mode
@dataclasses.dataclass(frozen=True)
class Contrastive(TransferMode):
    """Pairs first (siamese, mean pooling, cosine targets), then the head on the tuned embeddings."""

    pair_iterations: int | None = None  # positive (and negative) partners per example; None: every unique pair

    name = "contrastive"
    argument = "ITERATIONS"
    summary = ("few-shot (SetFit): the encoder on pairs of labelled texts, then the head on its frozen "
               "embeddings")
    brings_own_fit = True
    reads_sentence_embeddings = True
    no_head_first_phase = "it tunes the encoder on pairs first, then fits the head on its embeddings"

    @classmethod
    def from_argument(cls, spec, value, **options) -> Contrastive:
        iterations = whole_number(spec, value, "contrastive:N draws N positive and N negative pairs per example, "
                                               "e.g. contrastive:20")
        return cls(pair_iterations=iterations, **options)

    @classmethod
    def check_applies(cls, task, pair=False, windowed=False, architecture="encoder") -> None:
        super().check_applies(task, pair, windowed, architecture)
        if windowed:
            raise ConfigError("--long-text windows does not apply to --mode contrastive: its pairs compare one "
                              "embedding per text (up to --seq-length word pieces); use --long-text truncate")
        if task not in APPLIES_TO:
            raise ConfigError(f"--mode contrastive does not apply to --task {task}: it pairs texts by "
                              "their class labels (single_label or multi_label)")
        if pair:
            raise ConfigError("--mode contrastive does not apply to sentence pairs (--text-b-column): it "
                              "compares the embeddings of single texts")

    def argument_value(self) -> int | None:
        return self.pair_iterations

    def describe_pairs(self, pairs: int, examples: int) -> str:
        """How the pairs were drawn, for the progress line."""
        if self.pair_iterations is not None:
            return (f"{pairs} pairs ({self.pair_iterations} positive and negative per example) from {examples} "
                    f"examples")
        return (f"{pairs} pairs (every unique pair of {examples} examples, the rarer kind repeated to balance; "
                f"at most {PAIR_BUDGET})")

    @staticmethod
    def pair_epochs(epochs: int | str) -> int:
        """Passes over the pairs: `epochs` as given, or `PAIR_EPOCHS` for `--epochs auto` (the pairs are
        the budget: a few hundred examples already make thousands of them)."""
        return PAIR_EPOCHS if epochs == "auto" else int(epochs)
