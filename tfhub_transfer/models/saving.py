"""`load(path)`: rebuilds a task model that `model.save(path)` (or a `train` run) wrote."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.models.base import MODEL_FILE, WEIGHTS_FILE, TaskModel, registered

# Importing the task models registers them.
from tfhub_transfer.models.rnn_classifier import RnnClassifier  # noqa: F401
from tfhub_transfer.models.text_classifier import TextClassifier  # noqa: F401
from tfhub_transfer.models.text_embedding_classifier import TextEmbeddingClassifier  # noqa: F401
from tfhub_transfer.models.token_classifier import TokenClassifier  # noqa: F401


def load(path: str | Path) -> TaskModel:
    """The task model saved in `path`, with its weights, label names, transfer mode and encoder reference.

    Build it inside a distribution strategy's scope to train it there. The optimizer state
    is not saved: `compile()` again (or just `fit`, which compiles with the defaults).
    """
    path = Path(path)
    model_file, weights_file = path / MODEL_FILE, path / WEIGHTS_FILE
    if not model_file.is_file() or not weights_file.is_file():
        raise ConfigError(f"{path} is not a saved task model (it needs {MODEL_FILE} and {WEIGHTS_FILE}); "
                          "save one with model.save(DIR) or train with `tfhub-transfer train`")
    try:
        record = json.loads(model_file.read_text(encoding="utf-8"))
        model = registered(record["class"]).from_config(record["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{model_file} is damaged ({err}); save the model again") from None
    try:
        with np.load(weights_file) as saved:
            model.set_weight_values([saved[f"arr_{i}"] for i in range(len(saved.files))])
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{weights_file} is damaged ({err}); save the model again") from None
    return model
