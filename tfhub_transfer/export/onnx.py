"""ONNX export of an encoder classifier on token ids, optionally with int8 weights.

Tokenisation stays outside the ONNX graph: it takes int32 `input_word_ids`, `input_mask`,
`input_type_ids` of shape [batch, seq] (any batch, seq up to the model's seq_length) and returns
the SavedModel's numeric outputs (`probabilities` and `label_ids`; `probabilities` and
`predicted` for multi-label; `score` for regression). `vocab.txt` and `tokenizer.json` beside
`model.onnx` say how to make the ids (BERT WordPiece, [CLS] text [SEP], padding 0);
`OnnxClassifier(path).predict(texts)` tokenises with tensorflow-text and runs onnxruntime.

The graph is converted by tf2onnx from the frozen Keras graph, with the encoder's exact GELU
(`erfc`, which ONNX lacks) written as `1 - erf`. `quantize="int8"` applies onnxruntime's
dynamic quantisation (per-channel int8 weights, activations quantised on the fly).
Needs the `onnx` extra: `pip install "tfhub_transfer[onnx]"` (tf2onnx, onnx, onnxruntime).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError, ExportError
from tfhub_transfer.export.graphs import erfc_as_erf, freeze
from tfhub_transfer.export.serving import (
    check_exportable,
    export_record,
    label_names_of,
    numeric_outputs,
    read_record,
    thresholds_tensor,
    write_version,
)
from tfhub_transfer.export.tokenizer import INPUT_NAMES, ServingTokenizer

MODEL_FILE = "model.onnx"
OPSET = 17


def _require_onnx():
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx
    except ImportError as err:
        raise ConfigError(f"--format onnx needs tf2onnx and onnxruntime ({err.name} is not installed): "
                          "pip install 'tfhub_transfer[onnx]'") from None
    return tf2onnx


def _ids_function(model: tf_keras.Model, label_names: Sequence[str], thresholds: Sequence[float] | None):
    task, limits = model.config.task, thresholds_tensor(label_names, thresholds)

    def run(input_word_ids, input_mask, input_type_ids):
        inputs = {"input_word_ids": input_word_ids, "input_mask": input_mask, "input_type_ids": input_type_ids}
        return numeric_outputs(task, model(inputs, training=False), limits)

    signature = [tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUT_NAMES]
    return tf.function(run, input_signature=signature, autograph=False)


def _rename(model_proto, names: dict[str, str]) -> None:
    """Renames graph inputs/outputs (tf2onnx keeps TensorFlow's "Identity:0" style names)."""
    graph = model_proto.graph
    for value in list(graph.input) + list(graph.output):
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]


def convert_onnx(model: tf_keras.Model, label_names: Sequence[str], thresholds: Sequence[float] | None = None,
                 quantize: str | None = None, opset: int = OPSET) -> bytes:
    """The classifier on token ids as a serialised ONNX model (int8 dynamic-range weights with `quantize`)."""
    tf2onnx = _require_onnx()
    frozen = freeze(_ids_function(model, label_names, thresholds)).rewritten(erfc_as_erf)
    try:
        model_proto, _ = tf2onnx.convert.from_graph_def(frozen.graph_def, input_names=frozen.inputs,
                                                        output_names=frozen.outputs, opset=opset)
    except Exception as err:  # tf2onnx raises bare exceptions naming the op it cannot convert
        raise ExportError(f"ONNX conversion failed: {type(err).__name__}: {str(err).strip()[:400]}") from None
    names = {t: t.split(":")[0] for t in frozen.inputs}
    names.update(zip(frozen.outputs, sorted(frozen.structured_outputs)))  # a dict's outputs flatten sorted
    _rename(model_proto, names)
    content = model_proto.SerializeToString()
    return quantize_int8(content) if quantize == "int8" else content


def quantize_int8(content: bytes) -> bytes:
    """onnxruntime's dynamic quantisation: int8 weights, activations quantised per batch.

    One weight scale per output channel: on the default encoder (untrained head, 64 SST-2 sentences)
    it cut the largest probability change from fp32 from 0.016 (one scale per tensor) to 0.010."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(content)
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
        return target.read_bytes()


def session(model_path: str | Path, num_threads: int | None = None):
    """An onnxruntime CPU session for `model_path`."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
    return onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def export_onnx(model: tf_keras.Model, label_names: Sequence[str], out_dir: str | Path = "saved_models",
                name: str = "classifier", version: int | None = None, quantize: str | None = None,
                extra_files: dict[str, bytes] | None = None, info: dict | None = None,
                thresholds: Sequence[float] | None = None) -> Path:
    """Writes `out_dir/name/version/` with `model.onnx`, `vocab.txt`, `tokenizer.json`; returns its path."""
    check_exportable(model, "onnx")
    tokenizer = ServingTokenizer.of_model(model)
    content = convert_onnx(model, label_names, thresholds, quantize)
    outputs = numeric_outputs(model.config.task, tf.zeros([1, max(len(label_names), 1)]),
                              thresholds_tensor(label_names, thresholds))
    record = export_record(model, label_names, "onnx", quantize, sorted(outputs), info, thresholds)
    record["inputs"] = {n: "int32 [batch, seq]; see tokenizer.json" for n in INPUT_NAMES}

    def write(tmp: Path) -> None:
        (tmp / MODEL_FILE).write_bytes(content)
        tokenizer.write(tmp, model.seq_length)

    return write_version(out_dir, name, version, write, record, extra_files)


class OnnxClassifier:
    """Loads an ONNX export; `run` takes token ids, `predict` raw strings (tokenised with tensorflow-text).

    Args:
      path: the export directory (its model.onnx and the tokenizer written beside it).
      num_threads: onnxruntime's intra-op threads (None: its default).

    Example:
      >>> from tfhub_transfer import OnnxClassifier, train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> path = result.model.export("models", "reviews_onnx", format="onnx")
      >>> OnnxClassifier(path).predict(["A wonderful, moving film."])["probabilities"].shape
      (1, 2)
    """

    def __init__(self, path: str | Path, num_threads: int | None = None):
        self.path = Path(path)
        if not (self.path / MODEL_FILE).exists():
            raise ExportError(f"{self.path} is not an ONNX export (no {MODEL_FILE}); pass "
                              "saved_models/<name>/<version> of an export with --format onnx")
        _require_onnx()
        self.info = read_record(self.path)
        self.tokenizer = ServingTokenizer.read(self.path)
        self.seq_length = int(self.info.get("seq_length", 128))
        self.session = session(self.path / MODEL_FILE, num_threads)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs for int32 encoder inputs."""
        feed = {n: np.asarray(inputs[n], np.int32) for n in INPUT_NAMES}
        return dict(zip(self.output_names, self.session.run(self.output_names, feed)))

    def encode(self, texts: Sequence[str], texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.encode(list(texts), self.seq_length, None if texts_b is None else list(texts_b))
        return {k: v.numpy() for k, v in encoded.items()}

    def predict(self, texts: Sequence[str], batch_size: int = 64, texts_b: Sequence[str] | None = None) -> dict:
        """Outputs for raw strings (and `texts_b` for pair models), batched; `labels` added."""
        parts = []
        for start in range(0, len(texts), batch_size):
            second = None if texts_b is None else texts_b[start:start + batch_size]
            parts.append(self.run(self.encode(texts[start:start + batch_size], second)))
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
        labels = label_names_of(self.info, merged)
        if labels is not None:
            merged["labels"] = labels
        return merged
