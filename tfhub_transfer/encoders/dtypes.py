"""Compute dtypes for encoders: a mixed_bfloat16 copy of an encoder this package wrote.

A SavedModel's functions are traced with fixed dtypes, so a Keras mixed-precision
policy set when *loading* a Hub encoder changes nothing inside it (tensorflow/hub#466):
published Hub encoders stay float32. Encoders this package writes (the default, tiny
fixtures, conversions, continued pretraining) carry their BERT config, so they can
be rebuilt under `mixed_bfloat16` (bfloat16 matmuls, float32 variables, float32
outputs) and saved again. The copy is written once, beside the float32 directory
(`NAME-bfloat16`), and rewritten when the float32 weights change.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.build.bert import build_bert
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.hub_writer import (
    ENCODER_DIR,
    METADATA_FILE,
    PREPROCESSOR_DIR,
    EncoderModule,
    _unique,
)
from tfhub_transfer.encoders.resolve import read_metadata, resolve_encoder
from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.files import atomic_directory

DTYPES = ("float32", "bfloat16")
_PAIR_FORMAT = "tfhub_transfer/bert-pair/1"


def encoder_with_dtype(name: str, dtype: str = "float32", preprocessor: str | None = None) -> str:
    """`name` itself for float32; for bfloat16 the directory of its mixed_bfloat16 copy (made once)."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {DTYPES}, not {dtype!r}")
    if dtype == "float32":
        return name
    spec = resolve_encoder(name, preprocessor)
    source = Path(spec.encoder).parent
    meta = read_metadata(source) if source.is_dir() else {}
    if meta.get("format") != _PAIR_FORMAT:
        raise EncoderError(
            f"--dtype bfloat16 needs an encoder written by this package; {spec.encoder} is float32 "
            "inside and a mixed-precision policy cannot reach into a SavedModel (tensorflow/hub#466). "
            "Use --dtype float32, or convert the checkpoint with `tfhub-transfer encoders convert`."
        )
    if meta.get("compute_dtype") == dtype:
        return str(source)
    target = source.with_name(f"{source.name.removesuffix('-float32')}-{dtype}")
    if read_metadata(target).get("source_fingerprint") != _fingerprint(source):
        write_compute_dtype_copy(source, target, dtype)
    return str(target)


def _fingerprint(pair_dir: Path) -> str:
    index = pair_dir / "encoder" / "variables" / "variables.index"
    stat = index.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


@contextlib.contextmanager
def _policy(name: str):
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def write_compute_dtype_copy(source: Path, target: Path, dtype: str = "bfloat16") -> Path:
    """Rebuilds the encoder pair in `source` under mixed_`dtype` and writes it to `target`."""

    meta = read_metadata(source)
    loaded = tf.saved_model.load(str(source / ENCODER_DIR))
    with _policy(f"mixed_{dtype}"):
        encoder, head = build_bert(BertConfig.from_dict(meta["config"]))
    # The writer saved mlm.variables as encoder + head variables in build order.
    targets = _unique(encoder.variables + head.variables)
    sources = list(loaded.mlm.variables)
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise EncoderError(f"{source}: its variables do not match its config; cannot change its dtype")
    for variable, value in zip(targets, sources):
        variable.assign(value)
    info = {**meta, "compute_dtype": dtype, "source_fingerprint": _fingerprint(source),
            "float32_source": str(source)}
    with atomic_directory(target, overwrite=True) as tmp:  # our own copy, rewritten when stale
        tf.saved_model.save(EncoderModule(encoder, head), str(tmp / ENCODER_DIR))
        shutil.copytree(source / PREPROCESSOR_DIR, tmp / PREPROCESSOR_DIR)
        if (source / "vocab.txt").exists():
            shutil.copy(source / "vocab.txt", tmp / "vocab.txt")
        (tmp / METADATA_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return target
