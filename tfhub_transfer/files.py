"""Writing files safely: nothing half-written, nothing written outside its place, no user file deleted.

- `atomic_directory(target)` builds a directory beside `target` and renames it into place.
  It refuses an existing `target` unless `overwrite=True`, and even then replaces only a
  directory this package wrote (it holds the `.tfhub_transfer` marker) or an empty one.
- `versioned_directory(model_dir, version)` does the same for `model_dir/<version>` and claims
  the version atomically: two writers never end up with one version, a version is never replaced.
- Temporaries carry the writer's process id; those of processes that are gone are removed the
  next time anything is written beside them.
- A full disk becomes one `ConfigError` naming the directory and the free space.
- A URL (`gs://`, `s3://`, `hdfs://`, `ram://`; see `tfhub_transfer.storage`) is never made a `Path`
  (`Path("gs://b")` would silently become a local directory named `gs:`). There is no atomic directory
  rename on object stores: `atomic_directory` and `versioned_directory` fill a local staging directory,
  then publish it under the URL with the `_COMPLETE` marker written last; `replace_file` writes one
  object (whole or not at all). What cannot work on a URL calls `refuse_url`, one error naming the flag.
- A version number taken by anything (a file, a dangling symlink) is skipped, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import zlib
from pathlib import Path

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.storage import is_url

MARKER = ".tfhub_transfer"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old|partial)-(?P<pid>\d+)-")


def is_temporary(name: str) -> bool:
    """Whether a file name is one of this package's temporaries (`.NAME.tmp-PID-...`, `.old-`, `.partial-`)."""
    return bool(_TEMPORARY.match(name))


def temporary_writer(name: str) -> int | None:
    """The process id in one of our temporaries' names (None for other names)."""
    match = _TEMPORARY.match(name)
    return int(match.group("pid")) if match else None


def writer_alive(pid: int) -> bool:
    """Whether the process that writes a temporary still runs (then its temporary is in use)."""
    return _alive(pid)


def refuse_url(path, what: str, reason: str = "it is used with local-only tools",
               error: type[Exception] = ConfigError) -> None:
    """Raises `error` when `path` is a URL where only a local path can work (never a local `gs:` directory).

    Args:
        path: the path as the user gave it.
        what: how the user named it (a flag such as `--out`, or an argument such as `output_dir`).
        reason: why this place must be local, for the message.
        error: the error type to raise (`DataError` for input data).

    Example:
        >>> refuse_url("saved_models", "--out")  # a local path: nothing happens
    """
    if is_url(path):
        raise error(f"{what} {os.fspath(path)}: a URL cannot be used here ({reason}); copy it to this machine "
                    "(or mount the bucket) and pass a local path")


def check_name(name: str, what: str = "--name") -> str:
    """A model or run name is one path component of letters, digits, `.`, `_` and `-`."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in (".", ".."):
        raise ConfigError(f"{what} {name!r}: use one name of letters, digits, '.', '_' and '-' (it becomes "
                          "a directory under --out; no '/', no '..', not empty)")
    return name


def check_version(version) -> int | None:
    """Export versions are positive integers (TF Serving's layout); None means 'the next one'."""
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError(f"--version {version!r}: versions are whole numbers from 1 up")
    return version


def check_writable(directory: str | Path, what: str = "--out") -> Path | str:
    """Fails now, not after training, when `directory` cannot be created or written (or is a file).

    A URL is checked by writing and deleting one small object there (its file system must be known to
    TensorFlow: s3:// and hdfs:// need tensorflow-io); it is returned as its string, never a `Path`.
    """
    if is_url(directory):
        return _check_writable_url(os.fspath(directory), what)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{what} {directory} is a file; choose a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=f".write-check-{os.getpid()}-"):
            pass
    except OSError as err:
        raise ConfigError(f"{what} {directory} is not writable ({err.strerror}); choose another directory "
                          "or fix its permissions") from None
    return directory


def _check_writable_url(directory: str, what: str) -> str:
    probe = storage.join(directory, f".write-check-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        if storage.isfile(directory):
            raise ConfigError(f"{what} {directory} is a file; choose a directory")
        storage.write_bytes(probe, b"")
        storage.remove(probe)
    except OSError as err:
        raise ConfigError(f"{what} {directory} is not writable ({err.strerror or err}); check the bucket's name "
                          "and this machine's credentials for it") from None
    except ConfigError as err:
        raise ConfigError(f"{what} {err}") from None
    return directory


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(parent: Path) -> list[Path]:
    """Removes our temporaries in `parent` whose writing process no longer runs."""
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match and not _alive(int(match.group("pid"))):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


def is_ours(directory: Path) -> bool:
    return (directory / MARKER).exists()


def _check_replaceable(target: Path, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(f"{target} exists and is a file; choose another output path")
    if not any(target.iterdir()):
        return
    if not overwrite:
        raise ConfigError(f"{target} exists and is not empty; choose another directory, or pass --overwrite "
                          "to replace a directory tfhub_transfer wrote")
    if not is_ours(target):
        raise ConfigError(f"{target} was not written by tfhub_transfer (no {MARKER} file), so it is not "
                          "replaced even with --overwrite: move or delete it yourself, or choose another directory")


def disk_full_error(directory: Path | str) -> ConfigError:
    """The one error for a full disk, naming the directory and the space left."""
    if is_url(directory):
        return ConfigError(f"{directory}: the storage refused the write as full (a quota or a full volume); free "
                           "some space or choose another --out. Nothing was published there half-written.")
    free = shutil.disk_usage(directory if directory.exists() else directory.parent).free
    return ConfigError(f"no space left on the device of {directory} while writing there ({free / 2**20:.0f} MiB "
                       "free); free some space or choose another --out. Nothing was left half-written.")


@contextlib.contextmanager
def _temporary_beside(target: Path):
    refuse_url(target, "the output path")  # never a local directory named 'gs:'
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {parent} ({err.strerror})") from None
    clean_stale_temporaries(parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=parent))
    except OSError as err:
        raise ConfigError(f"cannot write in {parent} ({err.strerror}); choose another directory") from None
    try:
        yield tmp
        (tmp / MARKER).write_text("written by tfhub_transfer\n", encoding="utf-8")
        os.chmod(tmp, _umask_mode())
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if err.errno == errno.ENOSPC:
            raise disk_full_error(parent) from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _staged(target: str):
    """A local staging directory for a directory published to a URL; removed whatever happens."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tfhub_transfer-stage-{os.getpid()}-"))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by tfhub_transfer\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_replaceable_url(target: str, overwrite: bool) -> None:
    if storage.isfile(target):
        raise ConfigError(f"{target} exists and is a file; choose another output path")
    if not storage.isdir(target) or not storage.listdir(target):
        return
    if not overwrite:
        raise ConfigError(f"{target} exists and is not empty; choose another directory, or pass --overwrite "
                          "to replace a directory tfhub_transfer wrote")
    if not storage.exists(storage.join(target, MARKER)):
        raise ConfigError(f"{target} was not written by tfhub_transfer (no {MARKER} object), so it is not "
                          "replaced even with --overwrite: move or delete it yourself, or choose another directory")


@contextlib.contextmanager
def _atomic_url_directory(target: str, overwrite: bool):
    """An object store has no atomic directory rename: stage locally, then publish with `_COMPLETE` last.

    Replacing an earlier directory first deletes its marker (readers stop reading it), then its objects.
    """
    _check_replaceable_url(target, overwrite)
    with _staged(target) as tmp:
        yield tmp
    try:
        _check_replaceable_url(target, overwrite)  # it may have appeared meanwhile
        storage.remove(storage.join(target, storage.COMPLETE))
        storage.rmtree(target)
        storage.publish_directory(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = False):
    """Yields a temporary directory that becomes `target` when the block succeeds.

    For a URL `target` the temporary is local and is published under the URL when the block succeeds,
    `_COMPLETE` written last (`tfhub_transfer.storage.check_complete` is what a reader checks).
    """
    if is_url(target):
        with _atomic_url_directory(os.fspath(target), overwrite) as tmp:
            yield tmp
        return
    target = Path(target)
    _check_replaceable(target, overwrite)
    with _temporary_beside(target) as tmp:
        yield tmp
    old = None
    if target.exists():
        _check_replaceable(target, overwrite)  # it may have appeared meanwhile
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def next_version(model_dir: str | Path) -> int:
    """One past the highest taken version; a number is taken by anything there (a file, a dangling link)."""
    if is_url(model_dir):
        names = storage.listdir(model_dir) if storage.isdir(model_dir) else []
        return max((int(name) for name in names if name.isdigit()), default=0) + 1
    versions = [int(p.name) for p in Path(model_dir).glob("*") if p.name.isdigit()]
    return max(versions, default=0) + 1


class Claimed:
    """Where a `versioned_directory` block's output ended up (set when the block succeeds)."""

    path: Path | str | None = None


@contextlib.contextmanager
def versioned_directory(model_dir: str | Path, version: int | None = None):
    """`with versioned_directory(dir, version) as (tmp, claimed):` fill `tmp`; then `claimed.path` is
    `dir/<version>`, the given version or the next free one, claimed atomically.

    On a URL `dir` the version is the next free one when the block ends, and is published with its
    `_COMPLETE` marker last; an object store cannot claim a name atomically, so two writers exporting
    one name at the same moment need different `--version`s (a multi-worker run exports from the chief only).
    """
    version = check_version(version)
    if is_url(model_dir):
        with _versioned_url_directory(os.fspath(model_dir), version) as (tmp, claimed):
            yield tmp, claimed
        return
    model_dir = Path(model_dir)
    if version is not None and os.path.lexists(model_dir / str(version)):
        raise ConfigError(f"version {version} of {model_dir} exists; a version is never replaced: omit "
                          "--version for the next free one")
    claimed = Claimed()
    with _temporary_beside(model_dir / "version") as tmp:
        yield tmp, claimed
    claimed.path = _claim(tmp, model_dir, version)


@contextlib.contextmanager
def _versioned_url_directory(model_dir: str, version: int | None):
    taken = (f"version {version} of {model_dir} exists; a version is never replaced: omit --version for the "
             "next free one")
    if version is not None and storage.exists(storage.join(model_dir, str(version))):
        raise ConfigError(taken)
    claimed = Claimed()
    with _staged(model_dir) as tmp:
        yield tmp, claimed
    try:
        number = version or next_version(model_dir)
        target = storage.join(model_dir, str(number))
        if storage.exists(target):
            raise ConfigError(taken.replace(f"version {version}", f"version {number}"))
        storage.publish_directory(tmp, target)
        claimed.path = target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _claim(tmp: Path, model_dir: Path, version: int | None) -> Path:
    """Renames `tmp` onto the first free version: a rename onto an existing non-empty directory fails."""
    number = version or next_version(model_dir)
    while True:
        target = model_dir / str(number)
        try:
            if os.path.lexists(target):  # a dangling symlink is taken too: a rename would go through it
                raise FileExistsError(errno.EEXIST, "exists", str(target))
            os.rename(tmp, target)
            return target
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            if version is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                raise ConfigError(f"version {number} of {model_dir} was written by another process meanwhile; "
                                  "a version is never replaced") from None
            number = max(number + 1, next_version(model_dir))


def replace_file(path: str | Path, write) -> Path:
    """Writes a file by temp + rename: `write(handle)` fills the temporary, which then replaces `path`.

    On a URL the file is one object written whole (an object store shows it whole or not at all).
    """
    if is_url(path):
        storage.write_bytes(path, storage.as_bytes_writer(write))
        return os.fspath(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}-{os.urandom(3).hex()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if err.errno == errno.ENOSPC:
            raise disk_full_error(path.parent) from None
        raise
    return path


def _crc32(path: Path) -> str:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def file_record(directory: str | Path, pattern: str = "**/*", checksums: bool = True) -> dict[str, dict]:
    """Each file under `directory` matching `pattern`: its size (and CRC-32), by relative path, for a manifest
    written after them, so a later reader can tell a complete write from a damaged or partial one.

    Args:
        directory: where the files are.
        pattern: a glob relative to `directory` (`**/*`: every file below it).
        checksums: also record each file's CRC-32 (reads every byte; sizes alone are a stat each).

    Returns:
        `{relative path: {"bytes": size, "crc32": hex}}`, sorted by path.

    Example:
        >>> file_record("saved_models/reviews/1", checksums=False)  # doctest: +SKIP
        {'saved_model.pb': {'bytes': 1234}, ...}
    """
    directory = Path(directory)
    files = sorted(f for f in directory.glob(pattern) if f.is_file() and not f.is_symlink())
    return {str(f.relative_to(directory)): {"bytes": f.stat().st_size, **({"crc32": _crc32(f)} if checksums else {})}
            for f in files}


def record_damage(directory: str | Path, recorded: dict[str, dict], pattern: str = "**/*",
                  ignore: tuple[str, ...] = ()) -> str | None:
    """The first way `directory` differs from `recorded` (see `file_record`): a file missing, added (among
    those `pattern` matches), of another size or, where recorded, another CRC-32; None when it matches.

    Args:
        directory: the directory to check.
        recorded: what `file_record` returned when it was written.
        pattern: the files the record covered.
        ignore: paths written after the record (the manifest itself, the ownership marker).

    Returns:
        A short description of the first difference, or None.
    """
    directory = Path(directory)
    found = {str(f.relative_to(directory)) for f in directory.glob(pattern) if f.is_file()} - set(ignore)
    if found != set(recorded):
        name = sorted(found ^ set(recorded))[0]
        return f"{name} is {'missing' if name in recorded else 'not in its manifest'}"
    for name, expected in recorded.items():
        size = (directory / name).stat().st_size
        if size != expected.get("bytes"):
            return f"{name} is {size} bytes, not {expected.get('bytes')} (truncated or replaced)"
        if "crc32" in expected and _crc32(directory / name) != expected["crc32"]:
            return f"{name} was altered (its checksum differs)"
    return None

