"""The package's encoders honour the TF Hub text-encoder and preprocessor interfaces."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401


@pytest.fixture(scope="module")
def preprocessor(tiny_encoder):
    return hub.load(str(tiny_encoder / "preprocessor"))


def test_preprocessor_default_call_gives_encoder_inputs_at_128(preprocessor):
    out = preprocessor(tf.constant(["The film was wonderful.", "awful"]))
    assert set(out) == {"input_word_ids", "input_mask", "input_type_ids"}
    for value in out.values():
        assert value.dtype == tf.int32 and value.shape == (2, 128)
    special = {k: int(v) for k, v in preprocessor.tokenize.get_special_tokens_dict().items()}
    assert out["input_word_ids"][0, 0] == special["start_of_sequence_id"]
    length = int(out["input_mask"][1].numpy().sum())
    assert out["input_word_ids"][1, length - 1] == special["end_of_segment_id"]
    assert set(special) >= {"vocab_size", "padding_id", "mask_id", "start_of_sequence_id"}


def test_tokenize_returns_words_by_wordpieces(preprocessor):
    tokens = preprocessor.tokenize(tf.constant(["the film zzq"]))
    assert isinstance(tokens, tf.RaggedTensor)
    assert tokens.shape.rank == 3
    assert tokens.bounding_shape()[1] == 3  # three words
    assert tokens[0, 2].shape[0] > 1  # an unseen word splits into pieces


def test_bert_pack_inputs_two_segments_and_seq_length(preprocessor):
    a = preprocessor.tokenize(tf.constant(["the film was great"]))
    b = preprocessor.tokenize(tf.constant(["awful"]))
    packed = preprocessor.bert_pack_inputs([a, b], seq_length=9)
    assert packed["input_word_ids"].shape == (1, 9)
    types = packed["input_type_ids"].numpy()[0]
    mask = packed["input_mask"].numpy()[0]
    assert types[0] == 0 and types[int(mask.sum()) - 1] == 1
    truncated = preprocessor.bert_pack_inputs([a, b], seq_length=5)
    assert truncated["input_mask"].numpy().sum() == 5


def test_encoder_outputs_and_dynamic_sequence_length(tiny_encoder, preprocessor):
    layer = hub.KerasLayer(str(tiny_encoder / "encoder"))
    for seq in (8, 21):
        inputs = preprocessor.bert_pack_inputs(
            [preprocessor.tokenize(tf.constant(["the film", "a b c"]))], seq_length=seq
        )
        out = layer(inputs)
        assert out["sequence_output"].shape == (2, seq, 32)
        assert out["pooled_output"].shape == (2, 32)
        assert len(out["encoder_outputs"]) == 2
        assert out["embedding_output"].shape == (2, seq, 32)
        np.testing.assert_array_equal(out["default"], out["pooled_output"])
        np.testing.assert_array_equal(out["encoder_outputs"][-1], out["sequence_output"])


def test_trainable_layer_fine_tunes_encoder_variables_only(tiny_encoder, preprocessor):
    layer = hub.KerasLayer(str(tiny_encoder / "encoder"), trainable=True)
    names = [w.name for w in layer.trainable_weights]
    assert not any("mlm" in n for n in names), "MLM head variables leaked into the encoder"
    inputs = preprocessor(tf.constant(["the film was great"]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs, training=True)["pooled_output"] ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    missing = [n for n, g in zip(names, grads) if g is None]
    # Only the pooler-unrelated type embedding row can be untouched; all variables get a gradient.
    assert not missing


def test_mlm_subobject_gives_logits_tied_to_word_embeddings(tiny_encoder, preprocessor):
    loaded = hub.load(str(tiny_encoder / "encoder"))
    mlm = hub.KerasLayer(loaded.mlm, trainable=True)
    inputs = dict(preprocessor(tf.constant(["the film was great", "bad"])))
    inputs["masked_lm_positions"] = tf.constant([[1, 2], [1, 1]])
    logits = mlm(inputs)["mlm_logits"]
    vocab = int(loaded.mlm.variables[0].shape[0])
    assert logits.shape == (2, 2, vocab)
    embedding = [v for v in loaded.variables if "word_embeddings" in v.name][0]
    mlm_vars = {id(v) for v in loaded.mlm.trainable_variables}
    assert id(embedding) in mlm_vars, "MLM output layer must share the word-embedding variable"
    assert any("mlm" in v.name for v in loaded.mlm.trainable_variables)


def test_training_flag_switches_dropout(tiny_encoder, preprocessor):
    loaded = hub.load(str(tiny_encoder / "encoder"))
    inputs = preprocessor(tf.constant(["the film was great"]))
    a = loaded(inputs, training=False)["sequence_output"]
    b = loaded(inputs, training=False)["sequence_output"]
    c = loaded(inputs, training=True)["sequence_output"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_serving_default_signature_gives_the_default_call_values(tiny_encoder, preprocessor):
    """As on published Hub encoders: `signature="serving_default"` with an `output_key` works."""
    inputs = preprocessor.bert_pack_inputs([preprocessor.tokenize(tf.constant(["the film", "a b c"]))],
                                           seq_length=16)
    default = hub.KerasLayer(str(tiny_encoder / "encoder"))(inputs)
    served = hub.KerasLayer(str(tiny_encoder / "encoder"), signature="serving_default", output_key="pooled_output")
    np.testing.assert_allclose(served(dict(inputs)), default["pooled_output"], atol=1e-6)
    outputs = served.resolved_object.signatures["serving_default"](**inputs)
    assert set(outputs) == {"pooled_output", "default", "cls_pooled_output", "sequence_output", "embedding_output",
                            "encoder_outputs_0", "encoder_outputs_1"}
    np.testing.assert_allclose(outputs["encoder_outputs_1"], default["encoder_outputs"][1], atol=1e-6)
    np.testing.assert_array_equal(default["cls_pooled_output"], default["pooled_output"])  # a BERT pooler


def test_encoder_carries_model_garden_vocab_file_and_do_lower_case(tiny_encoder):
    loaded = hub.load(str(tiny_encoder / "encoder"))
    vocab = tf.io.read_file(loaded.vocab_file.asset_path).numpy().decode("utf-8")
    assert vocab == (tiny_encoder / "vocab.txt").read_text(encoding="utf-8")
    assert loaded.do_lower_case.dtype == tf.bool and bool(loaded.do_lower_case.numpy())
    assert not any("do_lower_case" in w.name for w in hub.KerasLayer(loaded, trainable=True).weights)
