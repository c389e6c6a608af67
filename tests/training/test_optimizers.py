"""The fused Adam/AdamW update must equal tf_keras's, step for step."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.training.optimizers import NO_DECAY, FusedAdam, FusedAdamW, optimizer_factory
from tfhub_transfer.training.schedules import WarmupLinearDecay


def _train(optimizer_class, traced: bool, steps: int = 6) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    kernel = tf.Variable(rng.normal(size=(7, 5)).astype("float32"), name="kernel")
    bias = tf.Variable(np.ones(5, "float32"), name="bias")
    table = tf.Variable(rng.normal(size=(11, 5)).astype("float32"), name="embeddings")
    kwargs = {"weight_decay": 0.1} if optimizer_class in (FusedAdamW, tf_keras.optimizers.AdamW) else {}
    optimizer = optimizer_class(learning_rate=WarmupLinearDecay(1e-2, 10, 2), epsilon=1e-6, **kwargs)
    if kwargs:
        optimizer.exclude_from_weight_decay(var_names=NO_DECAY)

    def step(i):
        scale = tf.cast(i + 1, tf.float32)
        dense = tf.reshape(tf.cast(tf.range(35), tf.float32), (7, 5)) * 0.01 * scale
        rows = tf.constant([[0.3] * 5, [0.1] * 5, [-0.2] * 5])  # row 1 twice: the two are summed
        sparse = tf.IndexedSlices(rows * scale, tf.constant([1, 4, 1]), tf.constant([11, 5]))
        optimizer.apply_gradients([(dense, kernel), (tf.ones(5) * 0.2 - scale * 0.05, bias), (sparse, table)])

    run = tf.function(step) if traced else step
    for i in range(steps):
        run(tf.constant(i))
    return [v.numpy() for v in (kernel, bias, table)]


@pytest.mark.parametrize("traced", [False, True])
@pytest.mark.parametrize("fused, reference", [(FusedAdamW, tf_keras.optimizers.AdamW),
                                              (FusedAdam, tf_keras.optimizers.Adam)])
def test_fused_update_equals_tf_keras(fused, reference, traced):
    start = _train(reference, traced, steps=0)
    expected, got = _train(reference, traced), _train(fused, traced)
    for before, want, have in zip(start, expected, got):
        assert np.abs(want - before).max() > 1e-3  # the variables moved
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6)


def test_named_optimizers_are_the_fused_ones_and_serialize():
    assert type(optimizer_factory("adamw")(1e-3)) is FusedAdamW
    assert type(optimizer_factory("adam")(1e-3)) is FusedAdam
    restored = tf_keras.optimizers.deserialize(tf_keras.optimizers.serialize(optimizer_factory("adamw")(1e-3)))
    assert type(restored) is FusedAdamW and restored.weight_decay == pytest.approx(0.01)
