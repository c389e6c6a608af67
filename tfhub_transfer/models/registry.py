"""The task-model registry: `load` rebuilds a saved model from its class name, Keras deserialises it."""

from __future__ import annotations

import tf_keras

from tfhub_transfer.errors import ConfigError

_REGISTRY: dict[str, type] = {}


def register(cls):
    """Registers a task model class for `load` and Keras serialization (a class decorator).

    Example:
      >>> @register
      ... class MyClassifier(TaskModel): ...
    """
    _REGISTRY[cls.__name__] = cls
    return tf_keras.utils.register_keras_serializable(package="tfhub_transfer")(cls)


def registered(name: str) -> type:
    """The registered task model class called `name`; a ConfigError naming the known ones otherwise."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown task model class {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def registered_models() -> dict[str, type]:
    """Every registered task model class by name (import models.saving first: importing a model registers it)."""
    return dict(_REGISTRY)
