"""Feature-based layer mixes (BERT paper, section 5.3) and ELMo's learned scalar mix.

The mix works on a stack of per-layer tensors with the layer axis at position 1:
[batch, layers, seq, hidden] inside a full model, or [batch, layers, hidden] for
per-layer pooled features from the feature cache. Every mix is linear in the
layers, so pooling (first token or mean) before or after the mix is the same;
that is what lets a cache of pooled per-layer features serve every mix.

Layer index 0 is the embedding output; 1..L are the transformer layers.
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import EncoderError

LAYER_MIXES = ("embeddings", "last", "second_to_last", "sum_last4", "concat_last4", "scalar_mix")
_TOP_LAYERS_READ = {"last": 1, "second_to_last": 2, "sum_last4": 4, "concat_last4": 4}


def top_layers_read(mix: str) -> int | None:
    """How many of the top layers `mix` reads (None: every layer), so a cache can keep only those."""
    return _TOP_LAYERS_READ.get(mix)


class StackLayers(tf_keras.layers.Layer):
    """Keras layer around `stack_layers`."""

    def __init__(self, need_embeddings: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.need_embeddings = need_embeddings

    def call(self, encoder_outputs: dict) -> tf.Tensor:
        return stack_layers(encoder_outputs, self.need_embeddings)


def stack_layers(encoder_outputs: dict, need_embeddings: bool) -> tf.Tensor:
    """[batch, 1 + L, seq, hidden] from a Hub encoder's outputs (embeddings first when present)."""
    layers = list(encoder_outputs["encoder_outputs"])
    embedding = encoder_outputs.get("embedding_output")
    if embedding is None and need_embeddings:
        raise EncoderError(
            "this encoder does not expose `embedding_output` (published TF Hub encoders do not); "
            "the `embeddings` mix needs an encoder written by tfhub_transfer"
        )
    if embedding is not None:
        layers = [embedding, *layers]
    return tf.stack(layers, axis=1)


class LayerMix(tf_keras.layers.Layer):
    """Combines per-layer features; `num_layers` counts the stacked layers (embeddings included)."""

    def __init__(self, mix: str = "last", num_layers: int = 13, has_embeddings: bool = True, **kwargs):
        super().__init__(**kwargs)
        if mix not in LAYER_MIXES:
            raise ValueError(f"layer mix must be one of {LAYER_MIXES}, not {mix!r}")
        if mix == "embeddings" and not has_embeddings:
            raise EncoderError("the `embeddings` mix needs an encoder that exposes embedding_output")
        transformer_layers = num_layers - (1 if has_embeddings else 0)
        if mix in ("sum_last4", "concat_last4") and transformer_layers < 4:
            raise EncoderError(f"the {mix} mix needs at least 4 transformer layers; this encoder has "
                               f"{transformer_layers}")
        self.mix = mix
        self.num_layers = num_layers
        self.has_embeddings = has_embeddings

    def build(self, input_shape):
        if self.mix == "scalar_mix":
            self.mix_logits = self.add_weight("mix_logits", shape=[self.num_layers], initializer="zeros")
            self.gamma = self.add_weight("gamma", shape=[], initializer="ones")
        super().build(input_shape)

    def call(self, stacked: tf.Tensor) -> tf.Tensor:
        if self.mix == "embeddings":
            return stacked[:, 0]
        if self.mix == "last":
            return stacked[:, -1]
        if self.mix == "second_to_last":
            return stacked[:, -2]
        if self.mix == "sum_last4":
            return tf.reduce_sum(stacked[:, -4:], axis=1)
        if self.mix == "concat_last4":
            return tf.concat([stacked[:, i] for i in range(-4, 0)], axis=-1)
        weights = tf.cast(tf.nn.softmax(self.mix_logits), stacked.dtype)
        shape = [1, self.num_layers] + [1] * (stacked.shape.rank - 2)
        return tf.cast(self.gamma, stacked.dtype) * tf.reduce_sum(
            stacked * tf.reshape(weights, shape), axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "mix": self.mix, "num_layers": self.num_layers,
                "has_embeddings": self.has_embeddings}
