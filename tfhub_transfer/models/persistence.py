"""How a task model is written: `save(dir)` (config, label names, weights; `tfhub_transfer.load(dir)`
rebuilds it, see models.saving) and `export(dir)` (a raw-string serving model, see export.formats)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.formats import export_model
from tfhub_transfer.export.serving import check_format
from tfhub_transfer.files import atomic_directory
from tfhub_transfer.training.tasks import task_spec

MODEL_FILE = "tfhub_transfer_model.json"
WEIGHTS_FILE = "weights.npz"


class Persistence:
    """Mixin of `TaskModel`: `export`, `save`, and the weights by position that `save` and `load` use."""

    def export(self, out_dir: str | Path, name: str | None = None, version: int | None = None,
               format: str = "saved_model", quantize: str | None = None, **options) -> Path:
        """Writes `out_dir/name/version`: a raw-string SavedModel (see export.saved_model), a raw-string
        TFLite model (`format="tflite"`) or an ONNX model on token ids (`format="onnx"`); `quantize="int8"`
        gives the last two dynamic-range int8 weights (see export.formats)."""
        check_export_arguments(out_dir, format, quantize)
        classes = self.num_outputs if task_spec(self.task).target != "number" else 0
        names = self.label_names or [str(i) for i in range(classes)]
        return export_model(self, names, out_dir, name or self.name, version, format, quantize, **options)

    # -- save / load ------------------------------------------------------------------------------
    def weight_values(self) -> list[np.ndarray]:
        # By position, not by object graph: a rebuilt model's graph can differ in bookkeeping.
        return [v.numpy() for v in self.weights if isinstance(v, tf.Variable)]

    def set_weight_values(self, values: Sequence[np.ndarray]) -> None:
        variables = [v for v in self.weights if isinstance(v, tf.Variable)]
        if len(variables) != len(values):
            raise ConfigError(f"saved weights hold {len(values)} arrays; {self.name} has {len(variables)} "
                              "variables (was it saved from another model?)")
        for variable, value in zip(variables, values):
            variable.assign(value)

    def save(self, filepath, overwrite: bool = False, **kwargs) -> None:
        """Writes `filepath/` (config, label names, transfer mode, encoder reference, weights) atomically.

        `tfhub_transfer.load(filepath)` rebuilds the model, ready to predict or train on. An existing
        directory is replaced only with `overwrite=True`, and only when this package wrote it.
        For serving, use `export()` (a raw-string SavedModel).
        """
        target = checked_save_path(filepath, overwrite)
        record = {"class": type(self).__name__, "config": self.get_config(), "format": 1}
        try:
            with atomic_directory(target, overwrite) as tmp:
                (tmp / MODEL_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
                with open(tmp / WEIGHTS_FILE, "wb") as handle:
                    np.savez(handle, *self.weight_values())
                    handle.flush()
                    os.fsync(handle.fileno())
        except ConfigError as err:
            raise ConfigError(python_arguments(str(err))) from None



def python_arguments(message: str) -> str:
    """A message written for CLI users, with the flags a Python caller of `save` / `export` sets as arguments."""
    return message.replace("pass --overwrite", "pass overwrite=True").replace("--overwrite", "overwrite=True") \
        .replace("choose another --out", "choose another directory")


def checked_save_path(filepath, overwrite: bool) -> Path:
    """`filepath` as a Path, refused (naming the Python arguments) when it is not a path or holds files
    and `overwrite` is not True."""
    if not isinstance(filepath, (str, os.PathLike)) or not str(filepath):
        raise ConfigError(f"save(filepath={filepath!r}): filepath must be a directory path (str or pathlib.Path)")
    if not isinstance(overwrite, bool):
        raise ConfigError(f"save(overwrite={overwrite!r}): overwrite must be True or False")
    target = Path(filepath)
    if target.is_file():
        raise ConfigError(f"save(filepath={str(target)!r}): that is a file; save() writes a directory. Choose "
                          "another filepath")
    if not overwrite and target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"save(): {target} exists and is not empty; pass overwrite=True to replace a model "
                          "saved there (only a directory tfhub_transfer wrote is replaced), or choose another "
                          "filepath")
    return target


def check_export_arguments(out_dir, format, quantize) -> None:
    """`export`'s arguments, refused naming the Python argument (the CLI's checks name its flags)."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir):
        raise ConfigError(f"export(out_dir={out_dir!r}): out_dir must be a directory path (str or pathlib.Path)")
    check_format(format, quantize, "export(format=...)", "export(quantize=...)")

