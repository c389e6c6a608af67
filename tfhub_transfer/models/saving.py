"""`load(path)`: rebuilds a task model that `model.save(path)` (or a `train` run) wrote.

A run that was exported keeps no second copy of its weights: `share_export_weights` replaces
the run's `weights.npz` with `weights_in_export.json`, which names the export and the checkpoint
key of each weight there, once it has checked that the export holds exactly these values. `load`
then reads them from the export's variables, so a finished run costs about one copy of the model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import replace_file
from tfhub_transfer.models.base import MODEL_FILE, WEIGHTS_FILE, TaskModel, registered

# Importing the task models registers them.
from tfhub_transfer.models.rnn_classifier import RnnClassifier  # noqa: F401
from tfhub_transfer.models.text_classifier import TextClassifier  # noqa: F401
from tfhub_transfer.models.text_embedding_classifier import TextEmbeddingClassifier  # noqa: F401
from tfhub_transfer.models.token_classifier import TokenClassifier  # noqa: F401

EXPORT_WEIGHTS_FILE = "weights_in_export.json"
_CHECKPOINT = "variables/variables"
# The serving module of export.saved_model tracks `list(model.variables)` as its attribute `model_variables`.
_EXPORT_KEY = "model_variables/{}/.ATTRIBUTES/VARIABLE_VALUE"


def load(path: str | Path) -> TaskModel:
    """The task model saved in `path`, with its weights, label names, transfer mode and encoder reference.

    Build it inside a distribution strategy's scope to train it there. The optimizer state
    is not saved: `compile()` again (or just `fit`, which compiles with the defaults).

    Args:
      path: a directory `model.save()` wrote, or a run directory OUT/NAME/run (local or a URL).

    Returns:
      The task model (`TextClassifier`, `TokenClassifier`, ...), ready to `predict` or `fit` further.

    Example:
      >>> from tfhub_transfer import load, train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> model = load("models/reviews/run")
      >>> model.label_names, model.predict_labels(["A wonderful, moving film."])[0] in model.label_names
      (['negative', 'positive'], True)
    """
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"load(path={path!r}): path must be the directory model.save() wrote (str or pathlib.Path)")
    if storage.is_url(path):  # a run on shared storage: checked against its marker, read from a local copy
        storage.check_complete(path, "the saved model")
        with tempfile.TemporaryDirectory(prefix="tfhub_transfer-load-") as local:
            return load(storage.download_tree(path, local))
    path = Path(path)
    model_file, weights_file, shared_file = path / MODEL_FILE, path / WEIGHTS_FILE, path / EXPORT_WEIGHTS_FILE
    if not model_file.is_file() or not (weights_file.is_file() or shared_file.is_file()):
        raise ConfigError(f"{path} is not a saved task model (it needs {MODEL_FILE} and {WEIGHTS_FILE}); "
                          "save one with model.save(DIR) or train with `tfhub-transfer train`")
    # save() writes weights.npz; it is there also if a crash came before the export's weights replaced it.
    shared = None if weights_file.is_file() else _values_in_export(path, shared_file)  # a missing export fails now
    try:
        record = json.loads(model_file.read_text(encoding="utf-8"))
        model = registered(record["class"]).from_config(record["config"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{model_file} is damaged ({err}); save the model again") from None
    if shared is not None:
        model.set_weight_values(shared)
        return model
    try:
        with np.load(weights_file) as saved:
            model.set_weight_values([saved[f"arr_{i}"] for i in range(len(saved.files))])
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{weights_file} is damaged ({err}); save the model again") from None
    return model


def share_export_weights(model: TaskModel, run_dir: str | Path, export_dir: str | Path) -> bool:
    """Makes the run in `run_dir` read its weights from `export_dir` instead of its own `weights.npz`.

    Only when every weight of `model` is found with exactly its value among the export's
    variables; otherwise (say, a newer export layout) the run keeps its own copy. Returns
    whether the run now shares the export's weights.
    """
    if storage.is_url(run_dir):
        return False  # a run on shared storage keeps its own weights.npz
    run_dir, export_dir = Path(run_dir), Path(export_dir)
    keys = _export_keys(model)
    try:
        reader = tf.train.load_checkpoint(str(export_dir / _CHECKPOINT))
    except (tf.errors.OpError, ValueError):
        return False
    if keys is None or not all(reader.has_tensor(k) for k in keys):
        return False
    if not all(np.array_equal(reader.get_tensor(k), v) for k, v in zip(keys, model.weight_values())):
        return False
    record = {"export": os.path.relpath(export_dir, run_dir), "export_absolute": str(export_dir.resolve()),
              "checkpoint": _CHECKPOINT, "fingerprint": _fingerprint(export_dir), "keys": keys}
    text = json.dumps(record, indent=2).encode("utf-8")
    replace_file(run_dir / EXPORT_WEIGHTS_FILE, lambda handle: handle.write(text))
    (run_dir / WEIGHTS_FILE).unlink(missing_ok=True)
    return True


def _export_keys(model: TaskModel) -> list[str] | None:
    """The export checkpoint's key of each of `model`'s saved weights (in `weight_values` order)."""
    positions: dict[int, int] = {}
    for index, variable in enumerate(model.variables):
        positions.setdefault(id(variable), index)  # a variable listed twice is saved under its first place
    weights = [v for v in model.weights if isinstance(v, tf.Variable)]
    if any(id(w) not in positions for w in weights):
        return None
    return [_EXPORT_KEY.format(positions[id(w)]) for w in weights]


def _fingerprint(export_dir: Path) -> str:
    """Changes when the export's variables do (the index holds a checksum of every tensor)."""
    return hashlib.sha256((export_dir / f"{_CHECKPOINT}.index").read_bytes()).hexdigest()[:32]


def _values_in_export(run_dir: Path, shared_file: Path) -> list[np.ndarray]:
    try:
        record = json.loads(shared_file.read_text(encoding="utf-8"))
        places = [run_dir / record["export"], Path(record["export_absolute"])]
        checkpoint, fingerprint, keys = record["checkpoint"], record["fingerprint"], record["keys"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ConfigError(f"{shared_file} is damaged ({err}); train again") from None
    changed = None
    for export in places:
        if (export / f"{checkpoint}.index").is_file():
            if _fingerprint(export) == fingerprint:
                reader = tf.train.load_checkpoint(str(export / checkpoint))
                return [reader.get_tensor(key) for key in keys]
            changed = export
    problem = f"{changed} holds other variables now" if changed else "it is gone"
    raise ConfigError(
        f"{run_dir} keeps no weights of its own: they are the variables of its export "
        f"{record['export_absolute']}, and {problem}. Put that export back, or train again "
        "(a run trained with --no-export keeps its own weights.npz)."
    )
