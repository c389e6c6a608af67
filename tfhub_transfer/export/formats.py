"""One entry point for every serving format: write an export, or open one whatever its format.

    export_model(model, labels, "saved_models", "reviews", format="tflite", quantize="int8")
    open_export("saved_models/reviews/3").predict(["a sentence"])  # {"probabilities", "labels", ...}
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.errors import ExportError
from tfhub_transfer.export import onnx, tflite
from tfhub_transfer.export.saved_model import ExportedClassifier, export_classifier
from tfhub_transfer.export.serving import FORMATS, QUANTIZATIONS, check_format

__all__ = ["FORMATS", "QUANTIZATIONS", "check_format", "export_model", "open_export"]


def export_model(model: tf_keras.Model, label_names: Sequence[str], out_dir: str | Path = "saved_models",
                 name: str = "classifier", version: int | None = None, format: str = "saved_model",
                 quantize: str | None = None, **options) -> Path:
    """Writes `out_dir/name/version` in `format` (saved_model, tflite, onnx); returns its path.

    `quantize="int8"` (tflite, onnx): dynamic-range int8 weights. Options as for `export_classifier`
    (extra_files, info, thresholds).
    """
    check_format(format, quantize)
    if format == "saved_model":
        return export_classifier(model, label_names, out_dir, name, version, **options)
    writer = tflite.export_tflite if format == "tflite" else onnx.export_onnx
    return writer(model, label_names, out_dir, name, version, quantize=quantize, **options)


def open_export(path: str | Path):
    """The predictor of an export in any format: `.predict(texts, batch_size, texts_b)` and `.info`.

    An export on a URL is read only when its `_COMPLETE` marker is there and agrees with its files; a
    TFLite or ONNX export is then copied to a local temporary directory (their runtimes read local files).

    Args:
      path: an export directory OUT/NAME/VERSION (SavedModel, TFLite or ONNX; local or a URL).

    Returns:
      An `ExportedClassifier`, `TFLiteClassifier` or `OnnxClassifier`.

    Example:
      >>> from tfhub_transfer import open_export, train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> out = open_export("models/reviews/1").predict(["A wonderful, moving film."])
      >>> out["labels"][0] in ("negative", "positive"), out["probabilities"].shape
      (True, (1, 2))
    """
    if storage.is_url(path):
        storage.check_complete(path, "the export", ExportError)
        if not storage.exists(storage.join(path, "saved_model.pb")):
            path = storage.download_tree(path, tempfile.mkdtemp(prefix="tfhub_transfer-export-"))
    path = storage.location(path)
    if storage.is_url(path):
        return ExportedClassifier(path)
    if (path / tflite.MODEL_FILE).exists():
        return tflite.TFLiteClassifier(path)
    if (path / onnx.MODEL_FILE).exists():
        return onnx.OnnxClassifier(path)
    if (path / "saved_model.pb").exists() or not path.exists():
        return ExportedClassifier(path)
    raise ExportError(f"{path} is not an export: it holds no saved_model.pb, {tflite.MODEL_FILE} or "
                      f"{onnx.MODEL_FILE}; pass saved_models/<name>/<version>.")
