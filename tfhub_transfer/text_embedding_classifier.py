"""A classifier on a TF Hub text-embedding module (strings -> vectors), e.g. nnlm or Wiki-words."""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.encoders.handles import check_handle_available
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.transfer_model import TransferModel
from tfhub_transfer.transfer_modes import TransferMode


@dataclasses.dataclass(frozen=True)
class TextEmbeddingClassifierConfig:
    num_classes: int
    text_embedding: str = ""
    mode: str = "freeze"  # freeze | finetune
    dropout: float = 0.2
    hidden_units: int = 0
    seed: int = 0


def build_text_embedding_classifier(config: TextEmbeddingClassifierConfig) -> TransferModel:
    """`hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=...)` + a dense head."""
    mode = TransferMode.parse(config.mode)
    if mode.kind not in ("freeze", "finetune"):
        raise EncoderError(f"text-embedding modules support freeze or finetune, not {config.mode!r}")
    check_handle_available(config.text_embedding)
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    layer = hub.KerasLayer(config.text_embedding, input_shape=[], dtype=tf.string,
                           trainable=mode.encoder_trainable, name="encoder")
    hidden = layer(text)
    if config.hidden_units:
        hidden = tf_keras.layers.Dense(config.hidden_units, activation="relu")(hidden)
    hidden = tf_keras.layers.Dropout(config.dropout, seed=config.seed)(hidden)
    logits = tf_keras.layers.Dense(config.num_classes, name="logits")(hidden)
    model = TransferModel(inputs=text, outputs=logits, name="text_embedding_classifier")
    model.config, model.mode = config, mode
    return model
