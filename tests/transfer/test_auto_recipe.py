"""`--mode auto`'s decision table and the step budgets, on synthetic data shapes (no training)."""

import pytest

from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.modes.auto import (
    FEW_MULTI_LABEL_PAIRS_PER_CLASS,
    FEW_MULTI_LABEL_PER_CLASS,
    FEW_PAIRS_PER_CLASS,
    FEW_SHOT_PER_CLASS,
    NO_HOLDOUT_PER_CLASS,
    PAIR_BATCH_SIZE,
    SMALL_DATA_BATCH_SIZE,
    SMALL_DATA_PER_CLASS,
    SMALL_PAIRS_PER_CLASS,
    DataProfile,
    resolve_mode,
)

AUTO = TransferMode.parse("auto")


def choose(**profile):
    return resolve_mode(AUTO, DataProfile(**profile))


@pytest.mark.parametrize("profile, mode", [
    # few labels per class, one text, a sentence encoder: SetFit's pairs (every unique pair, within the budget)
    (dict(examples=16, classes=2, smallest_class=8, sentence_encoder=True), "contrastive"),
    (dict(examples=32, classes=2, smallest_class=16, sentence_encoder=True), "contrastive"),
    (dict(examples=48, classes=6, smallest_class=8, sentence_encoder=True, task="multi_label"), "contrastive"),
    (dict(examples=256, classes=4, smallest_class=64, sentence_encoder=True), "contrastive"),
    # a few more: fine-tuning in small batches on every label
    (dict(examples=200, classes=2, smallest_class=100, sentence_encoder=True), "finetune"),
    (dict(examples=200, classes=2, smallest_class=100, sentence_encoder=True, task="multi_label"), "freeze"),
    (dict(examples=900, classes=2, smallest_class=300, sentence_encoder=True, task="multi_label"), "gradual"),
    # more labels than that: phased fine-tuning
    (dict(examples=300, classes=2, smallest_class=140, sentence_encoder=True), "gradual"),
    (dict(examples=8000, classes=2, smallest_class=3500, sentence_encoder=True), "gradual"),
    # sentence pairs: no contrastive; the frozen encoder reads them apart up to 256 per class, small batches on
    # every label up to 512, phased past that
    (dict(examples=16, classes=2, smallest_class=8, sentence_encoder=True, pair=True), "freeze"),
    (dict(examples=1024, classes=2, smallest_class=512, sentence_encoder=True, pair=True), "finetune"),
    (dict(examples=1200, classes=2, smallest_class=600, sentence_encoder=True, pair=True), "gradual"),
    (dict(examples=16, classes=2, smallest_class=8, sentence_encoder=False, pair=True), "gradual"),
    # regression, windows, a plain BERT: no contrastive, whatever the size
    (dict(examples=40, classes=1, task="regression", sentence_encoder=True), "gradual"),
    (dict(examples=16, classes=2, smallest_class=8, sentence_encoder=True, windowed=True), "gradual"),
    (dict(examples=16, classes=2, smallest_class=8, sentence_encoder=False), "gradual"),
    # token labels and one-block modules
    (dict(examples=500, classes=9, task="tokens"), "finetune"),
    (dict(examples=16, classes=2, smallest_class=8, architecture="text_embedding"), "finetune"),
])
def test_the_decision_table(profile, mode):
    choice = choose(**profile)
    assert choice.mode == mode
    assert choice.mode in choice.describe() and "auto:" in choice.describe()
    TransferMode.parse(choice.mode)  # always a mode that exists


def per_class(n: int, classes: int = 10):
    return choose(examples=n * classes, classes=classes, smallest_class=n, sentence_encoder=True)


def test_the_boundaries_are_per_class_not_total():
    assert per_class(FEW_SHOT_PER_CLASS).mode == "contrastive"
    assert (per_class(FEW_SHOT_PER_CLASS + 1).mode, per_class(SMALL_DATA_PER_CLASS).mode) == ("finetune", "finetune")
    assert per_class(SMALL_DATA_PER_CLASS + 1).mode == "gradual"
    assert per_class(SMALL_DATA_PER_CLASS + 1, classes=2).mode == "gradual"  # few classes, same per-class rule
    multi_at = choose(examples=FEW_MULTI_LABEL_PER_CLASS * 10, classes=10, smallest_class=FEW_MULTI_LABEL_PER_CLASS,
                      sentence_encoder=True, task="multi_label")
    multi_past = choose(examples=FEW_MULTI_LABEL_PER_CLASS * 20, classes=10,
                        smallest_class=FEW_MULTI_LABEL_PER_CLASS + 1, sentence_encoder=True, task="multi_label")
    assert (multi_at.mode, multi_past.mode) == ("freeze", "gradual")  # measured at 16 and up to 256 per label


def pairs(n: int, **extra):
    return choose(examples=2 * n, classes=2, smallest_class=n, sentence_encoder=True, pair=True, **extra)


def test_few_sentence_pairs_are_read_apart_by_the_frozen_encoder_on_every_label_unless_the_user_says_otherwise():
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import choice_changes

    few = pairs(FEW_PAIRS_PER_CLASS)
    assert (few.mode, few.pairs, few.feature_cache, few.tuned_cached_head, few.validation_fraction) == \
        ("freeze", "siamese", True, False, 0.0)
    assert "--pairs siamese --feature-cache" in few.describe() and "sentence pairs" in few.describe()
    assert pairs(FEW_PAIRS_PER_CLASS + 1).mode == "finetune"
    assert pairs(16, validation_given=True).validation_fraction is None  # --valid: none held out of training
    assert (pairs(16, windowed=True).pairs, pairs(16, task="multi_label").pairs) == (None, None)
    assert choose(examples=32, classes=2, smallest_class=16, pair=True).mode == "gradual"  # a plain BERT
    config = TrainConfig.of(train="x.tsv", text_b_column="b")
    assert choice_changes(config, few) == {"mode": "freeze", "validation_fraction": 0.0, "pairs": "siamese",
                                           "feature_cache": True}
    # the user's --tune-head keeps pairs as they are (a siamese head sweeps no L2); their --batch-size stays
    assert choice_changes(config.replace(feature_cache=True, tune_head=True), few) == \
        {"mode": "freeze", "validation_fraction": 0.0}


def test_sentence_pairs_fine_tune_in_small_batches_on_every_label_up_to_their_own_boundary():
    at = pairs(SMALL_PAIRS_PER_CLASS)
    assert (at.mode, at.batch_size, at.validation_fraction) == ("finetune", SMALL_DATA_BATCH_SIZE, 0.0)
    assert "sentence pairs" in at.describe() and "batches of 8" in at.describe()
    assert pairs(SMALL_PAIRS_PER_CLASS, validation_given=True).validation_fraction is None  # --valid: none held out
    past = pairs(SMALL_PAIRS_PER_CLASS + 1)
    assert (past.mode, past.batch_size, past.validation_fraction) == ("gradual", None, None)
    assert pairs(SMALL_PAIRS_PER_CLASS, windowed=True).mode == "gradual"  # measured on pairs read whole only
    assert pairs(SMALL_PAIRS_PER_CLASS, task="multi_label").mode == "gradual"


def test_few_multi_label_examples_get_the_pairs_as_measured_batches_and_hold_out_kept():
    few = choose(examples=448, classes=28, smallest_class=16, sentence_encoder=True, task="multi_label")
    assert (few.mode, few.batch_size, few.validation_fraction, few.tuned_cached_head) == \
        ("contrastive", None, None, False)
    at = choose(examples=1792, classes=28, smallest_class=FEW_MULTI_LABEL_PAIRS_PER_CLASS, sentence_encoder=True,
                task="multi_label")
    assert at.mode == "contrastive" and "multi-label" in at.describe()
    streamed = choose(examples=448, classes=28, smallest_class=16, sentence_encoder=True, task="multi_label",
                      texts_in_memory=False)
    assert streamed.tuned_cached_head  # the cached head reads a streamed file; the pairs need the texts at hand


def test_multi_label_examples_past_the_pairs_get_the_tuned_head_on_cached_features_and_keep_validation():
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import choice_changes

    few = choose(examples=1820, classes=28, smallest_class=FEW_MULTI_LABEL_PAIRS_PER_CLASS + 1, sentence_encoder=True,
                 task="multi_label")
    assert (few.mode, few.tuned_cached_head, few.validation_fraction) == ("freeze", True, None)
    assert "--feature-cache --tune-head" in few.describe()
    config = TrainConfig.of(train="x.tsv", task="multi_label")
    assert choice_changes(config, few) == {"mode": "freeze", "feature_cache": True, "tune_head": True}
    assert choice_changes(config.replace(feature_cache=True), few) == {"mode": "freeze"}  # the user's own choice
    many = choose(examples=9000, classes=28, smallest_class=300, sentence_encoder=True, task="multi_label")
    assert (many.mode, many.tuned_cached_head) == ("gradual", False)
    plain_bert = choose(examples=448, classes=28, smallest_class=16, task="multi_label")
    assert not plain_bert.tuned_cached_head


def test_contrastive_trains_its_pairs_in_small_batches_and_other_modes_keep_the_batch():
    few = choose(examples=16, classes=2, smallest_class=8, sentence_encoder=True)
    assert few.batch_size == PAIR_BATCH_SIZE and f"batches of {PAIR_BATCH_SIZE}" in few.describe()
    assert choose(examples=8000, classes=2, smallest_class=3500, sentence_encoder=True).batch_size is None


def test_a_few_more_labels_fine_tune_in_small_batches_on_every_label_unless_the_user_says_otherwise():
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import choice_changes

    small = per_class(FEW_SHOT_PER_CLASS + 1, classes=2)
    assert (small.mode, small.batch_size, small.validation_fraction) == ("finetune", SMALL_DATA_BATCH_SIZE, 0.0)
    assert f"finetune, batches of {SMALL_DATA_BATCH_SIZE}" in small.describe()
    config = TrainConfig.of(train="x.tsv")
    assert choice_changes(config, small) == {"mode": "finetune", "batch_size": SMALL_DATA_BATCH_SIZE,
                                             "validation_fraction": 0.0}
    assert choice_changes(config.replace(batch_size=16, validation_fraction=0.2), small) == {"mode": "finetune"}
    assert choice_changes(config.replace(valid="dev.tsv"), small) == {"mode": "finetune", "batch_size": 8}
    given = choose(examples=200, classes=2, smallest_class=100, sentence_encoder=True, validation_given=True)
    assert given.validation_fraction is None


@pytest.mark.parametrize("smallest, given, holdout", [
    (8, False, 0.0), (NO_HOLDOUT_PER_CLASS - 1, False, 0.0), (NO_HOLDOUT_PER_CLASS, False, None), (8, True, None)])
def test_no_label_held_out_below_the_threshold(smallest, given, holdout):
    choice = choose(examples=smallest * 2, classes=2, smallest_class=smallest, validation_given=given)
    assert choice.validation_fraction == holdout


def test_epochs_auto_is_one_pass_over_the_pairs_for_contrastive_and_given_epochs_are_kept():
    assert choose(examples=16, classes=2, smallest_class=8, sentence_encoder=True).epochs is None
    contrastive = TransferMode.parse("contrastive")
    assert (contrastive.pair_epochs("auto"), contrastive.pair_epochs(3)) == (1, 3)


def test_explicit_modes_are_not_resolved():
    assert resolve_mode(TransferMode.parse("finetune"), DataProfile(16, 2, smallest_class=8)) is None


def test_texts_not_in_memory_skip_the_recipes_that_draw_pairs_or_fit_fixed_features():
    # streamed files, a dataset of token ids, or fit options the pair fits cannot honour: the next rule that can train
    assert choose(examples=16, classes=2, smallest_class=8, sentence_encoder=True, texts_in_memory=False).mode == \
        "finetune"
    assert pairs(16, texts_in_memory=False).mode == "finetune" and pairs(16, texts_in_memory=False).pairs is None


def test_a_profile_from_label_counts():
    from tfhub_transfer.transfer.modes.auto import label_counts

    assert label_counts([0, 2, 2, 2], "class", 3) == [1, 0, 3]
    assert label_counts([[1, 0], [1, 1], [0, 0]], "classes", 2) == [2, 1]
    assert label_counts([0.5, 1.5], "number", 1) == []
    profile = DataProfile.from_counts([5, 9, 7], 21, sentence_encoder=True)
    assert (profile.classes, profile.smallest_class, profile.per_class) == (3, 5, 5.0)
    assert DataProfile.from_counts([], 40, task="regression").per_class == 40.0


def test_a_head_that_reads_more_than_one_vector_a_text_skips_the_pair_recipes():
    # a BiLSTM over the tokens, a head layer of one's own, packed rows: contrastive and the siamese pairs cannot apply
    assert choose(examples=16, classes=2, smallest_class=8, sentence_encoder=True, single_vector_head=False).mode == \
        "finetune"
    assert pairs(16, single_vector_head=False).pairs is None
