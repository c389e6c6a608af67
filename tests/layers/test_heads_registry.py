"""Heads as layers (layers.heads): registered names, and a head layer of your own on the tiny encoder."""

import numpy as np
import pytest
import tf_keras

from tfhub_transfer import load
from tfhub_transfer.config import HEADS
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.layers.heads import BiLSTMHead, ClassificationHead, head_class, head_names
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.models.token_classifier import TokenClassifier

TEXTS = ["a great film", "a dull film", "great fun", "dull and slow", "wonderful acting", "boring plot"] * 4
LABELS = ["pos", "neg", "pos", "neg", "pos", "neg"] * 4


@tf_keras.utils.register_keras_serializable(package="test_heads")
class TwoLayerHead(tf_keras.layers.Layer):
    """A head of one's own: pooled features -> a tanh hidden layer -> logits."""

    def __init__(self, num_classes: int, hidden: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.hidden_units = num_classes, hidden
        self.hidden = tf_keras.layers.Dense(hidden, activation="tanh")
        self.logits = tf_keras.layers.Dense(num_classes)

    def call(self, features):
        return self.logits(self.hidden(features))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "hidden": self.hidden_units}


def test_the_registry_holds_the_cli_heads_one_class_each():
    assert set(head_names()) == set(HEADS)
    assert head_class("dense") is ClassificationHead and head_class("bilstm") is BiLSTMHead
    assert not ClassificationHead.reads_tokens and BiLSTMHead.reads_tokens


def test_an_unknown_head_name_is_one_error_naming_head_and_the_choices(tiny_encoder):
    for build in (lambda: TextClassifier.from_encoder(str(tiny_encoder), 2, head="gru"),
                  lambda: TokenClassifier.from_encoder(str(tiny_encoder), ["O", "B-X"], head="gru")):
        with pytest.raises(ConfigError, match=r"head='gru' .*unknown head.*\['dense', 'bilstm'\]"):
            build()


def test_a_custom_head_layer_trains_predicts_and_round_trips(tiny_encoder, tmp_path):
    head = TwoLayerHead(2, name="my_head")
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], head=head, seq_length=16)
    assert model.get_layer("my_head") is head  # the instance given is the one in the model
    assert model.config.head["config"]["hidden"] == 8  # stored as its Keras config
    before = [w.copy() for w in head.get_weights()]
    model.compile(learning_rate=1e-2)
    model.fit(TEXTS, LABELS, epochs=2, batch_size=8, verbose=0)
    assert any(not np.allclose(a, b) for a, b in zip(before, head.get_weights())), "the head did not train"
    scores = model.predict(TEXTS[:4], verbose=0)
    assert scores.shape == (4, 2)

    rebuilt = TextClassifier.from_config(model.get_config())
    assert isinstance(rebuilt.get_layer("my_head"), TwoLayerHead)
    assert len(rebuilt.weights) == len(model.weights)

    model.save(tmp_path / "saved")
    reloaded = load(tmp_path / "saved")
    assert isinstance(reloaded.get_layer("my_head"), TwoLayerHead)
    np.testing.assert_allclose(reloaded.predict(TEXTS[:4], verbose=0), scores, atol=1e-5)


def test_a_custom_head_refuses_the_contrastive_head_fit(tiny_encoder):
    with pytest.raises(ConfigError, match="head=<a layer> does not apply to mode='contrastive'"):
        TextClassifier.from_encoder(str(tiny_encoder), 2, head=TwoLayerHead(2), mode="contrastive")


@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_a_custom_tagging_head_maps_each_word(tiny_encoder, tmp_path):
    head = TwoLayerHead(3, name="tagger_head")
    model = TokenClassifier.from_encoder(str(tiny_encoder), ["O", "B-X", "I-X"], head=head, seq_length=16)
    sentences = [["a", "great", "film"], ["dull"]]
    logits = model.outputs_on(model.evaluation_dataset(model._sentences(sentences), 2))
    assert [row.shape for row in logits] == [(3, 3), (1, 3)]
    model.save(tmp_path / "tagger")
    reloaded = load(tmp_path / "tagger")
    again = reloaded.outputs_on(reloaded.evaluation_dataset(reloaded._sentences(sentences), 2))
    for a, b in zip(logits, again):
        np.testing.assert_allclose(a, b, atol=1e-5)
