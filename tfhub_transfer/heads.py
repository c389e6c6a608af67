"""Task heads stacked on pooled encoder features."""

from __future__ import annotations

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
