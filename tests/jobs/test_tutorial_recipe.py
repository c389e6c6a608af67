"""TensorFlow's "Classify text with BERT" recipe, run unchanged on the package's encoders.

The tutorial's model is preprocessor -> `hub.KerasLayer(encoder, trainable=True)["pooled_output"]`
-> Dropout(0.1) -> Dense. A user who swaps a published BERT handle for ours must get a model that
learns: converted sentence-transformers encoders (the default one) therefore give the sentence
embedding they were trained for (the masked mean) as `pooled_output`, not their untrained pooler.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401
import tf_keras
from shared_encoders import shared_tiny_bert

from tfhub_transfer.data.tables import read_table

SEQ_LENGTH = 32


@pytest.fixture(scope="module")
def mean_pooled_encoder():
    """The tiny fixture written the way converted sentence-transformers checkpoints are."""
    return shared_tiny_bert(pooled_output="mean")


@pytest.fixture(scope="module")
def reviews(demo_data):
    table = read_table(demo_data)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(table.texts))
    texts = np.array(table.texts, dtype=object)[order]
    labels = np.array([label == "positive" for label in table.labels], np.float32)[order]
    split = int(0.75 * len(texts))
    return (texts[:split], labels[:split]), (texts[split:], labels[split:])


def tutorial_model(encoder_dir, seed: int = 0) -> tf_keras.Model:
    """The tutorial's `build_classifier_model`, with its documented seq_length variant (tokenize, then
    bert_pack_inputs) to keep the test short."""
    tf_keras.utils.set_random_seed(seed)
    preprocessor = hub.load(str(encoder_dir / "preprocessor"))
    text_input = tf_keras.layers.Input(shape=(), dtype=tf.string, name="text")
    tokenize = hub.KerasLayer(preprocessor.tokenize, name="tokenize")
    pack = hub.KerasLayer(preprocessor.bert_pack_inputs, arguments=dict(seq_length=SEQ_LENGTH), name="pack")
    encoder_inputs = pack([tokenize(text_input)])
    encoder = hub.KerasLayer(str(encoder_dir / "encoder"), trainable=True, name="BERT_encoder")
    net = encoder(encoder_inputs)["pooled_output"]
    net = tf_keras.layers.Dropout(0.1)(net)
    net = tf_keras.layers.Dense(1, activation=None, name="classifier")(net)
    return tf_keras.Model(text_input, net)


def fit_one_epoch(model, train, valid, learning_rate: float, batch_size: int = 16) -> float:
    """One epoch as the tutorial trains (binary cross-entropy on logits, Adam with weight decay);
    returns the validation accuracy."""
    model.compile(optimizer=tf_keras.optimizers.AdamW(learning_rate, weight_decay=0.01),
                  loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[tf_keras.metrics.BinaryAccuracy()])
    texts, labels = train
    model.fit(tf.constant(list(texts)), labels, batch_size=batch_size, epochs=1, shuffle=True, verbose=0)
    return model.evaluate(tf.constant(list(valid[0])), valid[1], verbose=0)[1]


def test_mean_pooled_encoder_outputs(mean_pooled_encoder):
    """`pooled_output` is sentence-transformers' masked mean; the [CLS] pooler stays as `cls_pooled_output`."""
    preprocessor = hub.load(str(mean_pooled_encoder / "preprocessor"))
    inputs = preprocessor.bert_pack_inputs(
        [preprocessor.tokenize(tf.constant(["the film was great", "awful"]))], seq_length=SEQ_LENGTH)
    layer = hub.KerasLayer(str(mean_pooled_encoder / "encoder"))
    out = layer(inputs)
    sequence, mask = out["sequence_output"].numpy(), inputs["input_mask"].numpy()[..., None]
    np.testing.assert_allclose(out["pooled_output"], (sequence * mask).sum(1) / mask.sum(1), atol=1e-5)
    np.testing.assert_array_equal(out["default"], out["pooled_output"])
    weights = {w.name.split("/")[-1]: w.numpy() for w in layer.weights if "pooler_transform" in w.name}
    pooler = np.tanh(sequence[:, 0] @ weights["kernel:0"] + weights["bias:0"])
    np.testing.assert_allclose(out["cls_pooled_output"], pooler, atol=1e-5)
    assert not np.allclose(out["cls_pooled_output"], out["pooled_output"], atol=1e-2)


def test_tutorial_model_learns_on_a_sentence_transformers_style_encoder(mean_pooled_encoder, reviews):
    model = tutorial_model(mean_pooled_encoder)
    before = [w.numpy().copy() for w in model.get_layer("BERT_encoder").trainable_weights]
    accuracy = fit_one_epoch(model, *reviews, learning_rate=3e-3, batch_size=8)
    assert accuracy > 0.75, f"validation accuracy {accuracy:.3f} after one epoch"
    after = model.get_layer("BERT_encoder").trainable_weights
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, after)), "the encoder was not fine-tuned"


@pytest.mark.integration
def test_tutorial_model_learns_on_the_default_encoder(default_encoder, reviews):
    """The issue's failure: the default encoder stayed at chance with its untrained pooler."""
    accuracy = fit_one_epoch(tutorial_model(default_encoder), *reviews, learning_rate=5e-5)
    assert accuracy > 0.75, f"validation accuracy {accuracy:.3f} after one epoch"
