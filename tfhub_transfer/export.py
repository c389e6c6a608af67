"""Exports a trained model as a SavedModel whose `serving_default` takes raw strings.

Layout: `<out_dir>/<name>/<version>/` (TF Serving). The version is written to a
temporary directory and renamed into place, so an interrupted export never
leaves a half-written version and the previous one keeps serving.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (the exported graph uses its ops)
import tf_keras

from tfhub_transfer.encoders.hub_writer import atomic_directory
from tfhub_transfer.transfer_model import TransferModel

EXTRA_DIR = "assets.extra"
MODEL_INFO = "tfhub_transfer_model.json"


class _ClassifierServing(tf.Module):
    """Raw strings -> probabilities, label ids and label names."""

    def __init__(self, model: TransferModel, label_names: Sequence[str], seq_length: int):
        super().__init__(name="classifier_serving")
        preprocessor = model.preprocessor
        # Track what the serving function captures; not the model itself, so the
        # optimizer's slots stay out of the export.
        if preprocessor is not None:
            self.preprocessing = preprocessor.module
        self.model_variables = list(model.variables)
        # Lookup tables are resources, not variables: track the layers and Hub modules holding them.
        self.text_layers = [layer for layer in model.layers
                            if isinstance(layer, tf_keras.layers.TextVectorization)]
        self.hub_modules = [layer.resolved_object for layer in model.layers
                            if isinstance(layer, hub.KerasLayer)]

        def to_inputs(text):
            return text if preprocessor is None else preprocessor.encode(text, seq_length)
        self.label_names = tf.constant(list(label_names))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            inputs = to_inputs(text)
            probabilities = tf.nn.softmax(tf.cast(model(inputs, training=False), tf.float32))
            label_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            return {
                "probabilities": probabilities,
                "label_ids": label_ids,
                "labels": tf.gather(self.label_names, label_ids),
            }

        self.serve = serve


def next_version(model_dir: Path) -> int:
    versions = [int(p.name) for p in model_dir.glob("*") if p.is_dir() and p.name.isdigit()]
    return max(versions, default=0) + 1


def export_classifier(
    model: TransferModel,
    label_names: Sequence[str],
    out_dir: str | Path = "saved_models",
    name: str = "classifier",
    version: int | None = None,
    extra_files: dict[str, bytes] | None = None,
    info: dict | None = None,
) -> Path:
    """Writes `out_dir/name/version` atomically and returns its path."""
    model_dir = Path(out_dir) / name
    version = version or next_version(model_dir)
    target = model_dir / str(version)
    seq_length = getattr(model.config, "seq_length", None)
    module = _ClassifierServing(model, label_names, seq_length)
    record = {"task": "single_label", "labels": list(label_names), "model": model.name,
              "config": dataclasses.asdict(model.config), **(info or {})}
    if model.spec is not None:
        record.update(encoder=model.spec.name, encoder_handle=model.spec.encoder,
                      preprocessor_handle=model.spec.preprocessor)
    with atomic_directory(target) as tmp:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve})
        extra = tmp / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        (extra / MODEL_INFO).write_text(json.dumps(record, indent=2), encoding="utf-8")
        for filename, content in (extra_files or {}).items():
            (extra / filename).write_bytes(content)
    return target


class ExportedClassifier:
    """Loads an exported classifier and predicts on raw strings."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / "saved_model.pb").exists():
            raise FileNotFoundError(
                f"{self.path} is not an exported model (no saved_model.pb); pass "
                f"saved_models/<name>/<version>."
            )
        self.loaded = tf.saved_model.load(str(self.path))
        self.signature = self.loaded.signatures["serving_default"]
        info_file = self.path / EXTRA_DIR / MODEL_INFO
        self.info = json.loads(info_file.read_text("utf-8")) if info_file.exists() else {}

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> dict:
        import numpy as np

        parts = []
        for start in range(0, len(texts), batch_size):
            out = self.signature(text=tf.constant(list(texts[start : start + batch_size])))
            parts.append({k: v.numpy() for k, v in out.items()})
        if not parts:
            return {"probabilities": np.zeros((0, 0)), "label_ids": np.zeros(0, int), "labels": []}
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        merged["labels"] = [b.decode("utf-8") for b in merged["labels"]]
        return merged
