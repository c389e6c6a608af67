"""The encoder backbone that text and token models share: the TF Hub encoder (and its preprocessor) loaded
for a config, its inputs, its token states (or their layer mix), and the transfer mode applied to its
variables (layer groups, initially frozen groups, per-group rates). keras-hub's `Backbone` + `Preprocessor`.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.loading import check_compatible, load_encoder_layer
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.layers.layer_mix import LayerMix, StackLayers
from tfhub_transfer.preprocessing.text import LongText, TextPreprocessor, segment_budget
from tfhub_transfer.transfer.layer_groups import layer_groups
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.reinit import reinitialize

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def encoder_inputs(windowed: bool = False) -> dict[str, tf_keras.Input]:
    """The encoder's inputs, [batch, seq] (or [batch, rows, seq]: long texts split into windows, or a pair's two
    texts read apart)."""
    shape = (None, None) if windowed else (None,)
    return {name: tf_keras.Input(shape=shape, dtype=tf.int32, name=name) for name in INPUT_NAMES}



def load_encoder(config, mode: TransferMode, layer: tf_keras.layers.Layer | None = None):
    """(spec, preprocessor, hub.KerasLayer) for a config with encoder/preprocessor/seq_length (and `packing`:
    the encoder's variant that reads packed rows); `layer`: that encoder already loaded (a model rebuilt for
    another mode keeps its encoder), made trainable as `mode` says."""
    encoder = config.encoder
    if getattr(config, "packing", 0):
        encoder = encoder_variant(encoder, preprocessor=config.preprocessor, packed=True)
    spec = resolve_encoder(encoder, config.preprocessor)
    preprocessor = TextPreprocessor(spec.preprocessor)
    if layer is None:
        layer = load_encoder_layer(spec, trainable=mode.encoder_trainable)
    else:
        layer.trainable = mode.encoder_trainable
    check_compatible(layer, spec, preprocessor.vocab_size, config.seq_length)
    return spec, preprocessor, layer



def token_states(outputs: dict, config, spec) -> dict | tf.Tensor:
    """The encoder's own outputs, or the layer mix of its stacked layers ([batch, seq, hidden])."""
    if config.layer_mix is None:
        return outputs
    stacked = StackLayers(need_embeddings=config.layer_mix == "embeddings", name="stack_layers")(outputs)
    return LayerMix(config.layer_mix, int(stacked.shape[1]), spec.has_embedding_output, name="layer_mix")(stacked)



def pooling_of(config, spec) -> str:
    """The pooling a config asks for: its own, else the encoder's recommendation (mean after a layer mix)."""
    if config.layer_mix is None:
        return config.pooling or spec.pooling
    return config.pooling if config.pooling not in (None, "cls") else "mean"



def transfer_mode_of(config) -> TransferMode:
    """The transfer mode a model config describes, with the recipe options it holds."""
    return TransferMode.parse(config.mode, getattr(config, "embedding_lr_multiplier", None),
                              lr_mult=getattr(config, "lr_mult", None),
                              frozen_epochs=getattr(config, "frozen_epochs", None))



def unused_groups(config, spec) -> tuple[str, ...]:
    """Layer groups the model's output does not depend on: the pooler unless `cls` pooling reads it."""
    reads_pooler = config.layer_mix is None and (config.pooling or spec.pooling) == "cls"
    return () if reads_pooler else ("pooler",)



def apply_transfer_mode(model, layer, mode: TransferMode, seed: int = 0) -> None:
    """Sets the model's layer groups, initially frozen groups and LR multipliers (over `model.unused_groups`)."""
    if mode.reinitializes:
        reinitialize(layer.weights, seed)
    model.fixed_variables = tuple(mode.fixed_variables(layer.weights))
    windows = getattr(model, "long_text", None)
    mode.check_applies(model.task, getattr(model.config, "pair", False), windows is not None and windows.windowed)
    try:
        groups = layer_groups(layer.weights, model.spec.name)
    except EncoderError:
        if mode.needs_groups:
            raise
        return  # freeze / finetune / reinit work on encoders whose names do not group
    model.layer_groups = groups
    model.lr_multipliers = mode.learning_rate_multipliers(groups, model.unused_groups)
    model.set_frozen_groups(mode.initially_frozen(groups))



def string_batch_encoder(preprocessor: TextPreprocessor, seq_length: int, long_text: LongText | None = None,
                         static_length: bool = False):
    """The per-batch encoding of raw (texts, targets) batches (texts: strings, or (texts_a, texts_b)) that the
    in-memory pipeline applies (preprocessing.text): each segment cut to fit `seq_length` (kept whole for
    windows), then packed into encoder inputs. For streamed sources, mapped over their string batches.

    Example:
      >>> dataset.map(string_batch_encoder(model.preprocessor, 128))  # ((texts, labels) -> (inputs, labels))
    """

    def encode(texts, targets):
        segments = texts if isinstance(texts, tuple) else (texts,)
        budget = segment_budget(seq_length, len(segments), long_text)
        tokens = [preprocessor.tokenize(segment)[:, :budget] for segment in segments]
        return preprocessor.pack_for(tokens, seq_length, long_text, static_length), targets

    return encode

