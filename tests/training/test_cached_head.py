"""The head on the feature cache at its best: standardised features folded back into the head, `--tune-head`."""

import numpy as np
import pytest

from tfhub_transfer.config import OptimizationConfig, RuntimeConfig, TrainConfig
from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import build_task_model, cached_head, train
from tfhub_transfer.training.loop import fit_task


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_standardisation_folds_into_the_head_of_the_served_model(tiny_encoder, demo_data, tmp_path, cache_root):
    config = TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="freeze", feature_cache=True,
                            layer_mix="scalar_mix", seq_length=32, dropout=0.0, validation_fraction=0.25)
    splits = load_labelled(demo_data, None, validation_fraction=0.25)
    model = build_task_model(config, splits)
    head, train_examples, valid_examples = cached_head(model, splits, verbose=0)
    assert np.abs(head.scaling.mean).max() > 0.1 and np.abs(np.log(head.scaling.scale)).max() > 0.5  # not a no-op
    fit_task(head, train_examples, valid_examples, OptimizationConfig(epochs=3, batch_size=16),
             RuntimeConfig(verbose=0, tensorboard=False), None)
    cached = head.outputs_on(head.evaluation_dataset(valid_examples, 16))
    head.copy_weights_to(model)
    assert not np.allclose(model.get_layer("head").get_weights()[0], head.get_layer("head").get_weights()[0])
    texts = splits.valid.texts
    np.testing.assert_allclose(model.predict(texts, verbose=0), cached, atol=2e-3)  # the cache is float16
    served = ExportedClassifier(model.export(tmp_path, "folded"))
    probabilities = np.exp(cached) / np.exp(cached).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(served.predict(texts)["probabilities"], probabilities, atol=1e-3)


def test_tune_head_sweeps_and_reports_its_choice(tiny_encoder, demo_data, tmp_path, cache_root, capsys, monkeypatch):
    import tfhub_transfer.jobs.cached_training as cached_training

    monkeypatch.setattr(cached_training, "TUNING_LEARNING_RATES", (1e-3, 1e-2))  # a smaller grid: 4 trials
    monkeypatch.setattr(cached_training, "TUNING_L2", (0.0, 1e-2))
    result = train(TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="freeze", feature_cache=True,
                                  tune_head=True, epochs=2, batch_size=16, seq_length=32, validation_fraction=0.25,
                                  output_dir=tmp_path, export=False, verbose=1, tensorboard=False))
    tuning = result.metrics["head_tuning"]
    trials = tuning["trials"]
    assert {(t["head_learning_rate"], t["l2"]) for t in trials} == {
        (rate, l2) for rate in (1e-3, 1e-2) for l2 in (0.0, 1e-2)}
    best = max(trials, key=lambda t: t["score"])
    chosen = tuning["chosen"]
    assert next(t for t in trials if (t["head_learning_rate"], t["l2"]) == (chosen["head_learning_rate"],
                                                                               chosen["l2"]))["score"] == best["score"]
    assert result.metrics["accuracy"] == pytest.approx(best["score"], abs=1e-6)  # the chosen head is the one kept
    printed = capsys.readouterr().out
    assert f"tune-head: chose lr {chosen['head_learning_rate']:g}, l2 {chosen['l2']:g}" in printed


def test_cached_head_default_budget_trains_longer_at_a_lower_rate_unless_told_otherwise():
    from tfhub_transfer.config import CACHED_HEAD_EPOCHS, CACHED_HEAD_LEARNING_RATE, CACHED_HEAD_PATIENCE
    from tfhub_transfer.jobs.cached_training import cached_optimization

    def options(**given):
        return cached_optimization(TrainConfig.of(train="t.tsv", mode="freeze", feature_cache=True, **given))

    default = options()
    assert (default.epochs, default.early_stopping) == (CACHED_HEAD_EPOCHS, CACHED_HEAD_PATIENCE)
    assert default.head_learning_rate == CACHED_HEAD_LEARNING_RATE and default.learning_rate is None
    assert options(head_learning_rate=5e-3).head_learning_rate == 5e-3
    assert options(learning_rate=5e-3).head_learning_rate is None  # in freeze mode --lr is the head's rate
    assert options(epochs=4).head_learning_rate is None and options(epochs=4).epochs == 4  # the user's budget
    bilstm = options(head="bilstm")  # epochs of minutes: the ordinary budget
    assert (bilstm.epochs, bilstm.early_stopping, bilstm.head_learning_rate) == ("auto", 0, None)
