"""Recipes with their own learning rates per phase: the head's rate while the encoder is frozen, the
encoder's (spread over its groups) once it trains, gradual's head-only phase, the schedule per phase."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import HEAD_LEARNING_RATE, TrainConfig
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.training.schedules import DeferredSchedule
from tfhub_transfer.transfer.modes import TransferMode

TEXTS = ["the film was wonderful", "the plot was awful", "I loved the food", "the staff were rude"] * 8
LABELS = np.array([1, 0, 1, 0] * 8, np.int32)
BATCH = 8  # 4 steps per epoch


def snapshot(model):
    groups = {name: [v.numpy().copy() for v in vs] for name, vs in model.layer_groups.variables.items()}
    return groups, [w.numpy().copy() for w in model.get_layer("head").weights]


def moved(before, after) -> list[str]:
    return sorted(name for name in before if any(not np.array_equal(a, b) for a, b in zip(before[name], after[name])))


class Recorder(tf_keras.callbacks.Callback):
    """Each step's per-group rates and frozen groups (read before the step), and snapshots after steps."""

    def __init__(self):
        super().__init__()
        self.rates, self.frozen, self.after = [], [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.rates.append(self.model.group_learning_rates())
        self.frozen.append(self.model.frozen_groups)

    def on_train_batch_end(self, batch, logs=None):
        self.after.append(snapshot(self.model))


@pytest.fixture(scope="module")
def discriminative(tiny_encoder_no_dropout):
    """discriminative (head first for half an epoch, then LR/100 .. LR) with SGD at constant rates."""
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder_no_dropout), mode="discriminative", lr_mult=100,
                                        frozen_epochs=0.5, pooling="mean", dropout=0.0, seed=0)
    model.compile("sgd", learning_rate=0.1, schedule="constant", head_learning_rate=3.0, head_lr_multiplier=2.0)
    first = next(iter(model.encode_examples(TEXTS[:BATCH], LABELS[:BATCH], BATCH)))
    with tf.GradientTape() as tape:
        loss = model.compute_loss(first[0], first[1], model(first[0], training=True))
    head = model.get_layer("head").trainable_weights
    gradient = [g.numpy() for g in tape.gradient(loss, head)]
    before = snapshot(model)
    recorder = Recorder()
    model.fit(TEXTS, LABELS, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[recorder])
    return model, before, gradient, recorder


def test_head_alone_at_its_own_rate_while_the_encoder_is_frozen(discriminative):
    model, before, gradient, recorder = discriminative
    assert recorder.frozen[:2] == [tuple(model.layer_groups.order)] * 2 and recorder.frozen[2:] == [()] * 6
    for rates in recorder.rates[:2]:
        assert rates["head"] == pytest.approx(3.0)
        assert all(rates[name] == 0.0 for name in model.layer_groups.order)
    groups_after, head_after = recorder.after[1]
    assert moved(before[0], groups_after) == []  # two head-only steps: the encoder bit for bit unchanged
    # SGD's first step: head -= rate x gradient, so the head moved at the head's rate, not the encoder's.
    step = [a - b for a, b in zip(recorder.after[0][1], before[1])]
    for delta, grad in zip(step, gradient):
        np.testing.assert_allclose(delta, -3.0 * grad, rtol=1e-4, atol=1e-7)


def test_encoder_rates_spread_from_lr_over_lr_mult_to_lr_once_it_trains(discriminative):
    model, before, _, recorder = discriminative
    assert model.unused_groups == ("pooler",)  # mean pooling: the pooler is not part of the spread
    expected = {"embeddings": 0.001, "layer_0": 0.01, "layer_1": 0.1, "pooler": 0.1, "head": 0.2}
    for rates in recorder.rates[2:]:
        assert rates == pytest.approx(expected)  # the head at 2 x LR (head_lr_multiplier)
    assert moved(before[0], recorder.after[-1][0]) == ["embeddings", "layer_0", "layer_1"]


@pytest.mark.slow
def test_gradual_trains_only_the_head_in_its_frozen_phase(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), mode="gradual", frozen_epochs=1, pooling="cls", seed=0)
    model.compile(learning_rate=1e-2)  # the default head rate while frozen, the linear schedule per phase
    before = snapshot(model)
    recorder = Recorder()
    model.fit(TEXTS, LABELS, batch_size=BATCH, epochs=3, verbose=0, callbacks=[recorder])
    after_first_epoch = recorder.after[3]
    assert moved(before[0], after_first_epoch[0]) == []
    assert all(not np.array_equal(a, b) for a, b in zip(before[1], after_first_epoch[1]))
    assert all(rates["head"] <= HEAD_LEARNING_RATE * (1 + 1e-6) for rates in recorder.rates[:4])
    # then one group per step (8 steps left; a quarter of them is under 1 a group), top-down; pooler read (cls)
    assert recorder.frozen[4:9] == [("embeddings", "layer_0", "layer_1"), ("embeddings", "layer_0"),
                                    ("embeddings",), (), ()]
    # each phase runs its own linear decay (too few steps for a warmup): the head's ends near 0, the
    # encoder's starts at its peak (one schedule over all 12 steps would be at 0.75 x peak by then)
    assert recorder.rates[3]["head"] == pytest.approx(0.25 * HEAD_LEARNING_RATE)
    assert recorder.rates[4]["pooler"] == pytest.approx(1e-2) and recorder.rates[4]["head"] == pytest.approx(1e-2)
    assert moved(before[0], recorder.after[-1][0]) == ["embeddings", "layer_0", "layer_1", "pooler"]


def test_head_rates_in_every_mode_with_a_new_head(tiny_encoder):
    finetune = TextClassifier.from_encoder(str(tiny_encoder), mode="finetune", pooling="cls")
    finetune.compile(learning_rate=1e-4, schedule="constant", head_lr_multiplier=10.0)
    assert finetune.group_learning_rates(0) == pytest.approx(
        {"embeddings": 1e-4, "layer_0": 1e-4, "layer_1": 1e-4, "pooler": 1e-4, "head": 1e-3})
    freeze = TextClassifier.from_encoder(str(tiny_encoder), mode="freeze", pooling="cls")
    freeze.compile(schedule="constant")
    assert freeze.group_learning_rates(0)["head"] == pytest.approx(HEAD_LEARNING_RATE)
    freeze.compile(learning_rate=1e-2, schedule="constant")  # freeze mode: --lr is the head's ...
    assert freeze.group_learning_rates(0)["head"] == pytest.approx(1e-2)
    freeze.compile(learning_rate=1e-2, schedule="constant", head_learning_rate=3e-3)  # ... unless --head-lr
    assert freeze.group_learning_rates(0)["head"] == pytest.approx(3e-3)


def test_each_phase_runs_its_own_warmup_and_decay():
    schedule = DeferredSchedule("linear", 1.0, warmup_fraction=0.1)
    schedule.set_total_steps(100, start_step=0, phase_start=20)
    rate = [float(schedule(step)) for step in range(100)]
    assert rate[1] == pytest.approx(0.5) and rate[2] == pytest.approx(1.0)  # phase 1: 2 warmup steps of 20
    assert rate[19] == pytest.approx(1 / 18) and rate[20] == 0.0  # decays, then phase 2 warms up again
    assert rate[24] == pytest.approx(0.5) and rate[28] == pytest.approx(1.0) and rate[99] == pytest.approx(1 / 72)


@pytest.mark.parametrize("options, message", [
    ({"mode": "finetune", "lr_mult": 10.0}, "--lr-mult"),
    ({"mode": "discriminative:0.8", "lr_mult": 10.0}, "not both"),
    ({"mode": "freeze", "frozen_epochs": 1.0}, "--frozen-epochs"),
    ({"mode": "gradual", "frozen_epochs": 3.0, "epochs": 3}, "--frozen-epochs"),
    ({"mode": "freeze", "head_lr_multiplier": 10.0}, "--head-lr-multiplier"),
    ({"mode": "finetune", "tune_head": True}, "--tune-head"),
])
def test_recipe_options_that_do_not_fit_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        check_options(TrainConfig.of(train="x.tsv", **options))


def test_recipe_options_reach_the_mode():
    mode = TransferMode.parse("gradual", lr_mult=100.0, frozen_epochs=0.25)
    assert (mode.spread, mode.head_epochs, mode.has_phases) == (100.0, 0.25, True)
    assert TransferMode.parse("discriminative", lr_mult=100.0).default_rate(5e-5) == pytest.approx(5e-4)
    lp_ft = TransferMode.parse("finetune", frozen_epochs=1.0)  # linear probing, then fine-tuning
    assert lp_ft.has_phases and lp_ft.needs_groups
    assert "head first" not in TransferMode.parse("gradual").describe()  # no head-only phase by default
    assert "head first 0.5 epochs" in TransferMode.parse("gradual", frozen_epochs=0.5).describe()
