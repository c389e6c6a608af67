"""The default optimizer for transfer learning: AdamW with warmup and linear decay.

`adam` and `adamw` are tf_keras's Adam and AdamW with the same update rule applied by
TensorFlow's fused kernels: one `ResourceApplyAdam` op per variable (and one
`ResourceApplyGradientDescent` for the decoupled weight decay) instead of the ~20 small
ops tf_keras builds per variable, with the step's learning rate and bias-correction powers
computed once per step rather than once per variable. The arithmetic is the kernel's
`m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); w -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)`,
which is tf_keras's. The smaller graph traces faster (every model's first step takes about half
the time, benchmarks/fused_optimizer.py); steady steps run at the same speed.
Sparse (embedding-lookup) gradients are made dense for the fused kernel: tf_keras's sparse
update decays `m` and `v` on every row of the table anyway, in several passes over it, so the
result is the same and the word-embedding update of the default encoder takes a third of the
time (benchmarks/fused_optimizer.py). `amsgrad` keeps tf_keras's own update.
"""

from __future__ import annotations

import tensorflow as tf
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
            return FusedAdam(learning_rate=learning_rate, epsilon=1e-6)
        optimizer = FusedAdamW(
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


class _FusedAdamUpdate:
    """The fused update for Adam-family optimizers (mixed into tf_keras's Adam and AdamW)."""

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        # The step's shared scalars, built once per step (per trace inside a tf.function). Set
        # around tf's attribute tracking: they are tensors of this step, not state to checkpoint.
        object.__setattr__(self, "_step_scalars", {})
        try:
            return super().apply_gradients(grads_and_vars, *args, **kwargs)
        finally:
            object.__setattr__(self, "_step_scalars", None)

    def _scalars(self, dtype) -> dict[str, tf.Tensor]:
        cache = getattr(self, "_step_scalars", None)
        if cache is not None and dtype in cache:
            return cache[dtype]
        rate = tf.cast(self.learning_rate, dtype)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        scalars = {"lr": rate, "beta1": beta_1, "beta2": beta_2, "beta1_power": tf.pow(beta_1, step),
                   "beta2_power": tf.pow(beta_2, step), "epsilon": tf.cast(self.epsilon, dtype),
                   "decay": rate * tf.cast(self.weight_decay or 0.0, dtype)}
        if cache is not None:
            cache[dtype] = scalars
        return scalars

    def _apply_weight_decay(self, variables):
        if not self.weight_decay:
            return

        def decay(variable):
            if self._use_weight_decay(variable):  # w -= lr x weight_decay x w
                rate = self._scalars(variable.dtype)["decay"]
                tf.raw_ops.ResourceApplyGradientDescent(var=variable.handle, alpha=rate,
                                                        delta=tf.convert_to_tensor(variable))

        def apply_all(distribution, variables, **kwargs):
            for variable in variables:
                distribution.extended.update(variable, decay, group=False)

        tf.__internal__.distribute.interim.maybe_merge_call(apply_all, self._distribution_strategy, variables)

    def update_step(self, gradient, variable):
        if self.amsgrad:
            return super().update_step(gradient, variable)
        if isinstance(gradient, tf.IndexedSlices):
            # Duplicate rows are summed, as tf_keras's scatter_add does; written out rather than
            # tf.convert_to_tensor, which warns about memory for large vocabularies at every trace.
            gradient = tf.math.unsorted_segment_sum(gradient.values, gradient.indices, tf.shape(variable)[0])
        index = self._index_dict[self._var_key(variable)]
        scalars = self._scalars(variable.dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=scalars["beta1_power"], beta2_power=scalars["beta2_power"], lr=scalars["lr"],
            beta1=scalars["beta1"], beta2=scalars["beta2"], epsilon=scalars["epsilon"], grad=gradient)


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class FusedAdam(_FusedAdamUpdate, tf_keras.optimizers.Adam):
    """tf_keras's Adam, updated by the fused kernel (see the module docstring)."""


@tf_keras.utils.register_keras_serializable(package="tfhub_transfer")
class FusedAdamW(_FusedAdamUpdate, tf_keras.optimizers.AdamW):
    """tf_keras's AdamW, updated by the fused kernels (see the module docstring)."""
