"""Reading and writing SavedModels under a TPU strategy: through the host, as the TF Hub recipe says."""

from __future__ import annotations

import tensorflow as tf


def _host_io_device(strategy: tf.distribute.Strategy | None = None) -> str | None:
    """The published recipe for Hub models on TPU: under TPUStrategy, local SavedModels are
    read and written through the host (`/job:localhost`), not the TPU worker; elsewhere None."""
    if isinstance(strategy or tf.distribute.get_strategy(), tf.distribute.TPUStrategy):
        return "/job:localhost"
    return None


def save_options(strategy: tf.distribute.Strategy | None = None) -> tf.saved_model.SaveOptions | None:
    device = _host_io_device(strategy)
    return tf.saved_model.SaveOptions(experimental_io_device=device) if device else None


def load_options() -> tf.saved_model.LoadOptions | None:
    device = _host_io_device()
    return tf.saved_model.LoadOptions(experimental_io_device=device) if device else None
