"""Resolving encoder names, paths and handles; failing fast and clearly offline."""

import time

import pytest
from shared_encoders import shared_tiny_bert

from tfhub_transfer.encoders.resolve import catalogue, resolve_encoder
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.models.text_classifier import TextClassifier


def test_catalogue_names_resolve_to_encoder_and_preprocessor():
    spec = resolve_encoder("small_bert/bert_en_uncased_L-4_H-256_A-4")
    assert spec.encoder.endswith("small_bert/bert_en_uncased_L-4_H-256_A-4/2")
    assert "bert_en_uncased_preprocess" in spec.preprocessor
    names = catalogue()
    assert {"bert_en_uncased_L-12_H-768_A-12", "albert_en_base", "electra_small",
            "experts/bert/pubmed"} <= set(names)
    assert sum(n.startswith("small_bert/") for n in names) == 24


def test_uncached_remote_handle_fails_at_once_naming_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hubcache"))
    monkeypatch.setattr("tfhub_transfer.cache._network_reaches", lambda *a, **k: False)
    start = time.monotonic()
    with pytest.raises(EncoderError) as err:
        TextClassifier.from_encoder("bert_en_uncased_L-12_H-768_A-12", num_classes=2)
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "hubcache" in message and "local directory" in message
    assert "bert_en_uncased_preprocess" in message or "bert_en_uncased_L-12" in message


def test_really_unreachable_host_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "c"))
    start = time.monotonic()
    with pytest.raises(EncoderError, match="cannot be reached|TF Hub cache"):
        TextClassifier.from_encoder("https://tfhub.invalid/some/encoder/1", preprocessor="https://tfhub.invalid/p/1")
    assert time.monotonic() - start < 15


def test_unknown_name_and_bare_encoder(tiny_encoder, tmp_path):
    with pytest.raises(EncoderError, match="unknown encoder 'no-such-encoder'"):
        resolve_encoder("no-such-encoder")
    with pytest.raises(EncoderError, match="--preprocessor"):
        resolve_encoder(str(tiny_encoder / "encoder"))
    spec = resolve_encoder(str(tiny_encoder / "encoder"), preprocessor=str(tiny_encoder / "preprocessor"))
    assert spec.preprocessor.endswith("preprocessor")
    with pytest.raises(EncoderError, match="not a SavedModel directory"):
        TextClassifier.from_encoder(str(tiny_encoder / "encoder"), preprocessor=str(tmp_path))


def test_vocabulary_mismatch_is_reported(tiny_encoder, tmp_path):
    other = shared_tiny_bert(texts=["completely different words here"])
    with pytest.raises(EncoderError, match="do not belong together"):
        TextClassifier.from_encoder(str(tiny_encoder), preprocessor=str(other / "preprocessor"))


def test_seq_length_above_position_embeddings(tiny_encoder):
    with pytest.raises(EncoderError, match="seq_length 600 is above.*512 position"):
        TextClassifier.from_encoder(str(tiny_encoder), seq_length=600)
