"""Task heads stacked on pooled encoder features."""

from __future__ import annotations

import tensorflow as tf
import tf_keras


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
        words = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(128, return_sequences=True),
                                              name="bilstm")(words, mask=mask)
    return tf_keras.layers.Dense(num_tags, name="tags")(words)
