"""Compute dtypes for encoders, and whether bfloat16 pays on this machine.

A SavedModel's functions are traced with fixed dtypes, so a Keras mixed-precision
policy set when *loading* a Hub encoder changes nothing inside it (tensorflow/hub#466):
published Hub encoders stay float32. Encoders this package writes carry their BERT config,
so they can be rebuilt with bfloat16 matmuls (BertConfig.compute_dtype, encoders.variants).

bfloat16 pays only where the hardware computes it: a GPU, a TPU, or a CPU with bf16
instructions (x86 `avx512_bf16` / `amx_bf16`, Arm `bf16`). Elsewhere TensorFlow emulates it,
slower than float32, so `--dtype bfloat16` says so in one line and runs in float32.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

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
