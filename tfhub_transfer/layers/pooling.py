"""From the encoder's per-token outputs to one vector per example."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

POOLINGS = ("cls", "first", "mean", "max")


class SequencePooling(tf_keras.layers.Layer):
    """Pools Hub encoder outputs.

    - `cls`: the tanh pooler over [CLS], as BERT fine-tuning uses: `cls_pooled_output` where the
      encoder has it (this package's encoders: their `pooled_output` can be a mean, see the README),
      else the published encoder's `pooled_output`;
    - `first`: the raw [CLS] vector of `sequence_output`;
    - `mean` / `max`: over the real (unmasked) tokens of `sequence_output`.

    With `segments` (packed rows, see preprocessing.packing; `mean` only), `input_mask` numbers the
    examples in each row and the output is one mean per segment slot, [rows x most segments, hidden]
    in row-major order; a 0/1 mask gives the plain mean, [batch, hidden].
    """

    def __init__(self, mode: str = "cls", segments: bool = False, **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {mode!r}")
        if segments and mode != "mean":
            raise ValueError(f"packed rows are pooled per segment by their mean, not by {mode!r}")
        self.mode = mode
        self.segments = segments

    def call(self, encoder_outputs, input_mask: tf.Tensor) -> tf.Tensor:
        """`encoder_outputs`: a Hub encoder's output dict, or one [batch, seq, hidden] tensor."""
        if not isinstance(encoder_outputs, dict):
            encoder_outputs = {"sequence_output": encoder_outputs}
        if self.mode == "cls":
            return encoder_outputs.get("cls_pooled_output", encoder_outputs.get("pooled_output"))
        sequence = encoder_outputs["sequence_output"]
        if self.mode == "first":
            return sequence[:, 0, :]
        if self.segments:
            return segment_means(sequence, input_mask)
        mask = tf.cast(input_mask, sequence.dtype)[:, :, tf.newaxis]
        if self.mode == "mean":
            total = tf.reduce_sum(sequence * mask, axis=1)
            return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        very_negative = tf.cast(-1e9 if sequence.dtype == tf.float32 else -3e4, sequence.dtype)
        return tf.reduce_max(sequence + (1.0 - mask) * very_negative, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "segments": self.segments}


def segment_means(sequence: tf.Tensor, segments: tf.Tensor) -> tf.Tensor:
    """[rows, seq, hidden] and [rows, seq] segment ids (0: padding) -> [rows x S, hidden], the mean of each
    segment's tokens (S = the largest id; a row's unused slots are zeros)."""
    ids = tf.range(1, tf.maximum(tf.reduce_max(segments), 1) + 1)
    members = tf.cast(segments[:, :, tf.newaxis] == ids, sequence.dtype)  # [rows, seq, S]; padding: all zeros
    totals = tf.einsum("rts,rth->rsh", members, sequence)
    sizes = tf.maximum(tf.reduce_sum(members, axis=1), 1.0)[:, :, tf.newaxis]
    return tf.reshape(totals / sizes, [-1, sequence.shape[-1] or tf.shape(sequence)[-1]])


class PairFeatures(tf_keras.layers.Layer):
    """[2 x pairs, hidden] pooled embeddings of texts read apart (a0, b0, a1, b1, ...) -> [pairs, 2 x hidden + 1]:
    |u - v|, u * v and cos(u, v) of each pair's unit-length embeddings u, v.

    SBERT's classification features (Reimers & Gurevych 2019) without u and v themselves, so the head reads the
    pair the same way round in either order. Sentence encoders were trained to compare embeddings by their cosine,
    which makes these features informative before any fine-tuning (issue #32: MRPC at 16 pairs per class).

    Example:
        >>> PairFeatures()(tf.constant([[1.0, 0.0], [0.0, 1.0]])).numpy().tolist()
        [[1.0, 1.0, 0.0, 0.0, 0.0]]
    """

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        embeddings = tf.cast(embeddings, tf.float32)
        hidden = embeddings.shape[-1] or tf.shape(embeddings)[-1]  # static where known: the head's kernel needs it
        pairs = tf.math.l2_normalize(tf.reshape(embeddings, [-1, 2, hidden]), axis=-1)
        u, v = pairs[:, 0], pairs[:, 1]
        return tf.concat([tf.abs(u - v), u * v, tf.reduce_sum(u * v, axis=-1, keepdims=True)], axis=-1)

    def compute_output_shape(self, input_shape):
        hidden = input_shape[-1]
        return tf.TensorShape([None, None if hidden is None else 2 * hidden + 1])
