"""The BiLSTM head (`--head bilstm`): a BiLSTM over the token states, mean- and max-pooled (tiny fixture)."""

import numpy as np
import pytest
import tensorflow as tf

from tfhub_transfer.config import OptimizationConfig, RuntimeConfig, TrainConfig
from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.export.serving import check_exportable
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.jobs.train import build_task_model, cached_head, train
from tfhub_transfer.models.saving import load
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.training.feature_cache import _write_rows, cached_sequence_dataset, read_manifest
from tfhub_transfer.training.loop import fit_task


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
@pytest.mark.integration  # two longer end-to-end runs: make integration (CI runs it); make test keeps 12 min
@pytest.mark.parametrize("mix, layers_kept", [("last", 1), ("scalar_mix", 3)])
def test_bilstm_head_trained_on_the_token_cache_is_the_full_models_and_the_exports(
        tiny_encoder, demo_data, tmp_path, cache_root, mix, layers_kept):
    config = TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="freeze", feature_cache=True,
                            head="bilstm", layer_mix=mix, seq_length=32, validation_fraction=0.25)
    splits = load_labelled(demo_data, None, validation_fraction=0.25)
    model = build_task_model(config, splits)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").weights]
    head, train_examples, valid_examples = cached_head(model, splits, verbose=0)
    assert read_manifest(train_examples.path)["layers"] == layers_kept  # only the layers the mix reads
    start = model.get_layer("bilstm_pooling").get_weights()
    fit_task(head, train_examples, valid_examples, OptimizationConfig(epochs=4, batch_size=16, learning_rate=3e-3),
             RuntimeConfig(verbose=0, tensorboard=False), None)
    cached = head.outputs_on(head.evaluation_dataset(valid_examples, 16))
    head.copy_weights_to(model)
    trained = model.get_layer("bilstm_pooling").get_weights()
    assert all(not np.allclose(a, b) for a, b in zip(start, trained))  # the BiLSTM was copied back
    texts = splits.valid.texts
    np.testing.assert_allclose(model.predict(texts, verbose=0), cached, atol=2e-3)  # the cache is float16
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(encoder_before, model.get_layer("encoder").weights))
    served = ExportedClassifier(model.export(tmp_path, "bilstm"))
    probabilities = np.exp(cached) / np.exp(cached).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(served.predict(texts)["probabilities"], probabilities, atol=1e-3)


@pytest.mark.integration  # a longer end-to-end run: make integration (CI runs it); make test keeps 12 min
@pytest.mark.slow
def test_bilstm_head_learns_through_train_and_reloads(tiny_encoder, demo_data, tmp_path, cache_root):
    result = train(TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="freeze", feature_cache=True,
                                  head="bilstm", epochs=6, learning_rate=3e-3, batch_size=16, seq_length=32,
                                  validation_fraction=0.25, output_dir=tmp_path, export=False, verbose=0,
                                  tensorboard=False))
    assert result.metrics["accuracy"] >= 0.7  # two balanced classes, 100 validation rows: chance is 0.5
    assert result.model.config.head == "bilstm" and result.model.config.pooling is None
    probes = ["The film was wonderful.", "The staff were rude and I regret it."]
    reloaded = load(result.run_dir)
    np.testing.assert_allclose(reloaded.predict(probes, verbose=0), result.model.predict(probes, verbose=0),
                               atol=1e-5)


def test_bilstm_head_refuses_what_it_cannot_do(tiny_encoder):
    for options, flag in (({"pooling": "max"}, "--pooling"), ({"packing": 64}, "--pack"),
                          ({"mode": "contrastive"}, "--mode contrastive")):
        with pytest.raises(ConfigError, match=f"{flag} does not apply to --head bilstm"):
            TextClassifier.from_encoder(str(tiny_encoder), 2, head="bilstm", **options)
    with pytest.raises(ConfigError, match=r"head='gru' \(--head\): unknown head"):
        TextClassifier.from_encoder(str(tiny_encoder), 2, head="gru")
    with pytest.raises(ConfigError, match="--head"):
        check_options(TrainConfig.of(train="x.tsv", word_vectors="v.txt", head="bilstm"))
    for flat, flag in (({"export_format": "tflite"}, "--export-format tflite takes dense heads"),
                       ({"feature_cache": True, "mode": "freeze", "standardize_features": False},
                        "--no-standardize-features is about the linear head")):
        with pytest.raises(ConfigError, match=flag):
            check_options(TrainConfig.of(train="x.tsv", head="bilstm", **flat))
    model = TextClassifier.from_encoder(str(tiny_encoder), 2, head="bilstm")
    for format in ("tflite", "onnx"):
        with pytest.raises(ConfigError, match=f"--format {format} takes dense heads"):
            check_exportable(model, format)


@pytest.mark.parametrize("shuffle", [False, True])
def test_sequence_cache_rows_keep_their_targets_and_lengths(tmp_path, shuffle):
    lengths = [3, 1, 4, 2, 5]
    features = np.zeros((5, 6, 2, 3), np.float32)
    for row, count in enumerate(lengths):
        features[row, :count] = row + 1  # each row's tokens carry its number; padding stays 0
    batches = [(tf.constant(features[:3]), tf.constant(lengths[:3])),
               (tf.constant(features[3:]), tf.constant(lengths[3:]))]
    progress = type("Quiet", (), {"update": lambda self, n: None})()
    _write_rows(tmp_path / "seq", iter(batches), progress, 2, {"level": "sequence"}, "examples")
    targets = np.arange(5) * 10
    dataset = cached_sequence_dataset(tmp_path / "seq", targets, batch_size=2, shuffle=shuffle, seed=3)
    epochs = []
    for _ in range(2):
        seen = []
        for x, y in dataset:
            x, mask = x["token_features"], x["token_mask"]
            for tokens, keep, target in zip(x.numpy(), mask.numpy(), y.numpy()):
                row = target // 10
                assert keep.sum() == lengths[row] and np.all(tokens[keep] == row + 1)
                assert np.all(tokens[~keep] == 0)
                seen.append(int(row))
        assert sorted(seen) == list(range(5))
        epochs.append(seen)
    assert (epochs[0] != epochs[1] or epochs[0] != sorted(epochs[0])) == shuffle
