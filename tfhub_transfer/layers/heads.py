"""Task heads stacked on encoder features: a dense layer on pooled features, or a BiLSTM over the tokens first."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from tfhub_transfer.config import HEADS
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.layers.pooling import SequencePooling

BILSTM_UNITS = 128  # per direction


def check_head(head: str) -> None:
    if head not in HEADS:
        raise ConfigError(f"--head must be one of {HEADS}, not {head!r}")


class ClassificationHead(tf_keras.layers.Layer):
    """Dropout then a dense layer to one logit per class."""

    def __init__(self, num_classes: int, dropout: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout_rate = dropout
        self.dropout = tf_keras.layers.Dropout(dropout, seed=seed)
        self.logits = tf_keras.layers.Dense(
            num_classes,
            kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02, seed=seed),
            name="logits",
        )

    def call(self, features, training=None):
        return self.logits(self.dropout(features, training=training))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout_rate}


class RecurrentPooling(tf_keras.layers.Layer):
    """[batch, seq, hidden] token states -> [batch, 4 x units]: dropout, a BiLSTM over the real tokens, then the
    mean and the max of its outputs over them, side by side.

    The BERT paper's feature-based recipe (section 5.3) reads frozen token states with a BiLSTM: it sees word
    order and negation, which a mean of frozen states washes out, and it trains on a frozen encoder's cache.
    """

    def __init__(self, units: int = BILSTM_UNITS, dropout: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout_rate = units, dropout
        self.dropout = tf_keras.layers.Dropout(dropout, seed=seed)
        self.bilstm = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(units, return_sequences=True), name="bilstm")
        self.mean, self.max = SequencePooling("mean"), SequencePooling("max")

    def call(self, sequence, input_mask, training=None):
        sequence = tf.cast(sequence, self.compute_dtype)  # a bfloat16 encoder's states feed a float32 LSTM
        mask = tf.cast(input_mask, tf.bool)
        states = self.bilstm(self.dropout(sequence, training=training), mask=mask, training=training)
        return tf.concat([self.mean(states, mask), self.max(states, mask)], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "dropout": self.dropout_rate}


class GatherWords(tf_keras.layers.Layer):
    def call(self, features, positions):
        return tf.gather(features, positions, batch_dims=1)


class WordMask(tf_keras.layers.Layer):
    """Real words have a first-piece position >= 1 ([CLS] is 0); padding words have 0."""

    def call(self, positions):
        return tf.not_equal(positions, 0)


def tagging_head(words: tf.Tensor, mask: tf.Tensor, num_tags: int, head: str = "dense", dropout: float = 0.1,
                 seed: int | None = None) -> tf.Tensor:
    """Dropout, an optional masked BiLSTM (`head="bilstm"`), and per-word tag logits."""
    words = tf_keras.layers.Dropout(dropout, seed=seed)(words)
    if head == "bilstm":
        words = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(BILSTM_UNITS, return_sequences=True),
                                              name="bilstm")(words, mask=mask)
    return tf_keras.layers.Dense(num_tags, name="tags")(words)
