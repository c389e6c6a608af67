"""A classifier on a TF Hub text-embedding module (strings -> vectors), e.g. nnlm or Wiki-words."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.cache import check_handle_available
from tfhub_transfer.models.registry import register
from tfhub_transfer.models.string_input import StringInputModel
from tfhub_transfer.transfer.modes import TransferMode

NO_TOKENS = "a text-embedding module takes whole strings, so there is no padding to bucket"


@dataclasses.dataclass(frozen=True)
class TextEmbeddingClassifierConfig:
    num_classes: int
    text_embedding: str = ""
    mode: str = "freeze"  # freeze | finetune
    dropout: float = 0.2
    hidden_units: int = 0
    seed: int = 0


@register
class TextEmbeddingClassifier(StringInputModel):
    """`hub.KerasLayer(handle, input_shape=[], dtype=tf.string, trainable=...)` + a dense head; takes strings.

    Such modules are one block of variables: only `freeze` and `finetune` apply.

    Args:
      config: a `TextEmbeddingClassifierConfig` (or its dict): the module's handle, mode, head options.
      label_names: the class names.
    Example:
      >>> import numpy as np
      >>> from tfhub_transfer import TextEmbeddingClassifier
      >>> from tfhub_transfer.data.vectors import WordVectors
      >>> from tfhub_transfer.encoders.build.text_embedding import write_text_embedding_module
      >>> module = write_text_embedding_module(WordVectors(["good", "bad"], np.eye(2, dtype="float32")), "embed")
      >>> model = TextEmbeddingClassifier({"num_classes": 2, "text_embedding": str(module)}, ["neg", "pos"])
      >>> model.predict(["good"], verbose=0).shape
      (1, 2)
    """

    unsupported = {"bucket": NO_TOKENS}

    def __init__(self, config: TextEmbeddingClassifierConfig | dict, label_names: Sequence[str] | None = None,
                 **kwargs):
        config = TextEmbeddingClassifierConfig(**config) if isinstance(config, dict) else config
        mode = TransferMode.parse(config.mode)
        mode.check_applies("single_label", architecture="text_embedding")
        check_handle_available(config.text_embedding)
        text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
        layer = hub.KerasLayer(config.text_embedding, input_shape=[], dtype=tf.string,
                               trainable=mode.encoder_trainable, name="encoder")
        hidden = layer(text)
        if config.hidden_units:
            hidden = tf_keras.layers.Dense(config.hidden_units, activation="relu")(hidden)
        hidden = tf_keras.layers.Dropout(config.dropout, seed=config.seed)(hidden)
        logits = tf_keras.layers.Dense(config.num_classes, name="logits")(hidden)
        super().__init__(inputs=text, outputs=logits, name=kwargs.pop("name", "text_embedding_classifier"),
                         **kwargs)
        self._setup(config, mode, None, None, label_names)
