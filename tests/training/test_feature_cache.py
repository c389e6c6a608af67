"""Encode once: the feature cache's key, streaming, and equality with training without it."""

import json

import numpy as np
import pytest
import tensorflow_hub as hub
from shared_encoders import shared_tiny_bert

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import train
from tfhub_transfer.preprocessing.text import TextPreprocessor
from tfhub_transfer.training.feature_cache import (
    FeatureSpec,
    build_feature_cache,
    cache_key,
    cached_dataset,
    read_manifest,
)

TEXTS = ["the film was wonderful", "the plot was awful", "I loved the food"]


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "features"


def test_key_changes_with_inputs_encoder_and_feature_choice(tiny_encoder, tmp_path):

    spec = resolve_encoder(str(tiny_encoder))
    base = cache_key(spec, FeatureSpec(), TEXTS)
    assert cache_key(spec, FeatureSpec(), list(TEXTS)) == base
    assert cache_key(spec, FeatureSpec(), TEXTS[:2] + ["the plot was awful!"]) != base
    assert cache_key(spec, FeatureSpec(pooling="first"), TEXTS) != base
    assert cache_key(spec, FeatureSpec(seq_length=64), TEXTS) != base
    assert cache_key(spec, FeatureSpec(), TEXTS, texts_b=TEXTS) != base
    other = resolve_encoder(str(shared_tiny_bert(seed=5)))
    assert cache_key(other, FeatureSpec(), TEXTS) != base  # same architecture, other weights
    with pytest.raises(ValueError, match="max pooling"):
        FeatureSpec(pooling="max")


def test_cache_holds_per_layer_pooled_features_and_is_reused(tiny_encoder, cache_root):
    spec = resolve_encoder(str(tiny_encoder))
    pre = TextPreprocessor(spec.preprocessor)
    layer = hub.KerasLayer(spec.encoder)
    texts = TEXTS * 50
    path = build_feature_cache(layer, pre, spec, FeatureSpec(dtype="float32"), texts, shard_size=64,
                               verbose=0)
    manifest = read_manifest(path)
    assert manifest["examples"] == 150 and manifest["shards"] == 3 and manifest["layers"] == 3
    inputs = pre.encode(TEXTS[:1])
    out = layer(inputs)
    expected = out["sequence_output"].numpy()[0].mean(axis=0)  # mean over real tokens (no padding)
    features, _ = next(iter(cached_dataset(path, np.zeros(150, np.int32), batch_size=4)))
    np.testing.assert_allclose(features.numpy()[0, -1], expected, atol=1e-5)
    stamp = (path / "manifest.json").stat().st_mtime_ns
    again = build_feature_cache(layer, pre, spec, FeatureSpec(dtype="float32"), texts, verbose=0)
    assert again == path and (path / "manifest.json").stat().st_mtime_ns == stamp


@pytest.mark.slow
def fake_cache(path, shard_sizes, layers=2, hidden=3):
    """Shards whose every feature is its row number, with the manifest the reader needs."""
    path.mkdir(parents=True)
    start = 0
    for index, size in enumerate(shard_sizes):
        rows = np.arange(start, start + size, dtype=np.float16)
        np.save(path / f"shard_{index:05d}.npy", np.broadcast_to(rows[:, None, None], (size, layers, hidden)))
        start += size
    (path / "manifest.json").write_text(json.dumps({"examples": start, "layers": layers, "hidden": hidden}))
    return path


@pytest.mark.parametrize("shuffle", [False, True])
def test_cached_batches_are_whole_and_keep_each_row_with_its_target(tmp_path, shuffle):
    path = fake_cache(tmp_path / "cache", [5, 7, 4])  # shard ends fall inside batches
    targets = np.arange(16) * 10
    dataset = cached_dataset(path, targets, batch_size=3, shuffle=shuffle, seed=1)
    epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
    for batches in epochs:
        assert [len(y) for _, y in batches] == [3] * 5 + [1]
        rows = np.concatenate([x[:, 0, 0] for x, _ in batches]).astype(int)
        assert sorted(rows) == list(range(16))  # every row once per epoch
        assert np.all(np.concatenate([x for x, _ in batches]) == rows[:, None, None])
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), rows * 10)
    orders = [np.concatenate([y for _, y in batches]).tolist() for batches in epochs]
    assert (orders[0] != orders[1]) == shuffle and (orders[0] == sorted(orders[0])) != shuffle


def test_cached_training_matches_uncached_and_exports(tiny_encoder, demo_data, tmp_path, cache_root):
    common = dict(train=demo_data, encoder=str(tiny_encoder), mode="freeze", layer_mix="scalar_mix",
                  pooling="mean", dropout=0.0, epochs=2, batch_size=16, learning_rate=1e-2, shuffle=False,
                  bucket=False, output_dir=tmp_path, verbose=0, validation_fraction=0.25, seed=3)
    cached = train(TrainConfig.of(**common, feature_cache=True, standardize_features=False, name="cached"))
    plain = train(TrainConfig.of(**common, feature_cache=False, name="plain"))
    assert cache_root.exists() and any(cache_root.iterdir())
    probes = ["The film was wonderful.", "The staff were rude and I regret it.", "I found the plot tedious."]
    served_cached = ExportedClassifier(cached.export_path).predict(probes)["probabilities"]
    served_plain = ExportedClassifier(plain.export_path).predict(probes)["probabilities"]
    np.testing.assert_allclose(served_cached, served_plain, atol=2e-4)
    assert cached.metrics["accuracy"] == pytest.approx(plain.metrics["accuracy"], abs=0.03)
    mix_cached = cached.model.get_layer("layer_mix").get_weights()
    mix_plain = plain.model.get_layer("layer_mix").get_weights()
    np.testing.assert_allclose(mix_cached[0], mix_plain[0], atol=5e-3)  # float16 cache
    assert not np.allclose(mix_cached[0], 0.0)
