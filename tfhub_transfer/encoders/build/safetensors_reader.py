"""Reads `.safetensors` files with numpy alone (no PyTorch, no safetensors package)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from tfhub_transfer.errors import EncoderError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Returns every tensor of a safetensors file as a numpy array (bf16 widened to f32)."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise EncoderError(f"{path} is not a safetensors file (too short)")
    (header_len,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (ValueError, UnicodeDecodeError):
        raise EncoderError(f"{path} is not a safetensors file (bad header)") from None
    body = memoryview(data)[8 + header_len :]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        dtype = entry["dtype"]
        if dtype == "BF16":
            raw = np.frombuffer(body[start:end], dtype=np.uint16)
            array = _bf16_to_f32(raw)
        elif dtype in _DTYPES:
            array = np.frombuffer(body[start:end], dtype=_DTYPES[dtype])
        else:
            raise EncoderError(f"{path}: tensor {name} has unsupported dtype {dtype}")
        tensors[name] = array.reshape(entry["shape"]).copy()
    return tensors
