"""Where things are cached: the package's own cache (converted encoders, their bfloat16 copies, feature
caches) and tensorflow_hub's download cache, and whether a hub handle can be loaded here at all.

The package's cache is `use_cache_dir(path)` / `set_cache_dir(path)` (the CLI's `--cache-dir`), else
`$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`.
`cache_entries()` lists what is in it and `remove_entry()` deletes only what this package wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.files import MARKER

CACHE_ENV = "TFHUB_TRANSFER_CACHE"
FEATURES_DIR = "features"  # training.feature_cache: one directory per cached input set
ENCODERS_DIR = "encoders"  # converted encoders (the default one) and their compute-dtype copies
_chosen: Path | None = None  # set_cache_dir / use_cache_dir (the CLI's --cache-dir)


def cache_dir() -> Path:
    """The package's cache: the one set with `set_cache_dir` / `use_cache_dir` (`--cache-dir`), else
    `$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`."""
    if _chosen is not None:
        return _chosen
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfhub_transfer"


def set_cache_dir(path: str | Path | None) -> None:
    """Makes `path` the package's cache for this process (None: back to the environment's choice)."""
    global _chosen
    _chosen = Path(path).expanduser() if path is not None else None


@contextlib.contextmanager
def use_cache_dir(path: str | Path | None) -> Iterator[Path]:
    """`with use_cache_dir(path):` caches under `path` inside the block; None leaves the choice as it is."""
    previous = _chosen
    if path is not None:
        set_cache_dir(path)
    try:
        yield cache_dir()
    finally:
        set_cache_dir(previous)


def honours_cache_dir(job: Callable) -> Callable:
    """Decorates a job whose first argument is a config: it runs with the config's `cache_dir` (if set)."""

    @functools.wraps(job)
    def run(config, *args, **kwargs):
        with use_cache_dir(getattr(config, "cache_dir", None)):
            return job(config, *args, **kwargs)

    return run


def directory_size(path: str | Path) -> int:
    """Bytes in the files under `path` (a file's own size for a file; links are not followed)."""
    path = Path(path)
    if not path.is_dir():
        return path.stat().st_size if path.is_file() else 0
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def format_size(size: int) -> str:
    """`12.3 MB` (decimal units, as `du --si` and file managers show them)."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One thing in the package's cache: its kind, path, size, a description, and whether this package
    wrote it (only those are ever removed)."""

    kind: str  # features | token features | encoder | encoder copy | other
    path: Path
    size: int
    about: str = ""
    ours: bool = True


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _written_here(kind_dir: str, entry: Path) -> bool:
    """The package's marker, or (entries older than the marker) its own manifest or encoder metadata."""
    if (entry / MARKER).exists():
        return True
    if kind_dir == FEATURES_DIR:
        return {"shards", "layers", "hidden"} <= set(_read_json(entry / "manifest.json"))
    return str(_read_json(entry / "tfhub_transfer.json").get("format", "")).startswith("tfhub_transfer/")


def _describe(kind_dir: str, entry: Path) -> tuple[str, str]:
    if kind_dir == FEATURES_DIR:
        manifest = _read_json(entry / "manifest.json")
        if manifest.get("level") == "tokens":
            return "token features", f"{manifest.get('sentences', '?')} sentences, {manifest.get('encoder', '?')}"
        return "features", f"{manifest.get('examples', '?')} texts, {manifest.get('encoder', '?')}"
    meta = _read_json(entry / "tfhub_transfer.json")
    dtype = meta.get("compute_dtype") or "float32"
    changes = [f"computing in {dtype}"] * (dtype != "float32")
    changes += ["reading packed rows"] * bool(meta.get("config", {}).get("packed_segments"))
    if changes:
        return "encoder copy", f"{meta.get('name', entry.name)} {' and '.join(changes)}"
    return "encoder", meta.get("name", entry.name)


def cache_entries(root: str | Path | None = None) -> list[CacheEntry]:
    """What the package's cache (`root`, default `cache_dir()`) holds: each feature cache and encoder,
    then anything else found there (`ours=False` when this package did not write it)."""
    root = Path(root) if root is not None else cache_dir()
    if not root.is_dir():
        return []
    entries = []
    for top in sorted(root.iterdir()):
        if top.name.startswith("."):
            continue
        if top.is_dir() and top.name in (FEATURES_DIR, ENCODERS_DIR):
            for entry in sorted(top.iterdir()):
                if entry.name.startswith("."):
                    continue  # temporaries of a write in progress, lock files
                ours = _written_here(top.name, entry)
                kind, about = _describe(top.name, entry) if ours else ("other", "not written by tfhub_transfer")
                entries.append(CacheEntry(kind, entry, directory_size(entry), about, ours))
        else:
            entries.append(CacheEntry("other", top, directory_size(top), "not written by tfhub_transfer",
                                      (top / MARKER).exists()))
    return entries


def remove_entry(entry: CacheEntry) -> None:
    """Deletes a cache entry this package wrote: renamed aside first, so a half-deleted entry is never
    read as a complete one (a feature cache's manifest without its shards)."""
    if not entry.ours or not _written_here(entry.path.parent.name, entry.path):
        raise ConfigError(f"{entry.path} was not written by tfhub_transfer (no {MARKER} file); not deleted")
    aside = entry.path.with_name(f".{entry.path.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
    os.rename(entry.path, aside)
    shutil.rmtree(aside, ignore_errors=True)
    lock = entry.path.with_name(f".{entry.path.name}.lock")  # the default encoder's conversion lock
    lock.unlink(missing_ok=True)


def is_remote(handle: str) -> bool:
    return urlparse(handle).scheme in ("http", "https", "gs") or handle.startswith(
        ("kaggle.com/", "www.kaggle.com/")
    )


def hub_cache_dir() -> Path:
    """The directory tensorflow_hub caches downloads in (honours TFHUB_CACHE_DIR)."""
    from tensorflow_hub import resolver

    return Path(resolver.tfhub_cache_dir(use_temp=True))


def cached_path(handle: str) -> Path:
    """Where tensorflow_hub keeps (or would keep) a downloaded handle."""
    return hub_cache_dir() / hashlib.sha1(handle.encode("utf8")).hexdigest()


def _network_reaches(handle: str, timeout: float = 3.0) -> bool:
    host = urlparse(handle if "://" in handle else f"https://{handle}").hostname or "tfhub.dev"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def check_handle_available(handle: str) -> None:
    """Raises EncoderError at once if `handle` cannot be loaded here."""
    if not is_remote(handle):
        if not (Path(handle) / "saved_model.pb").exists():
            raise EncoderError(
                f"{handle} is not a SavedModel directory (no saved_model.pb there). Pass a TF Hub "
                f"handle, a catalogue name (`tfhub-transfer encoders list`) or a local SavedModel."
            )
        return
    cached = cached_path(handle)
    if (cached / "saved_model.pb").exists():
        return
    if not _network_reaches(handle):
        raise EncoderError(
            f"cannot load {handle}: it is not in the TF Hub cache ({cached}) and its host cannot "
            f"be reached. Download it on a machine with network access and copy it into "
            f"$TFHUB_CACHE_DIR (now {hub_cache_dir()}), or unpack it anywhere and pass the local "
            f"directory instead of the handle."
        )
