"""Learning-rate schedules that count optimizer steps (global steps under any distribution strategy)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class WarmupLinearDecay(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * step / float(max(self.warmup_steps, 1))
        decay_span = float(max(self.total_steps - self.warmup_steps, 1))
        decayed = self.peak * tf.maximum(0.0, 1.0 - (step - self.warmup_steps) / decay_span)
        return tf.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}
