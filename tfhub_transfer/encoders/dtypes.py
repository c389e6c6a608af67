"""Compute dtypes for encoders: a mixed_bfloat16 copy of an encoder this package wrote.

A SavedModel's functions are traced with fixed dtypes, so a Keras mixed-precision
policy set when *loading* a Hub encoder changes nothing inside it (tensorflow/hub#466):
published Hub encoders stay float32. Encoders this package writes (the default, tiny
fixtures, conversions, continued pretraining) carry their BERT config, so they can
be rebuilt under `mixed_bfloat16` (bfloat16 matmuls, float32 variables, float32
outputs) and saved again. The copy is written once, beside the float32 directory
(`NAME-bfloat16`), and rewritten when the float32 weights change.

bfloat16 pays only where the hardware computes it: a GPU, a TPU, or a CPU with bf16
instructions (x86 `avx512_bf16` / `amx_bf16`, Arm `bf16`). Elsewhere TensorFlow emulates it,
slower than float32, so `--dtype bfloat16` says so in one line and runs in float32.
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
    save_encoder_module,
)
from tfhub_transfer.encoders.resolve import read_metadata, resolve_encoder
from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.files import atomic_directory

DTYPES = ("float32", "bfloat16")
_PAIR_FORMAT = "tfhub_transfer/bert-pair/1"
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX-512 BF16 and AMX; Arm's Features line


def read_cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags (x86 `flags`, Arm `Features`), or None where they cannot be read."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def _has_accelerator() -> bool:
    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def bfloat16_fallback(cpu_flags: frozenset[str] | set[str] | None = None,
                      accelerator: bool | None = None) -> str | None:
    """Why bfloat16 would be emulated here (no GPU/TPU and no bf16 CPU instructions), or None when it is not.

    `cpu_flags` and `accelerator` default to this machine's (/proc/cpuinfo; GPUs and TPUs TensorFlow sees).
    Unknown flags (not Linux) count as capable: the request is kept.
    """
    if _has_accelerator() if accelerator is None else accelerator:
        return None
    flags = read_cpu_flags() if cpu_flags is None else frozenset(cpu_flags)
    if flags is None or any(flag in flags for flag in BF16_CPU_FLAGS):
        return None
    return (f"this CPU has no bfloat16 instructions (none of {', '.join(BF16_CPU_FLAGS)} in its flags) and no "
            "GPU or TPU is visible, so bfloat16 would be emulated and run slower than float32")


def encoder_with_dtype(name: str, dtype: str = "float32", preprocessor: str | None = None,
                       cpu_flags: frozenset[str] | set[str] | None = None, accelerator: bool | None = None) -> str:
    """`name` itself for float32; for bfloat16 the directory of its mixed_bfloat16 copy (made once).

    Where bfloat16 would be emulated (`bfloat16_fallback`), prints one line saying so and returns
    `name`: the model computes in float32.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype must be one of {DTYPES}, not {dtype!r}")
    if dtype == "float32":
        return name
    reason = bfloat16_fallback(cpu_flags, accelerator)
    if reason:
        print(f"--dtype bfloat16: {reason}; using float32 instead.", flush=True)
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
        vocab = source / "vocab.txt"
        if vocab.exists():
            shutil.copy(vocab, tmp / "vocab.txt")
        module = EncoderModule(encoder, head, vocab if vocab.exists() else None, meta.get("lower_case"))
        save_encoder_module(module, tmp / ENCODER_DIR)
        shutil.copytree(source / PREPROCESSOR_DIR, tmp / PREPROCESSOR_DIR)
        (tmp / METADATA_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return target
