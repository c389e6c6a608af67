"""`reinit`: the encoder's architecture with fresh weights (the no-transfer baseline)."""

from __future__ import annotations

import re

import tensorflow as tf


def initial_value(variable: tf.Variable, generator: tf.random.Generator, stddev: float = 0.02):
    """BERT's initialisation by variable name: LN gamma 1, beta/biases 0, else truncated N(0, 0.02)."""
    name = variable.name
    if re.search(r"(gamma|/scale):0$", name):
        return tf.ones(variable.shape, variable.dtype)
    if re.search(r"(beta|bias|/offset):0$", name):
        return tf.zeros(variable.shape, variable.dtype)
    return tf.cast(generator.truncated_normal(variable.shape, stddev=stddev), variable.dtype)


def reinitialize(variables: list[tf.Variable], seed: int = 0, stddev: float = 0.02) -> None:
    """Overwrites pretrained weights in place with a fresh BERT-style initialisation."""
    generator = tf.random.Generator.from_seed(seed)
    for variable in variables:
        variable.assign(initial_value(variable, generator, stddev))
