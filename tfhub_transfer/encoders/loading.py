"""Loads an encoder SavedModel as a `hub.KerasLayer` and checks it against its preprocessor."""

from __future__ import annotations

import re

import tensorflow as tf
import tensorflow_hub as hub
from google.protobuf.message import DecodeError

from tfhub_transfer.cache import check_handle_available
from tfhub_transfer.encoders.host_io import load_options
from tfhub_transfer.encoders.resolve import EncoderSpec
from tfhub_transfer.errors import EncoderError


def _variable_rows(layer: hub.KerasLayer, pattern: str) -> int | None:
    for weight in layer.weights:
        if re.search(pattern, weight.name):
            return int(weight.shape[0])
    return None


def vocab_size_of(layer: hub.KerasLayer) -> int | None:
    return _variable_rows(layer, r"word_embeddings(/embeddings)?:0$")


def max_positions_of(layer: hub.KerasLayer) -> int | None:
    return _variable_rows(layer, r"position_embedding(s)?(/embeddings)?:0$")


def load_encoder_layer(spec: EncoderSpec, trainable: bool, name: str = "encoder") -> hub.KerasLayer:
    """`hub.KerasLayer(spec.encoder, trainable=...)`, with a clear error when it cannot load."""
    check_handle_available(spec.encoder)
    try:
        return hub.KerasLayer(spec.encoder, trainable=trainable, name=name, load_options=load_options())
    except (OSError, ValueError, IndexError, tf.errors.OpError, DecodeError) as err:
        raise EncoderError(f"cannot load encoder {spec.encoder}: its files look damaged or incomplete "
                           f"({_first_line(err)}). Write or download it again.") from None


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


def check_compatible(layer: hub.KerasLayer, spec: EncoderSpec, vocab_size: int, seq_length: int) -> None:
    """Raises if the preprocessor's vocabulary or `seq_length` do not fit the encoder."""
    rows = vocab_size_of(layer)
    if rows is not None and rows != vocab_size:
        raise EncoderError(
            f"encoder {spec.encoder} has {rows} word embeddings but preprocessor "
            f"{spec.preprocessor} has a {vocab_size}-token vocabulary: they do not belong "
            f"together. Use the preprocessor published with this encoder."
        )
    positions = max_positions_of(layer)
    if positions is not None and seq_length > positions:
        raise EncoderError(
            f"seq_length {seq_length} is above encoder {spec.name}'s {positions} position "
            f"embeddings; pass --seq-length {positions} or less."
        )
