"""Training recipes: the learning-rate finder, early stopping, class and sample weights, compare's advice."""

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.cache import use_cache_dir
from tfhub_transfer.config import RuntimeConfig, TrainConfig
from tfhub_transfer.data.tables import Examples, load_labelled, read_table
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.jobs.compare import ModeResult, recommendation
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.jobs.train import train
from tfhub_transfer.training.callbacks import EarlyStopping
from tfhub_transfer.training.loop import training_batches
from tfhub_transfer.training.lr_finder import ExponentialSweep, smooth, steepest, suggest, valley
from tfhub_transfer.training.weighting import class_weights, parse_class_weight


# -- the learning-rate finder ------------------------------------------------------------------------------
def test_sweep_rises_exponentially_from_start_to_end():
    sweep = ExponentialSweep(1e-6, 1.0, 7)
    values = [sweep.value(step) for step in range(7)]
    assert values[0] == pytest.approx(1e-6) and values[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(np.log10(values)), 1.0)  # one decade per step
    assert float(sweep(tf.constant(3))) == pytest.approx(1e-3, rel=1e-5)


def test_suggestions_on_a_synthetic_curve_with_a_known_steepest_point_and_minimum():
    lrs = np.logspace(-7, 1, 161)  # 20 steps per decade
    x = np.log10(lrs)
    # Falls fastest at 1e-3 (tanh's steepest point), bottoms out near 1e-1, then diverges.
    losses = 1.0 - 0.5 * np.tanh(2 * (x + 3)) + np.where(x > -1, 10 * (x + 1) ** 2, 0.0)
    assert lrs[steepest(lrs, losses)] == pytest.approx(1e-3, rel=0.13)
    # valley: halfway along the longest falling stretch (here from the start to the minimum), as fastai's
    lowest = int(np.argmin(losses))

    def halfway(run):  # fastai: start = end - run, then a third and a sixth of the run further
        return lowest - run + int(run / 3) + int(run / 3 / 2)

    assert valley(losses) == halfway(lowest + 1) and lrs[valley(losses)] < lrs[lowest]
    # a bump does not cut the falling stretch in two: it only drops out of it
    bumped = losses.copy()
    bumped[30] = bumped[10]
    assert valley(bumped) == halfway(lowest)


def test_smoothing_is_debiased_and_suggest_reads_the_descent_only():
    np.testing.assert_allclose(smooth([2.0] * 5), 2.0)  # no pull towards 0 at the start
    lrs = np.logspace(-6, 0, 60)
    losses = np.concatenate([np.linspace(1.0, 0.2, 40), np.linspace(0.2, 5.0, 20)])
    result = suggest(lrs, losses, stopped_early=True)
    assert result.steepest < lrs[40] and result.valley < lrs[40]  # never on the diverging tail
    assert result.suggestion == result.valley and "valley" in result.summary()
    assert result.plot_png()[:4] == b"\x89PNG"


def _weights_by_name(model):
    return {v.name: v.numpy().copy() for v in model.weights}


def test_lr_find_restores_weights_and_optimizer_and_keeps_frozen_groups_frozen(tiny_encoder, demo_data,
                                                                                monkeypatch, tmp_path):
    from tfhub_transfer.models.text_classifier import TextClassifier

    table = read_table(demo_data)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["negative", "positive"], mode="partial:1",
                                        seq_length=32)
    model.compile(learning_rate=1e-3)
    rng = np.random.default_rng(0)
    for slot in model.optimizer_variables():  # a state as after some training: a step count, moments
        slot.assign(np.full(slot.shape, 7) if slot.dtype.is_integer else rng.random(slot.shape))
    before, slots = _weights_by_name(model), [v.numpy().copy() for v in model.optimizer_variables()]
    frozen = {v.name for g in model.frozen_groups for v in model.layer_groups.variables[g]}
    assert frozen and model.frozen_groups == ("embeddings", "layer_0")
    seen = {}
    restore = model.set_weight_values

    def spy(values):  # the weights at the end of the sweep, just before they are put back
        seen.update(_weights_by_name(model))
        restore(values)

    monkeypatch.setattr(model, "set_weight_values", spy)
    result = model.lr_find(table.texts, table.labels, num_steps=15, batch_size=16, verbose=0,
                           plot_to=tmp_path / "lr.png")
    # during the sweep: frozen groups untouched, the rest trained
    assert all(np.array_equal(seen[name], before[name]) for name in frozen)
    moved = [name for name in before if name not in frozen and not np.array_equal(seen[name], before[name])]
    assert any("head" in name for name in moved) and any("layer_1" in name for name in moved)
    # afterwards: every weight and every optimizer slot as before, the same groups frozen
    after = _weights_by_name(model)
    assert all(np.array_equal(after[name], before[name]) for name in before)
    now = [v.numpy() for v in model.optimizer_variables()]
    assert len(now) == len(slots) and all(np.array_equal(a, b) for a, b in zip(now, slots))
    assert int(model.optimizer.iterations.numpy()) == 7 and model.frozen_groups == ("embeddings", "layer_0")
    # the curve: exponential rates from the start, at most num_steps of them, a suggestion inside
    rates = np.asarray(result.learning_rates)
    assert rates[0] == pytest.approx(1e-7) and 2 <= len(rates) <= 15
    np.testing.assert_allclose(np.diff(np.log(rates)), math.log(1e8) / 14, rtol=1e-6)
    assert 1e-7 <= result.suggestion <= 10 and (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


def test_lr_find_command_on_the_feature_cache(tiny_encoder, demo_data, tmp_path, capsys):
    from tfhub_transfer.cli.main import main

    out = tmp_path / "lr"
    with use_cache_dir(tmp_path / "cache"):
        code = main(["lr-find", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--mode", "freeze",
                     "--feature-cache", "--seq-length", "32", "--num-steps", "40", "--class-weight", "balanced",
                     "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0 and "suggested learning rate" in printed and "--lr" in printed
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    curve = pd.read_csv(out / "lr_find.csv")
    assert list(curve.columns) == ["step", "learning_rate", "loss", "smoothed_loss"]
    assert 2 <= len(curve) <= 40 and curve["learning_rate"].is_monotonic_increasing


# -- early stopping --------------------------------------------------------------------------------------
def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    model = tf_keras.Sequential([tf_keras.Input((1,)), tf_keras.layers.Dense(1)])
    stopper = EarlyStopping(2, "val_accuracy", "max")
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.65, 0.9]):
        model.weights[0].assign(np.full((1, 1), float(epoch)))
        stopper.on_epoch_end(epoch, {"val_accuracy": score})
        if model.stop_training:
            break
    assert epoch == 3 and stopper.best_epoch == 1 and stopper.stopped_epoch == 3
    stopper.on_train_end()
    assert model.weights[0].numpy().item() == 1.0


# -- class and sample weights ---------------------------------------------------------------------------
def test_class_weight_spellings_and_refusals():
    assert parse_class_weight("balanced") == "balanced"
    assert parse_class_weight("pos=3, neg=0.5") == {"pos": 3.0, "neg": 0.5}
    np.testing.assert_allclose(class_weights("balanced", np.array([0, 0, 0, 1]), 2), [4 / 6, 4 / 2])
    np.testing.assert_allclose(class_weights({"b": 2.0}, np.zeros(3, int), 3, ["a", "b", "c"]), [1, 2, 1])
    np.testing.assert_allclose(class_weights({1: 5}, np.zeros(3, int), 2, ["a", "b"]), [1, 5])
    for wrong in ("pos=x", "pos", "pos=-1"):
        with pytest.raises(ConfigError, match="--class-weight"):
            parse_class_weight(wrong)
    with pytest.raises(ConfigError, match="not a class"):
        class_weights({"maybe": 2.0}, np.zeros(3, int), 2, ["no", "yes"])
    with pytest.raises(ConfigError, match="--class-weight does not apply to --task regression"):
        check_options(TrainConfig.of(train="x", task="regression", class_weight="balanced"))
    with pytest.raises(ConfigError, match="--no-restore-best"):
        check_options(TrainConfig.of(train="x", early_stopping=2, restore_best=False))


def test_class_weights_change_the_loss_by_the_weights(tiny_encoder, demo_data):
    from tfhub_transfer.models.text_classifier import TextClassifier

    table = read_table(demo_data)
    texts, labels = table.texts[:24], table.labels[:24]
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["negative", "positive"], seq_length=32)
    model.compile()
    per_class = model.class_weight_vector({"positive": 4.0}, labels)
    assert per_class.tolist() == [1.0, 4.0]
    ids = np.asarray([model.label_names.index(y) for y in labels])
    weights = np.asarray([per_class[i] for i in ids], np.float32)
    weighted = model.evaluate(model.encode_examples(texts, labels, batch_size=24, sample_weight=weights),
                              verbose=0, return_dict=True)["loss"]
    plain = model.evaluate(texts, labels, batch_size=24, verbose=0, return_dict=True)["loss"]
    logits = model.predict(texts, verbose=0)
    cross_entropy = -tf.nn.log_softmax(logits).numpy()[np.arange(len(ids)), ids]
    assert weighted == pytest.approx(float(np.mean(weights * cross_entropy)), rel=1e-4)
    assert plain == pytest.approx(float(np.mean(cross_entropy)), rel=1e-4)
    assert abs(weighted - plain) > 0.05
    # the loop's stream carries column weights x balanced class weights, example by example
    column = np.full(len(ids), 2.0, np.float32)
    batches = training_batches(model, Examples(texts, ids, None, column), 8, 1, RuntimeConfig(), "balanced")
    counts = np.bincount(ids, minlength=2)
    for _, targets, batch_weights in batches:
        expected = 2.0 * len(ids) / (2 * counts[targets.numpy()])
        np.testing.assert_allclose(batch_weights.numpy(), expected, rtol=1e-6)
    # fit takes both with raw strings (weights ride through the input pipeline)
    head = model.get_layer("head").weights[0].numpy().copy()
    model.fit(texts, labels, batch_size=8, epochs=1, verbose=0, class_weight="balanced", sample_weight=weights)
    assert not np.array_equal(head, model.get_layer("head").weights[0].numpy())


def test_weight_column_is_read_with_its_rows_and_checked():
    frame = pd.DataFrame({"text": [f"review number {i}" for i in range(20)], "label": ["a", "b"] * 10,
                          "w": [float(i) for i in range(20)]})
    splits = load_labelled(frame, weight_column="w", validation_fraction=0.25)
    examples = splits.train_examples
    assert examples.weights.tolist() == [float(t.split()[-1]) for t in examples.texts]
    assert load_labelled(frame).train_examples.weights is None
    frame.loc[3, "w"] = -1.0
    with pytest.raises(DataError, match=r"'w' \(--weight-column\).*row 3"):
        load_labelled(frame, weight_column="w")


# -- a deliberately imbalanced split (1 : 10) -----------------------------------------------------------
@pytest.fixture(scope="module")
def imbalanced_runs(tiny_encoder, demo_data, tmp_path_factory):
    """A frozen tiny encoder (feature cache) on 150 positive : 15 negative reviews, validated on a balanced
    50 : 50: with and without balanced class weights (same seed and budget, the last epoch's weights),
    and once more without weights under early stopping (patience 3 of up to 25 epochs)."""
    frame = pd.read_csv(demo_data, sep="\t")
    positive = frame[frame.label == "positive"].sample(frac=1, random_state=0)
    negative = frame[frame.label == "negative"].sample(frac=1, random_state=0)
    data = dict(train=pd.concat([positive[:150], negative[:15]]), valid=pd.concat([positive[150:], negative[150:]]))
    out = tmp_path_factory.mktemp("imbalanced")
    base = TrainConfig.of(**data, encoder=str(tiny_encoder), mode="freeze", feature_cache=True, epochs=15,
                          learning_rate=2e-2, seq_length=32, batch_size=16, export=False, verbose=0, output_dir=out)
    settings = {"plain": dict(restore_best=False), "balanced": dict(restore_best=False, class_weight="balanced"),
                "early_stopping": dict(early_stopping=3, epochs=25)}
    with use_cache_dir(out / "cache"):
        return {name: train(base.replace(name=name, **options)) for name, options in settings.items()}


@pytest.mark.slow
def test_balanced_class_weights_raise_macro_f1_on_an_imbalanced_split(imbalanced_runs):
    plain, balanced = imbalanced_runs["plain"].metrics, imbalanced_runs["balanced"].metrics
    found = [run["confusion_matrix"][0][0] for run in (plain, balanced)]  # rare-class reviews recognised
    assert found[1] >= found[0] + 10
    assert balanced["macro_f1"] > plain["macro_f1"] + 0.1


def test_early_stopping_stops_when_the_score_stalls_and_keeps_the_best_epoch(imbalanced_runs):
    run = imbalanced_runs["early_stopping"]
    curve = run.history["val_accuracy"]
    best = int(np.argmax(curve))  # the first best epoch: later ties are no improvement
    assert len(curve) < 25 and len(curve) - 1 - best == 3  # stopped 3 epochs without a better score
    assert run.metrics["accuracy"] == pytest.approx(curve[best])  # and ended with that epoch's weights


# -- compare's recommendation ---------------------------------------------------------------------------
def _row(mode, score, seconds, test=None):
    return ModeResult(mode, score, score, 1, 0.1, seconds, [score], test_score=test)


def test_recommendation_names_the_best_the_best_per_second_and_noise():
    rows = [_row("freeze", 0.795, 10.0), _row("gradual", 0.862, 100.0), _row("finetune", 0.867, 120.0)]
    advice = recommendation(rows)
    assert "Best validation score: **finetune** (0.8670" in advice
    assert "per training second: **freeze**" in advice and "7.2 points below finetune, 12.0× faster" in advice
    assert "Pick **gradual**: 0.5 points from finetune, within noise" in advice
    clear = recommendation([_row("freeze", 0.70, 10.0), _row("finetune", 0.90, 100.0)])
    assert "Pick **finetune**." in clear
    tested = recommendation([_row("freeze", 0.90, 10.0, test=0.80), _row("finetune", 0.80, 100.0, test=0.85)])
    assert "Best test score: **finetune** (0.8500" in tested
    assert recommendation([]) == ""
