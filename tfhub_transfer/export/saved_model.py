"""Exports a trained model as a SavedModel whose `serving_default` takes raw strings.

Layout: `<out_dir>/<name>/<version>/` (TF Serving). The version is written to a
temporary directory and renamed into place, so an interrupted export never
leaves a half-written version and the previous one keeps serving.

Like TF's tutorial model, the loaded root object is callable on a string vector:
`tf.saved_model.load(path)(tf.constant(["text"]))` returns the same dict as
`.signatures["serving_default"](text=...)` (pair models: `loaded(text_a, text_b)`).
Unlike the tutorial's, that dict holds the serving outputs (probabilities, label ids and
names, or a score), not raw logits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (the exported graph uses its ops)
import tf_keras
from google.protobuf.message import DecodeError

from tfhub_transfer import storage
from tfhub_transfer.encoders.host_io import save_options
from tfhub_transfer.errors import ExportError
from tfhub_transfer.files import check_name, versioned_directory
from tfhub_transfer.preprocessing.tokens import align_words

EXTRA_DIR = "assets.extra"
MODEL_INFO = "tfhub_transfer_model.json"


def _serving_outputs(task: str, outputs: tf.Tensor, label_names: tf.Tensor, thresholds: tf.Tensor) -> dict:
    outputs = tf.cast(outputs, tf.float32)
    if task == "regression":
        return {"score": outputs[:, 0]}
    if task == "multi_label":
        probabilities = tf.sigmoid(outputs)
        predicted = probabilities >= thresholds
        names = tf.where(predicted, label_names[tf.newaxis, :], "")
        joined = tf.strings.reduce_join(names, axis=-1, separator=",")
        return {"probabilities": probabilities, "predicted": tf.cast(predicted, tf.int32),
                "labels": _tidy(joined)}
    probabilities = tf.nn.softmax(outputs)
    label_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
    return {"probabilities": probabilities, "label_ids": label_ids,
            "labels": tf.gather(label_names, label_ids)}


def _tidy(joined: tf.Tensor) -> tf.Tensor:
    """Drops the empty names left by unselected labels: ",a,,b," -> "a,b"."""
    squeezed = tf.strings.regex_replace(joined, ",+", ",")
    return tf.strings.regex_replace(squeezed, "^,|,$", "")


class _ClassifierServing(tf.Module):
    """Raw strings (or pairs) -> the task's outputs: class probabilities and names, labels, or a score."""

    def __init__(self, model: tf_keras.Model, label_names: Sequence[str], seq_length: int,
                 thresholds: Sequence[float] | None = None):
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

        self.label_names = tf.constant(list(label_names) or [""])
        task = getattr(model.config, "task", "single_label")
        self.thresholds = tf.constant(
            list(thresholds) if thresholds else [0.5] * max(len(label_names), 1), tf.float32)

        long_text = getattr(model, "long_text", None)  # long texts: the same windows as in training

        def run(text, text_b=None):
            inputs = text if preprocessor is None else preprocessor.encode(text, seq_length, text_b, long_text)
            return _serving_outputs(task, model(inputs, training=False), self.label_names, self.thresholds)

        if getattr(model.config, "pair", False):
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a"),
                                          tf.TensorSpec([None], tf.string, name="text_b")])
            def serve(text_a, text_b):
                return run(text_a, text_b)
        else:
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
            def serve(text):
                return run(text)

        self.serve = serve


def export_classifier(
    model: tf_keras.Model,
    label_names: Sequence[str],
    out_dir: str | Path = "saved_models",
    name: str = "classifier",
    version: int | None = None,
    extra_files: dict[str, bytes] | None = None,
    info: dict | None = None,
    thresholds: Sequence[float] | None = None,
) -> Path:
    """Writes `out_dir/name/version` atomically and returns its path.

    Multi-label exports predict a label where its probability reaches its threshold
    (`thresholds`, tuned on validation by `train`; 0.5 by default).
    """
    model_dir = storage.join(out_dir, check_name(name))  # a URL stays a URL
    seq_length = getattr(model.config, "seq_length", None)
    module = _ClassifierServing(model, label_names, seq_length, thresholds)
    task = getattr(model.config, "task", "single_label")
    record = {"task": task, "labels": list(label_names), "model": model.name,
              "config": dataclasses.asdict(model.config), **(info or {})}
    if model.spec is not None:
        record.update(encoder=model.spec.name, encoder_handle=model.spec.encoder,
                      preprocessor_handle=model.spec.preprocessor)
    return write_export(module, model, model_dir, version, record, extra_files)


class ExportedClassifier:
    """Loads an exported classifier and predicts on raw strings.

    Args:
      path: the export directory OUT/NAME/VERSION (local or a URL).

    Example:
      >>> from tfhub_transfer import ExportedClassifier, train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> exported = ExportedClassifier("models/reviews/1")
      >>> exported.predict(["A wonderful, moving film."])["probabilities"].shape
      (1, 2)
    """

    def __init__(self, path: str | Path):
        self.path = storage.location(path)  # an export on a URL is loaded from there (gs://, ram://)
        if not storage.exists(storage.join(self.path, "saved_model.pb")):
            raise ExportError(
                f"{self.path} is not an exported model (no saved_model.pb); pass "
                f"saved_models/<name>/<version>."
            )
        storage.check_complete(self.path, "the export", ExportError)
        try:
            self.loaded = tf.saved_model.load(str(self.path))
            self.signature = self.loaded.signatures["serving_default"]
            info_file = storage.join(self.path, EXTRA_DIR, MODEL_INFO)
            self.info = json.loads(storage.read_text(info_file)) if storage.exists(info_file) else {}
        except (OSError, ValueError, KeyError, IndexError, tf.errors.OpError, DecodeError) as err:
            raise ExportError(f"{self.path} cannot be loaded: the export looks damaged or incomplete "
                              f"({type(err).__name__}: {str(err).strip()[:200]}). Export it again "
                              "(tfhub-transfer export --run ...).") from None

    def predict(
        self, texts: Sequence[str], batch_size: int = 64, texts_b: Sequence[str] | None = None
    ) -> dict:
        """Outputs of `serving_default` for `texts` (and `texts_b` for pair models), batched."""
        import numpy as np

        parts = []
        for start in range(0, len(texts), batch_size):
            chunk = tf.constant(list(texts[start : start + batch_size]))
            if texts_b is None:
                out = self.signature(text=chunk)
            else:
                second = tf.constant(list(texts_b[start : start + batch_size]))
                out = self.signature(text_a=chunk, text_b=second)
            parts.append({k: v.numpy() for k, v in out.items()})
        if not parts:
            return {"probabilities": np.zeros((0, 0)), "label_ids": np.zeros(0, int), "labels": []}
        merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if "labels" in merged:
            merged["labels"] = [b.decode("utf-8") for b in merged["labels"]]
        return merged


class _TaggerServing(tf.Module):
    """Sentences -> whitespace words -> one tag per word (padded with "" to the longest sentence)."""

    def __init__(self, model: tf_keras.Model, tag_names: Sequence[str], seq_length: int):
        super().__init__(name="tagger_serving")
        preprocessor = model.preprocessor
        self.preprocessing = preprocessor.module
        self.model_variables = list(model.variables)
        self.tag_names = tf.constant(list(tag_names))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(text):
            words = tf.strings.split(text)
            inputs, keep = align_words(preprocessor, words, seq_length)
            ids = tf.argmax(model(inputs, training=False), axis=-1, output_type=tf.int32)
            kept = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
            tags = tf.RaggedTensor.from_tensor(tf.gather(self.tag_names, ids), lengths=kept)
            cut = words.row_lengths() - tf.cast(kept, tf.int64)
            filler = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(cut)], "O"), cut)
            return {"tags": tf.concat([tags, filler], axis=1).to_tensor(""),
                    "words": words.to_tensor(""), "num_words": tf.cast(words.row_lengths(), tf.int32)}

        self.serve = serve


def export_tagger(model: tf_keras.Model, tag_names: Sequence[str], out_dir: str | Path = "saved_models",
                  name: str = "tagger", version: int | None = None, info: dict | None = None,
                  extra_files: dict[str, bytes] | None = None) -> Path:
    """Writes a tagger whose `serving_default` maps sentences to a tag per whitespace word."""
    model_dir = storage.join(out_dir, check_name(name))  # a URL stays a URL
    module = _TaggerServing(model, tag_names, model.config.seq_length)
    record = {"task": "tokens", "labels": list(tag_names), "model": model.name,
              "config": dataclasses.asdict(model.config), **(info or {})}
    return write_export(module, model, model_dir, version, record, extra_files)


def write_export(module: tf.Module, model: tf_keras.Model, model_dir: Path, version: int | None, record: dict,
                 extra_files: dict[str, bytes] | None = None) -> Path:
    """Saves `module` (its `serve` as `serving_default`) plus `assets.extra/` as `model_dir/<version>`.

    Written beside and renamed into place; the version (the given one, or the next free one)
    is claimed atomically, so concurrent exports never share or replace a version.
    """
    make_callable(module)

    def save(tmp: Path) -> None:
        with tensorflow_info_hidden():
            tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve},
                                options=save_options(model.distribute_strategy))

    return write_version(storage.parent(model_dir), storage.basename(model_dir), version, save, record, extra_files)


@contextlib.contextmanager
def tensorflow_info_hidden() -> Iterator[None]:
    """Hides TensorFlow's Python INFO logs in the block, then restores the level.

    In a notebook TensorFlow logs at INFO to stdout, so each save printed "INFO:tensorflow:Assets
    written to: <the temporary directory>" twice; the path the export returns is the one that matters.

    Example:
        >>> with tensorflow_info_hidden():
        ...     tf.saved_model.save(module, path)
    """
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def make_callable(module: tf.Module) -> None:
    """Makes `module.serve` the loaded root's `__call__`, so the export is called like any SavedModel.

    Args:
        module: a serving module whose `serve` is a `tf.function` with an input signature.

    Example:
        >>> make_callable(module)  # then: tf.saved_model.load(path)(tf.constant(["good film"]))
    """
    # The loader gives the restored object a `__call__` when the saved one has a function under
    # that name; the same function object is saved once, whichever names refer to it.
    module.__call__ = module.serve


def write_version(out_dir: str | Path, name: str, version: int | None, write: Callable[[Path], None],
                  record: dict, extra_files: dict[str, bytes] | None = None) -> Path:
    """Writes `out_dir/name/<version>` atomically: `write(tmp)` fills it, then the record and extra files.

    `out_dir` may be a URL: `tmp` is then a local staging directory, published with `_COMPLETE` last.
    """
    with versioned_directory(storage.join(out_dir, check_name(name)), version) as (tmp, claimed):
        write(tmp)
        extra = tmp / EXTRA_DIR
        extra.mkdir(exist_ok=True)
        (extra / MODEL_INFO).write_text(json.dumps(record, indent=2), encoding="utf-8")
        for filename, content in (extra_files or {}).items():
            (extra / filename).write_bytes(content)
    return claimed.path
