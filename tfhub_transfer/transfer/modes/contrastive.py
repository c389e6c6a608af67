"""`contrastive` / `contrastive:ITERATIONS`: few-shot, SetFit's recipe.

The encoder is first fine-tuned on pairs of labelled texts (cosine 1 for the same class, 0
otherwise; ITERATIONS pairs of each kind per example, default 20), then the head is fitted on its
frozen embeddings (models.contrastive brings that fit; the jobs call it for this mode).
"""

from __future__ import annotations

import dataclasses

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.transfer.modes.base import TransferMode, register_mode, whole_number

CONTRASTIVE_ITERATIONS = 20  # SetFit's num_iterations
# One pass over the pairs (SetFit's paper recipe): on the same draws at 8 per class, SetFit scored 67.0 (SST-2) and
# 82.6 (AG News) with one pass, 68.7 and 81.2 with three (RESULTS.md); one costs a third of the time.
PAIR_EPOCHS = 1
APPLIES_TO = ("single_label", "multi_label")


@register_mode
@dataclasses.dataclass(frozen=True)
class Contrastive(TransferMode):
    """Pairs first (siamese, mean pooling, cosine targets), then the head on the tuned embeddings."""

    pair_iterations: int = CONTRASTIVE_ITERATIONS  # positive (and negative) pairs per example

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
        return cls(pair_iterations=iterations or CONTRASTIVE_ITERATIONS, **options)

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

    def argument_value(self) -> int:
        return self.pair_iterations

    @staticmethod
    def pair_epochs(epochs: int | str) -> int:
        """Passes over the pairs: `epochs` as given, or `PAIR_EPOCHS` for `--epochs auto` (the pairs are
        the budget: a few hundred examples already make thousands of them)."""
        return PAIR_EPOCHS if epochs == "auto" else int(epochs)
