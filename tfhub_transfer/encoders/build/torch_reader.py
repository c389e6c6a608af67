"""Reads PyTorch `pytorch_model.bin` checkpoints with numpy alone (no PyTorch).

Many Hub checkpoints (klue/roberta-base, monologg/koelectra-*) predate safetensors. A `torch.save` file since
PyTorch 1.6 is a zip: `*/data.pkl` (a pickle of the state dict) and `*/data/<key>` (each storage's raw
little-endian bytes). The pickle is read by an Unpickler that knows only the few globals a state dict
uses (tensor rebuilding, storage types, OrderedDict) and refuses every other, so loading a file cannot run
code. The legacy (pre-1.6, non-zip) format is refused with the conversion to safetensors.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

from tfhub_transfer.errors import EncoderError

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "HalfStorage": np.float16, "BFloat16Storage": "bfloat16",
    "DoubleStorage": np.float64, "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = _STORAGE_DTYPES[name]


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_unused) -> np.ndarray:
    if not size:
        return np.array(storage[offset])  # a 0-d array
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.array(view)  # a copy: contiguous, independent of the storage


def _rebuild_parameter(data: np.ndarray, *_unused) -> np.ndarray:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    _GLOBALS = {
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("collections", "OrderedDict"): collections.OrderedDict,
    }

    def __init__(self, file, archive: zipfile.ZipFile, root: str, source: Path):
        super().__init__(file)
        self.archive, self.root, self.source = archive, root, source

    def find_class(self, module: str, name: str):
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise EncoderError(f"{self.source}: holds {module}.{name}, which is not part of a plain state dict; "
                           "convert it to model.safetensors with PyTorch")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise EncoderError(f"{self.source}: unsupported persistent id {kind!r}")
        raw = self.archive.read(f"{self.root}/data/{key}")
        if storage_type.dtype == "bfloat16":  # widened to float32, as the safetensors reader does
            return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        return np.frombuffer(raw, storage_type.dtype)


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a `torch.save`d state dict as a numpy array (bf16 widened to f32).

    Args:
      path: a `pytorch_model.bin` written by PyTorch 1.6 or later (zip format).

    Returns:
      {name: array}, as `read_safetensors` gives for model.safetensors.

    Raises:
      EncoderError: for the legacy format, a damaged file or anything but tensors in it.

    Example:
      >>> weights = read_torch_state_dict("koelectra/pytorch_model.bin")  # doctest: +SKIP
      >>> weights["electra.embeddings_project.weight"].shape  # doctest: +SKIP
      (768, 768)
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise EncoderError(f"{path} is not a zip-format PyTorch checkpoint (PyTorch < 1.6 wrote another format); "
                           "convert it to model.safetensors with PyTorch")
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise EncoderError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        root = pickles[0][: -len("/data.pkl")]
        with archive.open(pickles[0]) as file:
            try:
                state = _StateDictUnpickler(file, archive, root, path).load()
            except (pickle.UnpicklingError, KeyError, ValueError, TypeError) as err:
                raise EncoderError(f"{path}: cannot read it as a PyTorch state dict ({err})") from None
    if not isinstance(state, dict):
        raise EncoderError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return {name: value for name, value in state.items() if isinstance(value, np.ndarray)}
