"""Variants of an encoder this package wrote: a bfloat16 copy, a copy that reads packed rows, or both.

Encoders this package writes (the default, tiny fixtures, conversions, continued pretraining)
carry their BERT config, so they can be rebuilt with other settings and saved again, with the
same weights: with `compute_dtype` bfloat16 (bfloat16 attention and feed-forward matmuls; float32
variables, layer norms, residual stream and outputs; see encoders.dtypes for when that pays), and
with `packed_segments` (several examples packed into one row, see preprocessing.packing). A variant
is written once, beside its source (`NAME-bfloat16`, `NAME-packed`, `NAME-bfloat16-packed`), and
rewritten when the source's weights or the variant's recipe change. Published Hub encoders cannot be
rebuilt: their config is not known.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.build.bert import build_bert
from tfhub_transfer.encoders.build.config import COMPUTE_DTYPES, BertConfig
from tfhub_transfer.encoders.build.hub_writer import (
    ENCODER_DIR,
    METADATA_FILE,
    PAIR_FORMAT,
    PREPROCESSOR_DIR,
    EncoderModule,
    _unique,
    save_encoder_module,
)
from tfhub_transfer.encoders.dtypes import bfloat16_fallback
from tfhub_transfer.encoders.resolve import on_storage, read_metadata, resolve_encoder
from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.files import atomic_directory, refuse_url

_SUFFIXES = ("-packed", "-bfloat16", "-float32")


def encoder_variant(name: str, dtype: str | None = None, preprocessor: str | None = None,
                    packed: bool | None = None, cpu_flags: frozenset[str] | set[str] | None = None,
                    accelerator: bool | None = None) -> str:
    """The directory of `name`'s variant computing in `dtype` and reading packed rows when `packed`
    (None keeps the source's setting); `name` itself when nothing changes. Written once.

    Where bfloat16 would be emulated (`bfloat16_fallback`), prints one line saying so and keeps float32.
    """
    if dtype is not None and dtype not in COMPUTE_DTYPES:
        raise ConfigError(f"--dtype must be one of {COMPUTE_DTYPES}, not {dtype!r}")
    if dtype == "bfloat16" and (reason := bfloat16_fallback(cpu_flags, accelerator)):
        print(f"--dtype bfloat16: {reason}; using float32 instead.", flush=True)
        dtype = None
    if dtype in (None, "float32") and not packed:
        return name
    spec = resolve_encoder(name, preprocessor)
    if on_storage(spec.encoder):
        refuse_url(spec.encoder, "--encoder", "its --dtype / --pack copy is rebuilt beside it with local tools; "
                   "copy the encoder to this machine, or drop --dtype and --pack")
    source = Path(spec.encoder).parent
    meta = read_metadata(source) if source.is_dir() else {}
    if meta.get("format") != PAIR_FORMAT:
        raise EncoderError(_not_rebuildable(spec.encoder, dtype, packed))
    have = (meta.get("compute_dtype", "float32"), bool(meta["config"].get("packed_segments")))
    want = (dtype or have[0], have[1] if packed is None else packed)
    if want == have:
        return str(source)
    target = source.with_name(_variant_name(source.name, *want))
    written = read_metadata(target)
    if (written.get("source_fingerprint") != _fingerprint(source)
            or written.get("config") != _variant_config(meta, *want).to_dict()):
        write_variant(source, target, *want)
    return str(target)


def _not_rebuildable(encoder: str, dtype: str | None, packed: bool | None) -> str:
    if packed:
        return (f"--pack needs an encoder written by this package; {encoder} cannot be rebuilt to read packed "
                "rows (its architecture is not known). Drop --pack, or convert the checkpoint with "
                "`tfhub-transfer encoders convert`.")
    return (f"--dtype {dtype} needs an encoder written by this package; {encoder} is float32 inside and a "
            "mixed-precision policy cannot reach into a SavedModel (tensorflow/hub#466). Use --dtype float32, "
            "or convert the checkpoint with `tfhub-transfer encoders convert`.")


def _variant_name(source_name: str, dtype: str, packed: bool) -> str:
    stem = source_name
    for suffix in _SUFFIXES:
        stem = stem.removesuffix(suffix)
    return stem + ("" if dtype == "float32" else f"-{dtype}") + ("-packed" if packed else "")


def _fingerprint(pair_dir: Path) -> str:
    index = pair_dir / "encoder" / "variables" / "variables.index"
    stat = index.stat()
    return f"{stat.st_size}-{stat.st_mtime_ns}"


def _variant_config(meta: dict, dtype: str, packed: bool) -> BertConfig:
    return BertConfig.from_dict({**meta["config"], "packed_segments": packed, "compute_dtype": dtype})


@contextlib.contextmanager
def _global_policy(name: str):
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


def write_variant(source: Path, target: Path, dtype: str = "float32", packed: bool = False,
                  global_policy: str = "float32") -> Path:
    """Rebuilds the encoder pair in `source` computing in `dtype` (reading packed rows when `packed`)
    and writes it, with the same weights, to `target`.

    The layers are built under `global_policy` (never the caller's): `mixed_bfloat16` with dtype float32
    gives the whole-model mixed-precision copy (all elementwise work in bfloat16 too) that
    benchmarks/train_step_flops.py compares with."""
    meta = read_metadata(source)
    config = _variant_config(meta, dtype, packed)
    loaded = tf.saved_model.load(str(source / ENCODER_DIR))
    with _global_policy(global_policy):
        encoder, head = build_bert(config)
    # The writer saved mlm.variables as encoder + head variables in build order.
    targets = _unique(encoder.variables + head.variables)
    sources = list(loaded.mlm.variables)
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise EncoderError(f"{source}: its variables do not match its config; cannot rebuild it")
    for variable, value in zip(targets, sources):
        variable.assign(value)
    compute_dtype = dtype if global_policy == "float32" else global_policy.removeprefix("mixed_")
    info = {**meta, "config": config.to_dict(), "compute_dtype": compute_dtype,
            "source_fingerprint": _fingerprint(source), "variant_source": str(source)}
    with atomic_directory(target, overwrite=True) as tmp:  # our own copy, rewritten when stale
        vocab = source / "vocab.txt"
        if vocab.exists():
            shutil.copy(vocab, tmp / "vocab.txt")
        module = EncoderModule(encoder, head, vocab if vocab.exists() else None, meta.get("lower_case"))
        save_encoder_module(module, tmp / ENCODER_DIR)
        shutil.copytree(source / PREPROCESSOR_DIR, tmp / PREPROCESSOR_DIR)
        (tmp / METADATA_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return target
