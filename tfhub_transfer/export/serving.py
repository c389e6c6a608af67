"""What every serving format shares: the numeric outputs, which models a format takes, the written version.

Formats: `saved_model` (raw strings in, TF Serving layout), `tflite` (raw strings in, tokenised
inside with TFLite kernels), `onnx` (token ids in; the tokenizer ships beside it). `tflite` and
`onnx` take `quantize="int8"` (dynamic range: int8 weights, float activations).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import EXTRA_DIR, MODEL_INFO, write_version  # noqa: F401

FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("int8",)
SENTENCE_TASKS = ("single_label", "multi_label", "regression")


def check_format(format: str, quantize: str | None, format_flag: str = "--format",
                 quantize_flag: str = "--quantize") -> None:
    """Refuses an unknown format or quantisation, or int8 for a SavedModel, naming the flag (or, from the
    Python API, the argument: `check_format(f, q, "export(format=...)", "export(quantize=...)")`)."""
    if format not in FORMATS:
        raise ConfigError(f"{format_flag} must be one of {FORMATS}, not {format!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"{quantize_flag} must be one of {QUANTIZATIONS} (or left out), not {quantize!r}")
    if quantize and format == "saved_model":
        raise ConfigError(f"{quantize_flag} {quantize!r} applies to {format_flag} tflite or onnx (dynamic-range "
                          "int8 weights); a SavedModel keeps float32 weights")


def numeric_outputs(task: str, logits: tf.Tensor, thresholds: tf.Tensor) -> dict[str, tf.Tensor]:
    """Scores of a sentence task: class probabilities and ids, multi-label decisions, or a score."""
    logits = tf.cast(logits, tf.float32)
    if task == "regression":
        return {"score": logits[:, 0]}
    if task == "multi_label":
        probabilities = tf.sigmoid(logits)
        return {"probabilities": probabilities, "predicted": tf.cast(probabilities >= thresholds, tf.int32)}
    probabilities = tf.nn.softmax(logits)
    return {"probabilities": probabilities, "label_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}


BILSTM_EXPORT = ("the BiLSTM of --head bilstm runs a loop over a text's length that neither converter takes; "
                 "export it as saved_model")


def check_exportable(model: tf_keras.Model, format: str) -> None:
    """TFLite and ONNX exports take encoder sentence classifiers with a dense head that read one window per
    text."""
    task = getattr(getattr(model, "config", None), "task", "single_label")
    if getattr(model, "preprocessor", None) is None or task not in SENTENCE_TASKS:
        raise ConfigError(f"--format {format} exports encoder sentence classifiers (TextClassifier); "
                          f"{type(model).__name__} ({task}) exports only as --format saved_model")
    long_text = getattr(model, "long_text", None)
    if long_text is not None and getattr(long_text, "windowed", False):
        raise ConfigError(f"--format {format} reads one window per text; a model trained with --long-text "
                          f"{long_text} exports as --format saved_model")
    if long_text is not None and getattr(long_text, "apart", False):
        raise ConfigError(f"--format {format} reads a pair in one sequence; a model trained with --pairs siamese "
                          "exports as --format saved_model")
    if getattr(getattr(model, "config", None), "head", "dense") == "bilstm":
        raise ConfigError(f"--format {format} takes dense heads: {BILSTM_EXPORT}")


def thresholds_tensor(label_names: Sequence[str], thresholds: Sequence[float] | None) -> tf.Tensor:
    return tf.constant(list(thresholds) if thresholds else [0.5] * max(len(label_names), 1), tf.float32)


def export_record(model: tf_keras.Model, label_names: Sequence[str], format: str, quantize: str | None,
                  outputs: Sequence[str], info: dict | None = None, thresholds: Sequence[float] | None = None) -> dict:
    """The `assets.extra/tfhub_transfer_model.json` of a TFLite or ONNX export."""
    record = {"format": format, "quantize": quantize, "task": model.config.task, "labels": list(label_names),
              "thresholds": list(thresholds) if thresholds else None, "outputs": list(outputs),
              "pair": bool(getattr(model.config, "pair", False)), "seq_length": model.seq_length,
              "model": model.name, "config": dataclasses.asdict(model.config), **(info or {})}
    if model.spec is not None:
        record.update(encoder=model.spec.name, encoder_handle=model.spec.encoder,
                      preprocessor_handle=model.spec.preprocessor)
    return record


def read_record(path: str | Path) -> dict:
    info = storage.join(path, EXTRA_DIR, MODEL_INFO)  # local, or an export on a URL
    return json.loads(storage.read_text(info)) if storage.exists(info) else {}


def label_names_of(record: dict, outputs: dict) -> list[str] | None:
    """Label names for each row of `outputs` (single-label ids, multi-label decisions), else None."""
    labels = record.get("labels") or []
    if "label_ids" in outputs and labels:
        return [labels[int(i)] for i in outputs["label_ids"]]
    if "predicted" in outputs and labels:
        return [",".join(n for n, on in zip(labels, row) if on) for row in outputs["predicted"]]
    return None
