"""Hugging Face checkpoint conversion: the numpy safetensors reader and weight mapping."""

import json
import struct

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401

from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint, sentence_transformers_pooling
from tfhub_transfer.encoders.build.safetensors_reader import read_safetensors
from tfhub_transfer.errors import EncoderError

REFERENCE = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"


def write_safetensors(path, tensors: dict[str, np.ndarray], bf16: set[str] = frozenset()) -> None:
    header, chunks, offset = {}, [], 0
    for name, array in tensors.items():
        if name in bf16:
            raw = (np.asarray(array, np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
            dtype = "BF16"
        else:
            raw, dtype = np.ascontiguousarray(array, np.float32).tobytes(), "F32"
        span = [offset, offset + len(raw)]
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": span}
        chunks.append(raw)
        offset += len(raw)
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


def test_safetensors_reader_round_trip_with_bf16(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)).astype(np.float32)
    b = np.array([1.0, -2.5, 0.15625], np.float32)  # exactly representable in bf16
    write_safetensors(tmp_path / "m.safetensors", {"a": a, "b": b}, bf16={"b"})
    out = read_safetensors(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(out["a"], a)
    np.testing.assert_array_equal(out["b"], b)


SMALL_VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world")


def fake_hf_checkpoint(path, hidden=8, layers=1, heads=2, vocab=SMALL_VOCAB):
    rng = np.random.default_rng(1)
    path.mkdir()
    inter = 16
    w = {
        "embeddings.word_embeddings.weight": rng.normal(size=(len(vocab), hidden)),
        "embeddings.position_embeddings.weight": rng.normal(size=(16, hidden)),
        "embeddings.token_type_embeddings.weight": rng.normal(size=(2, hidden)),
        "embeddings.LayerNorm.weight": np.ones(hidden), "embeddings.LayerNorm.bias": np.zeros(hidden),
        "pooler.dense.weight": rng.normal(size=(hidden, hidden)), "pooler.dense.bias": np.zeros(hidden),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            w[p + f"attention.self.{n}.weight"] = rng.normal(size=(hidden, hidden))
            w[p + f"attention.self.{n}.bias"] = rng.normal(size=hidden)
        w[p + "attention.output.dense.weight"] = rng.normal(size=(hidden, hidden))
        w[p + "attention.output.dense.bias"] = rng.normal(size=hidden)
        w[p + "attention.output.LayerNorm.weight"] = np.ones(hidden)
        w[p + "attention.output.LayerNorm.bias"] = np.zeros(hidden)
        w[p + "intermediate.dense.weight"] = rng.normal(size=(inter, hidden))
        w[p + "intermediate.dense.bias"] = np.zeros(inter)
        w[p + "output.dense.weight"] = rng.normal(size=(hidden, inter))
        w[p + "output.dense.bias"] = np.zeros(hidden)
        w[p + "output.LayerNorm.weight"] = np.ones(hidden)
        w[p + "output.LayerNorm.bias"] = np.zeros(hidden)
    w = {f"bert.{k}": v.astype(np.float32) for k, v in w.items()}  # a *ForMaskedLM-style prefix
    w["cls.predictions.bias"] = rng.normal(size=len(vocab)).astype(np.float32)
    w["cls.predictions.transform.dense.weight"] = rng.normal(size=(hidden, hidden)).astype(np.float32)
    w["cls.predictions.transform.dense.bias"] = np.zeros(hidden, np.float32)
    w["cls.predictions.transform.LayerNorm.weight"] = np.ones(hidden, np.float32)
    w["cls.predictions.transform.LayerNorm.bias"] = np.zeros(hidden, np.float32)
    write_safetensors(path / "model.safetensors", w)
    config = {"vocab_size": len(vocab), "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": heads, "intermediate_size": inter, "hidden_act": "gelu",
              "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12}
    (path / "config.json").write_text(json.dumps(config))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return w


def write_sentence_transformers_files(path, pooling: dict) -> None:
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (path / "1_Pooling").mkdir()
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 8, **pooling}))


def test_sentence_transformers_pooling_is_read_from_the_pooling_module(tmp_path):
    assert sentence_transformers_pooling(tmp_path) is None  # a plain BERT checkpoint: the [CLS] pooler
    write_sentence_transformers_files(tmp_path, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    assert sentence_transformers_pooling(tmp_path) == "first"
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(EncoderError, match="pooling_mode_mean_sqrt_len_tokens.*--pooled-output"):
        sentence_transformers_pooling(tmp_path)


def test_converter_maps_every_weight(tmp_path):
    """A sentence-transformers checkpoint (mean pooling): every tensor mapped, `pooled_output` the masked
    mean, BERT's pooler kept as `cls_pooled_output`, and the choice recorded."""
    weights = fake_hf_checkpoint(tmp_path / "hf")
    write_sentence_transformers_files(tmp_path / "hf", {"pooling_mode_mean_tokens": True})
    out = convert_hf_checkpoint(tmp_path / "hf", tmp_path / "tfhub")
    loaded = hub.load(str(out / "encoder"))
    by_name = {v.name: v.numpy() for v in loaded.mlm.variables}
    query = by_name["bert_encoder/transformer/layer_0/self_attention/query/kernel:0"]
    np.testing.assert_allclose(
        query.reshape(8, 8), weights["bert.encoder.layer.0.attention.self.query.weight"].T
    )
    np.testing.assert_allclose(by_name["mlm/output_bias:0"], weights["cls.predictions.bias"])
    np.testing.assert_allclose(
        by_name["bert_encoder/word_embeddings/embeddings:0"],
        weights["bert.embeddings.word_embeddings.weight"],
    )
    meta = json.loads((out / "tfhub_transfer.json").read_text())
    assert meta["mlm_head"] == "from checkpoint"
    assert meta["pooled_output"] == meta["config"]["pooled_output"] == "mean" and meta["pooling"] == "mean"
    inputs = {"input_word_ids": tf.constant([[2, 5, 6, 3, 0]]), "input_mask": tf.constant([[1, 1, 1, 1, 0]]),
              "input_type_ids": tf.zeros([1, 5], tf.int32)}
    outputs = loaded(inputs)
    np.testing.assert_allclose(outputs["pooled_output"], tf.reduce_mean(outputs["sequence_output"][:, :4], 1),
                               atol=1e-5)
    pooler = np.tanh(outputs["sequence_output"][:, 0].numpy() @ weights["bert.pooler.dense.weight"].T)
    np.testing.assert_allclose(outputs["cls_pooled_output"], pooler, atol=1e-5)


def test_converter_rejects_incomplete_directory(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match="model.safetensors"):
        convert_hf_checkpoint(tmp_path / "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.integration
def test_default_encoder_matches_pytorch_reference(default_encoder):
    """Converted all-MiniLM-L6-v2 vs vectors made by transformers/PyTorch (tools/make_minilm_reference.py)."""
    ref = json.loads(REFERENCE.read_text())
    pre = hub.load(str(default_encoder / "preprocessor"))
    encoder = hub.KerasLayer(str(default_encoder / "encoder"))
    inputs = pre(tf.constant(ref["sentences"]))
    for i, ids in enumerate(ref["input_ids"]):
        assert inputs["input_word_ids"][i, : len(ids)].numpy().tolist() == ids
        assert int(inputs["input_mask"][i].numpy().sum()) == len(ids)
    out = encoder(inputs)
    mask = tf.cast(inputs["input_mask"], tf.float32)[..., None]
    mean = tf.reduce_sum(out["sequence_output"] * mask, 1) / tf.reduce_sum(mask, 1)
    np.testing.assert_allclose(mean.numpy(), ref["mean_pooled"], atol=1e-4)
    # pooled_output is the sentence-transformers embedding; BERT's pooler is kept as cls_pooled_output.
    np.testing.assert_allclose(out["pooled_output"].numpy(), ref["mean_pooled"], atol=1e-4)
    np.testing.assert_allclose(out["cls_pooled_output"].numpy(), ref["pooler_output"], atol=1e-4)
    layer_cls = np.array(ref["layer_cls"])
    np.testing.assert_allclose(out["embedding_output"][:, 0].numpy(), layer_cls[0], atol=1e-4)
    for i, layer_out in enumerate(out["encoder_outputs"]):
        np.testing.assert_allclose(layer_out[:, 0].numpy(), layer_cls[i + 1], atol=1e-4)
