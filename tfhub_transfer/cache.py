"""Where things are cached: the package's own cache (converted encoders, their bfloat16 copies, feature
caches) and tensorflow_hub's download cache, and whether a hub handle can be loaded here at all.

The package's cache is `use_cache_dir(path)` / `set_cache_dir(path)` (the CLI's `--cache-dir`), else
`$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`.
`cache_entries()` lists what is in it and `remove_entry()` deletes only what this package wrote: never a
file someone placed inside an entry, never through a symbolic link. Temporaries and partial entries left by
an interrupted write are listed (kind `partial`) and removed once their writer is gone. A cache path that is a
file is one `ConfigError` (`check_cache_dir`). A URL as the cache (`--cache-dir gs://bucket/cache`) shares the
feature caches between machines (`shared_cache_dir`; training.feature_cache publishes each entry there with
a `_COMPLETE` marker last); converted encoders stay in the local cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.files import MARKER, is_temporary, refuse_url, temporary_writer, writer_alive
from tfhub_transfer.storage import is_url

CACHE_ENV = "TFHUB_TRANSFER_CACHE"
FEATURES_DIR = "features"  # training.feature_cache: one directory per cached input set
ENCODERS_DIR = "encoders"  # converted encoders (the default one) and their compute-dtype copies
_chosen: Path | str | None = None  # set_cache_dir / use_cache_dir (the CLI's --cache-dir)
# What this package writes at the top of an entry (training.feature_cache; encoders.build.hub_writer).
_FEATURE_FILES = re.compile(r"^(?:manifest\.json|(?:shard|lengths)_\d{5}\.npy)$")
_ENCODER_TOP = {"encoder", "preprocessor", "vocab.txt", "tfhub_transfer.json"}


def check_cache_dir(root: str | Path | None = None) -> Path | str:
    """The cache directory (`root`, default `cache_dir()`), refused at once when it (or a parent) is a file.

    Args:
        root: the cache directory to check; None for the local one in use. A URL is checked to be no file.

    Returns:
        The directory (it may not exist yet); a URL as its string.

    Example:
        >>> check_cache_dir("/tmp/my-cache")
        PosixPath('/tmp/my-cache')
    """
    if is_url(root):
        if storage.isfile(root):
            raise ConfigError(f"the cache path {root} is a file, not a directory; point --cache-dir (or "
                              f"${CACHE_ENV}) at a directory")
        return root
    root = Path(root) if root is not None else cache_dir()
    for place in (root, *root.parents):
        if place.exists():
            if not place.is_dir():
                raise ConfigError(
                    f"the cache path {root} is {'a file' if place == root else f'under the file {place}'}, not a "
                    f"directory; point --cache-dir (or ${CACHE_ENV}) at a directory, or move the file")
            break
    return root


def cache_dir() -> Path:
    """The package's local cache: the one set with `set_cache_dir` / `use_cache_dir` (`--cache-dir`), else
    `$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`.

    A choice that is a URL (`gs://bucket/cache`) is the shared cache (`shared_cache_dir`), for feature
    caches; converted encoders are read as local SavedModels, so they stay in the next local choice.
    """
    if _chosen is not None and not is_url(_chosen):
        return _chosen
    explicit = os.environ.get(CACHE_ENV)
    if explicit and not is_url(explicit):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfhub_transfer"


def shared_cache_dir() -> str | None:
    """The cache on shared storage (a URL given as `--cache-dir` or `$TFHUB_TRANSFER_CACHE`), else None.

    Example:
        >>> with use_cache_dir("gs://bucket/cache"):
        ...     shared_cache_dir()
        'gs://bucket/cache'
    """
    if _chosen is not None:
        return _chosen if is_url(_chosen) else None
    explicit = os.environ.get(CACHE_ENV)
    return explicit if explicit and is_url(explicit) else None


def set_cache_dir(path: str | Path | None) -> None:
    """Makes `path` the package's cache for this process (None: back to the environment's choice); a URL
    stays a string (see `shared_cache_dir`)."""
    global _chosen
    _chosen = None if path is None else os.fspath(path) if is_url(path) else Path(path).expanduser()


@contextlib.contextmanager
def use_cache_dir(path: str | Path | None) -> Iterator[Path]:
    """`with use_cache_dir(path):` caches under `path` inside the block; None leaves the choice as it is."""
    previous = _chosen
    if path is not None:
        set_cache_dir(path)
    try:
        yield shared_cache_dir() or cache_dir()
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

    kind: str  # features | token features | encoder | encoder copy | partial | link | other
    path: Path
    size: int
    about: str = ""
    ours: bool = True
    foreign: tuple[Path, ...] = ()  # files inside that this package did not write: the entry is kept


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _written_here(kind_dir: str, entry: Path) -> bool:
    """The package's marker, or (entries older than the marker) its own manifest or encoder metadata."""
    if entry.is_symlink() or not entry.is_dir():
        return False
    if (entry / MARKER).exists():
        return True
    if kind_dir == FEATURES_DIR:
        return {"shards", "layers", "hidden"} <= set(_read_json(entry / "manifest.json"))
    return str(_read_json(entry / "tfhub_transfer.json").get("format", "")).startswith("tfhub_transfer/")


def foreign_files(kind_dir: str, entry: Path) -> list[Path]:
    """What inside a cache entry this package did not write (links included): a feature cache holds its
    manifest and shards, an encoder its SavedModels, vocabulary and metadata.

    Args:
        kind_dir: the entry's folder in the cache (`features` or `encoders`).
        entry: the entry's directory.

    Returns:
        The paths, sorted; [] for an entry holding only what this package wrote.

    Example:
        >>> foreign_files("features", cache_dir() / "features" / "0123abcd")
        []
    """
    foreign = []
    for item in sorted(entry.iterdir()):
        if item.is_symlink():
            foreign.append(item)
        elif item.name == MARKER or is_temporary(item.name):
            continue
        elif kind_dir == FEATURES_DIR and not (_FEATURE_FILES.match(item.name) and item.is_file()):
            foreign.append(item)
        elif kind_dir != FEATURES_DIR and item.name not in _ENCODER_TOP:
            foreign.append(item)
    return foreign


def _describe(kind_dir: str, entry: Path) -> tuple[str, str]:
    if kind_dir == FEATURES_DIR:
        manifest = _read_json(entry / "manifest.json")
        if not manifest:
            return "partial", "a feature cache without its manifest (an interrupted write)"
        if manifest.get("level") == "tokens":
            return "token features", f"{manifest.get('sentences', '?')} sentences, {manifest.get('encoder', '?')}"
        return "features", f"{manifest.get('examples', '?')} texts, {manifest.get('encoder', '?')}"
    meta = _read_json(entry / "tfhub_transfer.json")
    if not meta or not (entry / "encoder" / "saved_model.pb").is_file():
        return "encoder", f"{entry.name}, incomplete (no metadata or SavedModel; converted again when used)"
    dtype = meta.get("compute_dtype") or "float32"
    changes = [f"computing in {dtype}"] * (dtype != "float32")
    changes += ["reading packed rows"] * bool(meta.get("config", {}).get("packed_segments"))
    if changes:
        return "encoder copy", f"{meta.get('name', entry.name)} {' and '.join(changes)}"
    return "encoder", meta.get("name", entry.name)


def _entry(kind_dir: str, path: Path) -> CacheEntry:
    """One entry of `features/` or `encoders/`, as `cache_entries` lists it."""
    if path.is_symlink():
        return CacheEntry("link", path, 0, f"a link to {os.readlink(path)}, not followed", ours=False)
    pid = temporary_writer(path.name)
    if pid is not None:
        busy = writer_alive(pid)
        about = f"being written by process {pid}" if busy else f"left by an interrupted write (process {pid})"
        return CacheEntry("partial", path, directory_size(path), about, ours=not busy)
    if not _written_here(kind_dir, path):
        return CacheEntry("other", path, directory_size(path), "not written by tfhub_transfer", ours=False)
    kind, about = _describe(kind_dir, path)
    foreign = tuple(foreign_files(kind_dir, path))
    if foreign:
        about += f"; also holds {len(foreign)} file(s) tfhub_transfer did not write, so it is never removed"
    return CacheEntry(kind, path, directory_size(path), about, True, foreign)


def cache_entries(root: str | Path | None = None) -> list[CacheEntry]:
    """What the package's cache (`root`, default `cache_dir()`) holds: each feature cache and encoder, the
    temporaries and partial entries of interrupted writes, then anything else found there (`ours=False` when
    this package did not write it). A cache path that is a file is a `ConfigError`; so is a URL (listing
    and clearing works on a local cache: a shared cache's entries are prefixes to delete with the store's tools)."""
    refuse_url(root, "--cache-dir", "the cache is listed and cleared on this machine's disk")
    root = check_cache_dir(root)
    if not root.is_dir():
        return []
    entries = []
    for top in sorted(root.iterdir()):
        if top.name.startswith("."):
            continue
        if top.is_dir() and not top.is_symlink() and top.name in (FEATURES_DIR, ENCODERS_DIR):
            for entry in sorted(top.iterdir()):
                if entry.name.startswith(".") and not is_temporary(entry.name):
                    continue  # lock files
                entries.append(_entry(top.name, entry))
        elif top.is_symlink():
            entries.append(CacheEntry("link", top, 0, f"a link to {os.readlink(top)}, not followed", ours=False))
        else:
            entries.append(CacheEntry("other", top, directory_size(top), "not written by tfhub_transfer",
                                      (top / MARKER).exists()))
    return entries


def removable(entry: CacheEntry) -> bool:
    """Whether `remove_entry` deletes `entry`: this package wrote it, no one else's file is inside, not a link."""
    return entry.ours and not entry.foreign and not entry.path.is_symlink()


def remove_entry(entry: CacheEntry) -> None:
    """Deletes a cache entry this package wrote: renamed aside first, so a half-deleted entry is never
    read as a complete one (a feature cache's manifest without its shards)."""
    if entry.path.is_symlink():
        raise ConfigError(f"{entry.path} is a symbolic link; the cache never deletes through one")
    if entry.kind == "partial" and temporary_writer(entry.path.name) is not None:
        if writer_alive(temporary_writer(entry.path.name)):
            raise ConfigError(f"{entry.path} is being written by a running process; not deleted")
    elif not entry.ours or not _written_here(entry.path.parent.name, entry.path):
        raise ConfigError(f"{entry.path} was not written by tfhub_transfer (no {MARKER} file); not deleted")
    foreign = foreign_files(entry.path.parent.name, entry.path) if entry.path.is_dir() else []
    if foreign and temporary_writer(entry.path.name) is None:
        raise ConfigError(f"{entry.path} holds {len(foreign)} file(s) tfhub_transfer did not write (such as "
                          f"{foreign[0]}); not deleted: move them out, then clear again")
    aside = entry.path.with_name(f".{entry.path.name.lstrip('.')}.old-{os.getpid()}-{os.urandom(3).hex()}")
    os.rename(entry.path, aside)
    if aside.is_dir():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)
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
    """Raises EncoderError at once if `handle` cannot be loaded here (a SavedModel on a gs://, ram:// or
    s3:// URL is read in place through tf.io.gfile, as TF Hub does)."""
    on_storage = is_url(handle) and not handle.lower().startswith(("http://", "https://"))
    if not is_remote(handle) or on_storage:
        if not storage.exists(storage.join(handle if on_storage else Path(handle), "saved_model.pb")):
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
