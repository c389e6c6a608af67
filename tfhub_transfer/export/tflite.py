"""TFLite export of an encoder classifier that takes raw strings, optionally with int8 weights.

The graph tokenises with tensorflow-text's FastBertTokenizer (TFLite kernels: `FastBertNormalize`,
`FastWordpieceTokenizeWithOffsets`) and packs with plain ops (export.tokenizer); everything
else is a TFLite builtin (the encoder's exact GELU becomes the `GELU` builtin). Running it needs
tensorflow-text's op registrar:

    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps
    import tensorflow_text
    interpreter = InterpreterWithCustomOps(
        custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS, model_path="model.tflite")
    interpreter.get_signature_runner()(text=np.array(["a sentence"]))  # {"probabilities", "label_ids"}

`TFLiteClassifier(path).predict(texts)` does that. Layout: `OUT/NAME/VERSION/model.tflite` and
`assets.extra/tfhub_transfer_model.json` (labels, task, how it was made).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text
import tf_keras

from tfhub_transfer.errors import ExportError
from tfhub_transfer.export.graphs import expand_new_axes, freeze
from tfhub_transfer.export.serving import (
    check_exportable,
    export_record,
    label_names_of,
    numeric_outputs,
    read_record,
    thresholds_tensor,
    write_version,
)
from tfhub_transfer.export.tokenizer import ServingTokenizer, pack_dense

MODEL_FILE = "model.tflite"


def _serving_function(model: tf_keras.Model, tokenizer: ServingTokenizer, label_names: Sequence[str],
                      thresholds: Sequence[float] | None):
    task, seq_length = model.config.task, model.seq_length
    limits = thresholds_tensor(label_names, thresholds)

    def run(*texts):
        inputs = pack_dense([tokenizer.tokenize(t) for t in texts], seq_length, tokenizer.special_ids)
        return numeric_outputs(task, model(inputs, training=False), limits)

    names = ("text_a", "text_b") if getattr(model.config, "pair", False) else ("text",)
    signature = [tf.TensorSpec([None], tf.string, name=n) for n in names]
    return tf.function(run, input_signature=signature, autograph=False)


def convert_tflite(model: tf_keras.Model, label_names: Sequence[str], thresholds: Sequence[float] | None = None,
                   quantize: str | None = None) -> bytes:
    """The raw-string classifier as a TFLite flatbuffer (int8 dynamic-range weights with `quantize`)."""
    tokenizer = ServingTokenizer.of_model(model)
    frozen = freeze(_serving_function(model, tokenizer, label_names, thresholds)).rewritten(expand_new_axes)
    function, holder = frozen.as_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.allow_custom_ops = True  # the tokenizer's ops; their kernels come from tensorflow-text
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
    try:
        return converter.convert()
    except Exception as err:  # the converter raises its own ConverterError with MLIR diagnostics
        raise ExportError(f"TFLite conversion failed: {str(err).strip()[-400:]}") from None


def interpreter(model_path: str | Path | None = None, model_content: bytes | None = None,
                num_threads: int | None = None):
    """A TFLite interpreter with tensorflow-text's kernels registered."""
    from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

    with warnings.catch_warnings():  # tf.lite.Interpreter points to ai_edge_litert; it still works in TF 2.20
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return InterpreterWithCustomOps(
            custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS,
            model_path=None if model_path is None else str(model_path), model_content=model_content,
            num_threads=num_threads)


def _check_runs(content: bytes, pair: bool) -> None:
    probe = {"text_a": np.array(["a"]), "text_b": np.array([""])} if pair else {"text": np.array(["a", ""])}
    try:
        interpreter(model_content=content).get_signature_runner()(**probe)
    except (RuntimeError, ValueError) as err:
        raise ExportError(f"the TFLite model does not run: {str(err).strip()[:300]}") from None


def export_tflite(model: tf_keras.Model, label_names: Sequence[str], out_dir: str | Path = "saved_models",
                  name: str = "classifier", version: int | None = None, quantize: str | None = None,
                  extra_files: dict[str, bytes] | None = None, info: dict | None = None,
                  thresholds: Sequence[float] | None = None) -> Path:
    """Writes `out_dir/name/version/model.tflite` (raw strings in) atomically and returns the version's path."""
    check_exportable(model, "tflite")
    content = convert_tflite(model, label_names, thresholds, quantize)
    pair = bool(getattr(model.config, "pair", False))
    _check_runs(content, pair)
    outputs = numeric_outputs(model.config.task, tf.zeros([1, max(len(label_names), 1)]),
                              thresholds_tensor(label_names, thresholds))
    record = export_record(model, label_names, "tflite", quantize, sorted(outputs), info, thresholds)
    record["runtime"] = ("tensorflow.lite.python.interpreter.InterpreterWithCustomOps(custom_op_registerers="
                         "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS)")
    return write_version(out_dir, name, version, lambda tmp: (tmp / MODEL_FILE).write_bytes(content),
                         record, extra_files)


class TFLiteClassifier:
    """Loads a TFLite export and predicts on raw strings.

    Args:
      path: the export directory (or its .tflite file).
      num_threads: the interpreter's threads (None: TFLite's default).

    Example:
      >>> from tfhub_transfer import TFLiteClassifier, train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> path = result.model.export("models", "reviews_lite", format="tflite")
      >>> TFLiteClassifier(path).predict(["A wonderful, moving film."])["probabilities"].shape
      (1, 2)
    """

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.path = Path(path)
        if not (self.path / MODEL_FILE).exists():
            raise ExportError(f"{self.path} is not a TFLite export (no {MODEL_FILE}); pass "
                              "saved_models/<name>/<version> of an export with --format tflite")
        self.info = read_record(self.path)
        self.interpreter = interpreter(self.path / MODEL_FILE, num_threads=num_threads)
        self.runner = self.interpreter.get_signature_runner()

    def predict(self, texts: Sequence[str], batch_size: int = 64, texts_b: Sequence[str] | None = None) -> dict:
        """The model's outputs for `texts` (and `texts_b` for pair models), batched; `labels` added."""
        parts = []
        for start in range(0, len(texts), batch_size):
            chunk = np.array(list(texts[start:start + batch_size]), dtype=object)
            if texts_b is None:
                parts.append(self.runner(text=chunk))
            else:
                parts.append(self.runner(text_a=chunk, text_b=np.array(list(texts_b[start:start + batch_size]),
                                                                        dtype=object)))
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        labels = label_names_of(self.info, merged)
        if labels is not None:
            merged["labels"] = labels
        return merged
