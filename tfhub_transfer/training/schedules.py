"""Learning-rate schedules that count optimizer steps (global steps under any distribution strategy)."""

from __future__ import annotations

import math

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


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class ScaledSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """`factor` times a base rate or schedule, optionally read at another optimizer's step.

    Per-group optimizers pass the main optimizer's `iterations` as `clock`, so a group
    unfrozen late joins the schedule where it stands instead of restarting its warmup.
    The head's factor changes between phases (its own rate while the encoder is frozen);
    the model retraces its step when it does.
    """

    def __init__(self, base, factor: float, clock: tf.Variable | None = None):
        self.base = base
        self.factor = float(factor)
        self.clock = clock

    def __call__(self, step):
        return self.at(self.clock if self.clock is not None else step)

    def at(self, step):
        """The rate at `step`, whatever the clock says."""
        base = self.base(step) if callable(self.base) else self.base
        return tf.cast(base, tf.float32) * self.factor

    def get_config(self) -> dict:
        base = self.base
        if isinstance(base, tf_keras.optimizers.schedules.LearningRateSchedule):
            base = tf_keras.optimizers.schedules.serialize(base)
        return {"base": base, "factor": self.factor}


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class SlantedTriangular(tf_keras.optimizers.schedules.LearningRateSchedule):
    """ULMFiT's slanted triangular rate: short linear rise over `cut_fraction`, long linear fall."""

    def __init__(self, peak: float, total_steps: int, cut_fraction: float = 0.1, ratio: float = 32):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.cut_fraction = float(cut_fraction)
        self.ratio = float(ratio)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        cut = max(self.total_steps * self.cut_fraction, 1.0)
        rising = step / cut
        falling = 1.0 - (step - cut) / (cut * (1.0 / self.cut_fraction - 1.0))
        p = tf.where(step < cut, rising, tf.maximum(falling, 0.0))
        return self.peak * (1.0 + p * (self.ratio - 1.0)) / self.ratio

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "cut_fraction": self.cut_fraction, "ratio": self.ratio}


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class OneCycle(tf_keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy (Smith, 2018): cosine rise from peak/div to peak, cosine fall to ~0."""

    def __init__(self, peak: float, total_steps: int, rise_fraction: float = 0.3,
                 div: float = 25.0, final_div: float = 1e4):
        self.peak = float(peak)
        self.total_steps = max(int(total_steps), 1)
        self.rise_fraction = float(rise_fraction)
        self.div = float(div)
        self.final_div = float(final_div)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rise = max(self.total_steps * self.rise_fraction, 1.0)
        fall = max(self.total_steps - rise, 1.0)
        start, end = self.peak / self.div, self.peak / self.final_div

        def cosine(a, b, t):
            return b + (a - b) * 0.5 * (1.0 + tf.cos(math.pi * tf.clip_by_value(t, 0.0, 1.0)))

        return tf.where(step < rise, cosine(start, self.peak, step / rise),
                        cosine(self.peak, end, (step - rise) / fall))

    def get_config(self) -> dict:
        return {"peak": self.peak, "total_steps": self.total_steps, "rise_fraction": self.rise_fraction,
                "div": self.div, "final_div": self.final_div}


SCHEDULES = {"linear": WarmupLinearDecay, "slanted_triangular": SlantedTriangular, "one_cycle": OneCycle}


def make_schedule(name: str, peak: float, total_steps: int, warmup_fraction: float = 0.1):
    """`linear` (warmup + linear decay), `slanted_triangular`, `one_cycle` or `constant`."""
    if name == "linear":
        return WarmupLinearDecay(peak, total_steps, int(total_steps * warmup_fraction))
    if name == "slanted_triangular":
        return SlantedTriangular(peak, total_steps, cut_fraction=max(warmup_fraction, 1e-3))
    if name == "one_cycle":
        return OneCycle(peak, total_steps, rise_fraction=max(warmup_fraction, 1e-3))
    if name == "constant":
        return peak
    raise ValueError(f"unknown schedule {name!r}; choose linear, slanted_triangular, one_cycle, constant")


class DeferredSchedule(tf_keras.optimizers.schedules.LearningRateSchedule):
    """A named schedule whose length is known only when `fit` knows the number of steps.

    `compile()` creates it with the peak rate; `fit()` calls `set_total_steps` before
    training (a fixed `total_steps` given at creation is kept). A fit in two phases (the
    head alone, then the encoder too) runs the schedule once per phase: each phase has
    its own warmup and decay, as fastai's `fine_tune` runs one cycle per phase.
    """

    def __init__(self, name: str, peak: float, warmup_fraction: float = 0.1, total_steps: int | None = None):
        make_schedule(name, peak, 1, warmup_fraction)  # fail on an unknown name now, not at fit
        self.name = name
        self.peak = float(peak)
        self.warmup_fraction = float(warmup_fraction)
        self.fixed = total_steps is not None
        self.total_steps = int(total_steps or 1)
        self.start_step = 0
        self.phase_start = 0
        self.inner = make_schedule(name, peak, self.total_steps, warmup_fraction)
        self.second = None

    def set_total_steps(self, total_steps: int, start_step: int = 0, phase_start: int = 0) -> bool:
        """Sizes the schedule for a `fit` of `total_steps` that starts at optimizer step `start_step` (a later
        `fit` on the same model runs its own warmup and decay), unless the length was fixed at creation;
        with `phase_start` > 0 a second phase, with its own warmup and decay, starts that many steps in.
        True when it changed (the train function must retrace)."""
        total, start = (self.total_steps, self.start_step) if self.fixed else (int(total_steps), int(start_step))
        phase = int(phase_start) if 0 < int(phase_start) < total else 0
        if (total, start, phase) == (self.total_steps, self.start_step, self.phase_start):
            return False
        self.total_steps, self.start_step, self.phase_start = total, start, phase
        first = phase or total
        self.inner = make_schedule(self.name, self.peak, first, self.warmup_fraction)
        self.second = make_schedule(self.name, self.peak, total - phase, self.warmup_fraction) if phase else None
        return True

    def __call__(self, step):
        if not callable(self.inner):
            return tf.constant(self.inner, tf.float32)
        step = tf.cast(step, tf.int64) - self.start_step
        if self.second is None:
            return self.inner(step)
        return tf.where(step < self.phase_start, self.inner(step), self.second(step - self.phase_start))

    def get_config(self) -> dict:
        return {"name": self.name, "peak": self.peak, "warmup_fraction": self.warmup_fraction,
                "total_steps": self.total_steps if self.fixed else None}
