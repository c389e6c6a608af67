"""Budgets in optimizer steps: `--epochs auto` and the clean stop of `--max-steps` / `--time-budget`."""

import numpy as np
import pytest
import tf_keras

from tfhub_transfer.training.budget import MAX_EPOCHS, MIN_STEPS, StepBudget, auto_epochs, resolve_epochs


@pytest.mark.parametrize("examples", [14, 100, 270, 1000, 2000])
def test_small_data_gets_enough_steps(examples):
    epochs = auto_epochs(examples, 32)
    steps = epochs * -(-examples // 32)
    assert steps >= MIN_STEPS or epochs == MAX_EPOCHS


@pytest.mark.parametrize("examples, passes", [(8000, 3), (40_000, 2), (200_000, 1)])
def test_large_data_gets_one_to_three_passes(examples, passes):
    assert auto_epochs(examples, 32) == passes


def test_given_epochs_are_kept():
    assert resolve_epochs(5, 10_000, 32) == 5
    assert resolve_epochs("auto", 270, 32) == auto_epochs(270, 32)


def tiny_model():
    model = tf_keras.Sequential([tf_keras.layers.Dense(1, input_shape=(2,))])
    model.compile("sgd", "mse")
    return model


def test_max_steps_stops_cleanly_after_that_many_steps():
    x, y = np.ones((64, 2), np.float32), np.ones((64, 1), np.float32)
    model, budget = tiny_model(), StepBudget(max_steps=5)
    model.fit(x, y, batch_size=4, epochs=10, verbose=0, callbacks=[budget])
    assert (int(model.optimizer.iterations.numpy()), budget.steps) == (5, 5)
    assert "--max-steps 5" in budget.stopped


def test_time_budget_stops_when_used_up():
    x, y = np.ones((64, 2), np.float32), np.ones((64, 1), np.float32)
    model, budget = tiny_model(), StepBudget(minutes=0.0)
    model.fit(x, y, batch_size=4, epochs=10, verbose=0, callbacks=[budget])
    assert int(model.optimizer.iterations.numpy()) == 1 and "--time-budget" in budget.stopped


def test_no_budget_trains_every_step():
    x, y = np.ones((16, 2), np.float32), np.ones((16, 1), np.float32)
    model, budget = tiny_model(), StepBudget()
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[budget])
    assert int(model.optimizer.iterations.numpy()) == 12 and budget.stopped is None
