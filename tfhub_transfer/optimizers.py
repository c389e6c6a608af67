"""The default optimizer for transfer learning: AdamW with warmup and linear decay."""

from __future__ import annotations

import tf_keras

from tfhub_transfer.schedules import WarmupLinearDecay

NO_DECAY = ["layer_norm", "LayerNorm", "bias"]


def make_adamw(
    learning_rate: float,
    total_steps: int,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
) -> tf_keras.optimizers.Optimizer:
    """AdamW (tf_keras) on a warmup + linear-decay schedule; no decay on norms and biases."""
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(total_steps * warmup_fraction))
    optimizer = tf_keras.optimizers.AdamW(
        learning_rate=schedule, weight_decay=weight_decay, epsilon=1e-6
    )
    optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
    return optimizer
