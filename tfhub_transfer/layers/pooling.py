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
    """

    def __init__(self, mode: str = "cls", **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {mode!r}")
        self.mode = mode

    def call(self, encoder_outputs, input_mask: tf.Tensor) -> tf.Tensor:
        """`encoder_outputs`: a Hub encoder's output dict, or one [batch, seq, hidden] tensor."""
        if not isinstance(encoder_outputs, dict):
            encoder_outputs = {"sequence_output": encoder_outputs}
        if self.mode == "cls":
            return encoder_outputs.get("cls_pooled_output", encoder_outputs.get("pooled_output"))
        sequence = encoder_outputs["sequence_output"]
        if self.mode == "first":
            return sequence[:, 0, :]
        mask = tf.cast(input_mask, sequence.dtype)[:, :, tf.newaxis]
        if self.mode == "mean":
            total = tf.reduce_sum(sequence * mask, axis=1)
            return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        very_negative = tf.cast(-1e9 if sequence.dtype == tf.float32 else -3e4, sequence.dtype)
        return tf.reduce_max(sequence + (1.0 - mask) * very_negative, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}
