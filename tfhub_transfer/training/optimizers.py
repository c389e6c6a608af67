"""The default optimizer for transfer learning: AdamW with warmup and linear decay."""

from __future__ import annotations

import tf_keras

from tfhub_transfer.training.schedules import WarmupLinearDecay

OPTIMIZERS = ("adamw", "adam", "sgd")

NO_DECAY = ["layer_norm", "LayerNorm", "bias"]


def make_adamw(
    learning_rate: float,
    total_steps: int,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
) -> tf_keras.optimizers.Optimizer:
    """AdamW (tf_keras) on a warmup + linear-decay schedule; no decay on norms and biases."""
    schedule = WarmupLinearDecay(learning_rate, total_steps, int(total_steps * warmup_fraction))
    return optimizer_factory("adamw", weight_decay)(schedule)


def optimizer_factory(name: str = "adamw", weight_decay: float = 0.01):
    """Returns `make(learning_rate) -> fresh optimizer`, as `TransferModel.compile_transfer` wants."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")

    def make(learning_rate) -> tf_keras.optimizers.Optimizer:
        if name == "sgd":
            return tf_keras.optimizers.SGD(learning_rate=learning_rate)
        if name == "adam":
            return tf_keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-6)
        optimizer = tf_keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay, epsilon=1e-6
        )
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)
        return optimizer

    return make


def copy_factory(optimizer: tf_keras.optimizers.Optimizer):
    """`make(learning_rate)` returning fresh copies of a user's optimizer with another learning rate."""
    config = optimizer.get_config()

    def make(learning_rate) -> tf_keras.optimizers.Optimizer:
        return type(optimizer).from_config({**config, "learning_rate": learning_rate})

    return make
