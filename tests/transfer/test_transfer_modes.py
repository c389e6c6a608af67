"""Transfer modes inside a Hub layer: partial freezing, gradual unfreezing, per-group LRs, reinit."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from shared_encoders import shared_tiny_bert

from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.transfer.layer_groups import layer_groups
from tfhub_transfer.transfer.modes import TransferMode

TEXTS = ["the film was wonderful", "the plot was awful", "I loved the food", "the staff were rude"] * 8
LABELS = np.array([1, 0, 1, 0] * 8, np.int32)


@pytest.fixture(scope="module")
def still_encoder():
    """A tiny encoder without dropout, so two runs from the same weights see the same gradients."""
    return shared_tiny_bert(dropout=0.0)


def groups_snapshot(model):
    return {name: [v.numpy().copy() for v in vs] for name, vs in model.layer_groups.variables.items()}


def changed_groups(before, after):
    return sorted(n for n in before if any(not np.array_equal(a, b) for a, b in zip(before[n], after[n])))


def fit(model, epochs=1, batch_size=8, learning_rate=1e-2, optimizer="adamw", callbacks=()):
    """The Keras path: plain compile() (the mode's per-group rates) and fit on raw strings."""
    model.compile(optimizer, learning_rate=learning_rate, schedule="constant", weight_decay=0.0)
    model.fit(TEXTS, LABELS, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=list(callbacks),
              shuffle=False)


@pytest.mark.parametrize("spec, kind, detail", [
    ("freeze", "freeze", {}),
    ("partial:3", "partial", {"frozen_layers": 3}),
    ("freeze_bottom:2", "partial", {"frozen_layers": 2}),
    ("gradual", "gradual", {"unfreeze_every_steps": None}),
    ("gradual:100", "gradual", {"unfreeze_every_steps": 100}),
    ("discriminative", "discriminative", {"decay": None, "spread": 10.0, "head_epochs": 0.0}),
    ("gradual", "gradual", {"spread": 10.0, "head_epochs": 0.0, "has_phases": True}),
    ("finetune", "finetune", {"spread": 1.0, "head_epochs": 0.0, "has_phases": False}),
    ("discriminative:0.8", "discriminative", {"decay": 0.8}),
    ("slow_embeddings:0.01", "slow_embeddings", {"embedding_multiplier": 0.01}),
    ("reinit", "reinit", {}),
])
def test_parse_modes(spec, kind, detail):
    mode = TransferMode.parse(spec)
    assert mode.kind == kind
    for key, value in detail.items():
        assert getattr(mode, key) == value


@pytest.mark.parametrize("spec", ["thaw", "partial", "partial:x", "discriminative:2", "finetune:3"])
def test_bad_mode_specs(spec):
    with pytest.raises(ConfigError):
        TransferMode.parse(spec)


def test_layer_groups_from_variable_names(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), mode="partial:1")
    groups = model.layer_groups
    assert groups.order == ["embeddings", "layer_0", "layer_1", "pooler"]
    assert len(groups.variables["layer_0"]) == 16
    total = sum(len(v) for v in groups.variables.values())
    assert total == len(model.get_layer("encoder").weights)


def test_published_style_names_group_and_ungroupable_names_fail():
    names = ["word_embeddings/embeddings:0", "embeddings/layer_norm/gamma:0",
             "transformer/layer_0/self_attention/query/kernel:0",
             "transformer/layer_11/output/bias:0", "pooler_transform/kernel:0"]
    variables = [tf.Variable(tf.zeros([1]), name=n.split(":")[0]) for n in names]
    assert layer_groups(variables).order == ["embeddings", "layer_0", "layer_11", "pooler"]
    albert_like = [tf.Variable(tf.zeros([1]), name="transformer/self_attention/query/kernel")]
    with pytest.raises(EncoderError, match="cannot split .* layer groups"):
        layer_groups(albert_like)


def test_partial_freezes_embeddings_and_bottom_layers_bit_identical(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), mode="partial:1", pooling="cls")
    before = groups_snapshot(model)
    head_before = [w.numpy().copy() for w in model.get_layer("head").weights]
    fit(model, epochs=1)
    assert changed_groups(before, groups_snapshot(model)) == ["layer_1", "pooler"]
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(head_before, model.get_layer("head").weights))


def test_frozen_groups_are_not_differentiated(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), mode="partial:2", pooling="cls")
    trained = {id(v) for v in model.step_variables()}
    frozen = [v for g in ("embeddings", "layer_0", "layer_1") for v in model.layer_groups.variables[g]]
    assert not trained & {id(v) for v in frozen}
    assert {id(v) for v in model.layer_groups.variables["pooler"]} <= trained


def test_gradual_unfreezes_top_down_one_group_per_epoch(tiny_encoder):
    from tfhub_transfer.transfer.unfreezing import GradualUnfreezing

    model = TextClassifier.from_encoder(str(tiny_encoder), mode="gradual", pooling="cls")
    snapshots = [groups_snapshot(model)]
    keep = tf_keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: snapshots.append(groups_snapshot(model)))
    fit(model, epochs=4, callbacks=[GradualUnfreezing(), keep])  # ULMFiT's: one group per epoch
    changed = [changed_groups(a, b) for a, b in zip(snapshots, snapshots[1:])]
    assert changed == [[], ["pooler"], ["layer_1", "pooler"], ["layer_0", "layer_1", "pooler"]]


@pytest.mark.slow
def test_gradual_every_n_steps(tiny_encoder):
    from tfhub_transfer.transfer.unfreezing import GradualUnfreezing

    model = TextClassifier.from_encoder(str(tiny_encoder), mode="gradual:2", pooling="cls")
    unfreezer = GradualUnfreezing(every_steps=2)
    before = groups_snapshot(model)
    fit(model, epochs=1, batch_size=4, callbacks=[unfreezer])  # 8 steps; fit adds no second unfreezer
    order = ("embeddings", "layer_0", "layer_1", "pooler")
    assert unfreezer.history == [(0, order), (2, order[:3]), (4, order[:2]), (6, order[:1]), (8, ())]
    assert changed_groups(before, groups_snapshot(model)) == ["layer_0", "layer_1", "pooler"]


def one_step_updates(encoder_dir, mode, optimizer, learning_rate=0.1):
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(encoder_dir), mode=mode, pooling="cls", dropout=0.0, seed=0)
    before = groups_snapshot(model)
    fit(model, epochs=1, batch_size=32, learning_rate=learning_rate, optimizer=optimizer)
    after = groups_snapshot(model)
    return model, {g: np.concatenate([(b - a).ravel() for a, b in zip(before[g], after[g])]) for g in before}


def clearly_moved(update):
    """Entries whose update is large enough that float32 rounding cannot blur a ratio."""
    return np.abs(update) > 1e-2 * np.abs(update).max()


# SGD's update is lr * gradient, so a large rate keeps updates well above float32 rounding of
# the weights; Adam's first update is about lr * sign(gradient) whatever the gradient's scale,
# so only a real per-group learning rate (not gradient scaling) gives the expected ratios.
@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 100.0), ("adam", 0.1)])
def test_per_group_learning_rates_are_exact(still_encoder, optimizer, learning_rate):
    _, uniform = one_step_updates(still_encoder, "finetune", optimizer, learning_rate)
    model, scaled = one_step_updates(still_encoder, "discriminative:0.5", optimizer, learning_rate)
    expected = {"pooler": 0.5, "layer_1": 0.25, "layer_0": 0.125, "embeddings": 0.0625}
    assert model.lr_multipliers == expected
    for group, factor in expected.items():
        moved = clearly_moved(uniform[group])
        ratio = scaled[group][moved] / uniform[group][moved]
        np.testing.assert_allclose(ratio, factor, rtol=1e-2, err_msg=group)
        assert abs(np.median(ratio) - factor) < 1e-3 * factor


def test_slow_embeddings(still_encoder):
    _, uniform = one_step_updates(still_encoder, "finetune", "sgd", 100.0)
    model, slow = one_step_updates(still_encoder, "slow_embeddings:0.01", "sgd", 100.0)
    moved = clearly_moved(uniform["embeddings"])
    ratio = slow["embeddings"][moved] / uniform["embeddings"][moved]
    assert abs(np.median(ratio) - 0.01) < 1e-4
    np.testing.assert_allclose(slow["layer_1"], uniform["layer_1"], rtol=1e-4, atol=1e-6)


def test_reinit_replaces_pretrained_weights_with_fresh_initialisation(tiny_encoder):
    pretrained = TextClassifier.from_encoder(str(tiny_encoder), mode="finetune")
    fresh = TextClassifier.from_encoder(str(tiny_encoder), mode="reinit", seed=1)
    old = {w.name: w.numpy() for w in pretrained.get_layer("encoder").weights}
    for weight in fresh.get_layer("encoder").weights:
        value = weight.numpy()
        assert not np.array_equal(value, old[weight.name]) or value.std() == 0
        if weight.name.endswith("gamma:0"):
            np.testing.assert_array_equal(value, 1.0)
        elif weight.name.endswith(("beta:0", "bias:0")):
            np.testing.assert_array_equal(value, 0.0)
        elif value.size > 500:
            assert 0.012 < value.std() < 0.02 and np.abs(value).max() <= 0.04 + 1e-6
