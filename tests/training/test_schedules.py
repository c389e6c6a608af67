"""Learning-rate schedules: warmup + linear decay, slanted triangular, one-cycle."""

import numpy as np
import pytest

from tfhub_transfer.training.schedules import (
    OneCycle,
    ScaledSchedule,
    SlantedTriangular,
    WarmupLinearDecay,
    make_schedule,
)


def values(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def test_warmup_then_linear_decay():
    schedule = WarmupLinearDecay(1.0, total_steps=100, warmup_steps=10)
    np.testing.assert_allclose(values(schedule, [0, 5, 10, 55, 100, 120]), [0, 0.5, 1.0, 0.5, 0.0, 0.0],
                               atol=1e-6)


def test_slanted_triangular_matches_ulmfit():
    schedule = SlantedTriangular(0.01, total_steps=1000, cut_fraction=0.1, ratio=32)
    lr = values(schedule, [0, 100, 550, 1000])
    assert lr[0] == pytest.approx(0.01 / 32)
    assert lr[1] == pytest.approx(0.01)
    assert lr[2] == pytest.approx(0.01 * (1 + 0.5 * 31) / 32)
    assert lr[3] == pytest.approx(0.01 / 32)
    assert np.argmax(values(schedule, range(0, 1000, 10))) == 10


def test_one_cycle_rises_then_falls():
    schedule = OneCycle(1.0, total_steps=100, rise_fraction=0.3, div=25, final_div=1e4)
    lr = values(schedule, [0, 30, 100])
    np.testing.assert_allclose(lr, [1 / 25, 1.0, 1e-4], rtol=1e-4)
    assert np.all(np.diff(values(schedule, range(30, 101))) <= 1e-7)


def test_scaled_schedule_reads_another_clock():
    import tensorflow as tf

    clock = tf.Variable(40, dtype=tf.int64)
    scaled = ScaledSchedule(WarmupLinearDecay(1.0, 100, 0), 0.25, clock=clock)
    assert float(scaled(0)) == pytest.approx(0.25 * 0.6)  # ignores its own step, reads the clock
    assert make_schedule("constant", 0.1, 10) == 0.1
    with pytest.raises(ValueError, match="unknown schedule"):
        make_schedule("cosine", 0.1, 10)
