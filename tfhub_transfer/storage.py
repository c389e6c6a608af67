"""One filesystem for local paths and URLs: `gs://` (built into TensorFlow), `s3://` and `hdfs://` (with
tensorflow-io installed), and TensorFlow's in-memory `ram://`.

A local path goes through the standard library exactly as before; a URL goes through `tf.io.gfile`
(TensorFlow is imported on the first URL, so `import tfhub_transfer` stays fast). A URL is never made a
`pathlib.Path` (which folds `gs://b/x` into the local `gs:/b/x`): `location()` keeps it a string and
`local_path()` refuses it, naming the flag.

Object stores have no atomic rename of a directory, so a directory written to a URL is published:
its files are copied under the target prefix, then a marker object `_COMPLETE` listing every file and
its size is written LAST (`publish_directory`). A reader of an export, run or cache entry on a URL calls
`check_complete` (or `complete_damage`) first: without the marker, or with a file missing or of another
size, the directory is still being written or was cut short, and is not read.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from tfhub_transfer.errors import ConfigError

COMPLETE = "_COMPLETE"  # written last into a directory published to a URL: its files and their sizes
# A scheme of two or more letters, then ':/' (pathlib folds 'gs://b' into 'gs:/b'); 'C:/' stays a path.
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")
_WHOLE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
_NEEDS_TFIO = ("s3", "hdfs", "viewfs", "az")  # file systems tensorflow-io registers

Location = str | Path  # a local Path, or a URL kept as its string


def is_url(path) -> bool:
    """Whether `path` is written as a URL (`gs://bucket/x`, `s3://...`, `hdfs://...`, `ram://...`).

    Example:
        >>> is_url("gs://bucket/train.csv"), is_url("data/train.csv"), is_url("C:/data")
        (True, False, False)
    """
    return isinstance(path, (str, os.PathLike)) and bool(_URL.match(os.fspath(path)))


def scheme(path) -> str:
    """The URL's scheme (`gs`, `s3`, `ram`); '' for a local path."""
    return os.fspath(path).split(":", 1)[0].lower() if is_url(path) else ""


def location(path: str | os.PathLike) -> Location:
    """A local path as a `Path` (`~` expanded), a URL as its string, unchanged.

    A URL that already went through `pathlib` (`Path("gs://b/x")` is `gs:/b/x`) is refused: it would be
    written as a local directory named `gs:`.

    Example:
        >>> location("gs://bucket/models"), location("models")
        ('gs://bucket/models', PosixPath('models'))
    """
    if not is_url(path):
        return Path(path).expanduser()
    if not _WHOLE_URL.match(os.fspath(path)):
        raise ConfigError(f"{os.fspath(path)}: a URL whose '//' was folded away (pathlib turns gs://b/x into "
                          "gs:/b/x); pass it as a string, e.g. 'gs://bucket/path'")
    return os.fspath(path)


def join(base: str | os.PathLike, *parts: str) -> Location:
    """`base/part/...`: a `Path` for a local base, a URL string for a URL.

    Example:
        >>> join("gs://bucket/models", "reviews", "1")
        'gs://bucket/models/reviews/1'
    """
    if not is_url(base):
        return Path(base).joinpath(*parts)
    joined = location(base).rstrip("/")
    for part in parts:
        joined += "/" + str(part).strip("/")
    return joined


def basename(path: str | os.PathLike) -> str:
    """The last component of a path or URL (`gs://b/x/train.csv` -> `train.csv`)."""
    return os.fspath(path).rstrip("/").rsplit("/", 1)[-1] if is_url(path) else Path(path).name


def parent(path: str | os.PathLike) -> Location:
    """The directory holding a path or URL (`gs://b/x/1` -> `gs://b/x`)."""
    if not is_url(path):
        return Path(path).parent
    return os.fspath(path).rstrip("/").rsplit("/", 1)[0]


def local_path(path: str | os.PathLike, what: str, reason: str = "it is read with local-only tools") -> Path:
    """`path` as a local `Path`; a URL is refused with one `ConfigError` naming `what` (a flag or argument).

    Args:
        path: the path as the user gave it.
        what: how the user named it (`--cache-dir`, `output_dir`).
        reason: why this one must be local, for the message.

    Returns:
        The local path.

    Example:
        >>> local_path("runs", "--out")
        PosixPath('runs')
    """
    if is_url(path):
        raise ConfigError(f"{what} {os.fspath(path)}: must be a local path here ({reason}); copy it to this "
                          "machine (or mount the bucket) and pass the local path")
    return Path(path).expanduser()


def _gfile():
    import tensorflow as tf  # only for URLs: local paths never pay TensorFlow's import

    _register_tensorflow_io()
    return tf.io.gfile


@functools.cache
def _register_tensorflow_io() -> None:
    """Imports tensorflow-io when it is installed: importing it registers s3://, hdfs:// and az://."""
    with contextlib.suppress(ImportError, OSError, NotImplementedError):  # absent, or built for another TF
        import tensorflow_io  # noqa: F401


@contextlib.contextmanager
def _os_errors(path) -> Iterator[None]:
    """TensorFlow's file errors as the `OSError`s local code already handles (missing -> FileNotFoundError)."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.NotFoundError as err:
        raise FileNotFoundError(2, err.message or "not found", os.fspath(path)) from None
    except tf.errors.PermissionDeniedError as err:
        raise PermissionError(13, err.message, os.fspath(path)) from None
    except tf.errors.UnimplementedError as err:
        raise ConfigError(_unsupported(path, err.message)) from None
    except tf.errors.OpError as err:
        raise OSError(5, err.message, os.fspath(path)) from None


def _unsupported(path, message: str) -> str:
    kind = scheme(path)
    hint = ("install tensorflow-io (`pip install tensorflow-io`) and `import tensorflow_io` registers it"
            if kind in _NEEDS_TFIO else "use a local path, gs:// or (with tensorflow-io) s3:// or hdfs://")
    return f"{os.fspath(path)}: TensorFlow cannot read or write {kind}:// here ({message}); {hint}"


def exists(path: str | os.PathLike) -> bool:
    """Whether a file or directory is there (a local dangling link counts as absent, as `Path.exists`)."""
    if not is_url(path):
        return Path(path).exists()
    with _os_errors(path):
        return _gfile().exists(os.fspath(path))


def isdir(path: str | os.PathLike) -> bool:
    """Whether `path` is a directory (on an object store: a prefix holding objects)."""
    if not is_url(path):
        return Path(path).is_dir()
    with _os_errors(path):
        return _gfile().isdir(os.fspath(path))


def isfile(path: str | os.PathLike) -> bool:
    """Whether `path` is a file (an object)."""
    if not is_url(path):
        return Path(path).is_file()
    with _os_errors(path):
        gfile = _gfile()
        return gfile.exists(os.fspath(path)) and not gfile.isdir(os.fspath(path))


def listdir(path: str | os.PathLike) -> list[str]:
    """The names in a directory, sorted."""
    if not is_url(path):
        return sorted(os.listdir(path))
    with _os_errors(path):
        names = sorted(name.rstrip("/") for name in _gfile().listdir(os.fspath(path)))
        if scheme(path) == "ram":  # TF's ram:// lists by name prefix (see walk_files): only real entries count
            names = [name for name in names if _gfile().exists(f"{os.fspath(path).rstrip('/')}/{name}")]
        return names


def glob(pattern: str | os.PathLike) -> list[Location]:
    """The paths matching a glob (`gs://bucket/train-*.csv`), sorted."""
    if not is_url(pattern):
        import glob as local_glob

        return sorted(Path(p) for p in local_glob.glob(os.fspath(Path(pattern).expanduser())))
    with _os_errors(pattern):
        return sorted(_gfile().glob(os.fspath(pattern)))


def walk_files(directory: str | os.PathLike) -> list[str]:
    """Every file under `directory`, as paths relative to it with '/', sorted (links not followed)."""
    if not is_url(directory):
        root = Path(directory)
        return sorted(str(p.relative_to(root).as_posix()) for p in root.rglob("*")
                      if p.is_file() and not p.is_symlink())
    base = os.fspath(directory).rstrip("/")
    found = []
    with _os_errors(directory):
        for top, _, files in _gfile().walk(base):
            relative = top.rstrip("/")[len(base):].strip("/")
            found += [f"{relative}/{name}" if relative else name for name in files]
    if scheme(directory) == "ram":
        # TF's ram:// lists by name prefix: `a/` also shows `.x` for a sibling `a.x/`; only real files count.
        found = [name for name in found if _gfile().exists(f"{base}/{name}") and not _gfile().isdir(f"{base}/{name}")]
    return sorted(found)


def makedirs(path: str | os.PathLike) -> None:
    """Creates `path` and its parents (nothing to do on object stores, where prefixes need no creating)."""
    if not is_url(path):
        Path(path).mkdir(parents=True, exist_ok=True)
        return
    with _os_errors(path):
        _gfile().makedirs(os.fspath(path))


class _RemoteReader(io.RawIOBase):
    """A `tf.io.gfile.GFile` opened for reading, as a raw stream (so `io.BufferedReader` and
    `io.TextIOWrapper` read it exactly as a local file: line iteration, `errors=`, `readline`)."""

    def __init__(self, path: str):
        with _os_errors(path):
            self._file = _gfile().GFile(path, "rb")
            self._file.size()  # a missing object fails here, not at the first read
        self._path = path

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        with _os_errors(self._path):
            data = self._file.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


def open_file(path: str | os.PathLike, mode: str = "rb", errors: str = "strict"):
    """A file object for a local path or a URL (`rb`, `wb`, `r`, `w`; text is UTF-8, decoded with `errors`).

    Example:
        >>> with open_file("gs://bucket/train.conll", "r") as handle:  # doctest: +SKIP
        ...     first = handle.readline()
    """
    if not is_url(path):
        text = {} if "b" in mode else {"encoding": "utf-8", "errors": errors}
        return open(path, mode, **text)  # noqa: SIM115
    if mode in ("r", "rb"):
        stream = io.BufferedReader(_RemoteReader(os.fspath(path)), buffer_size=1 << 20)
        return stream if mode == "rb" else io.TextIOWrapper(stream, encoding="utf-8", errors=errors)
    if mode.startswith("w"):
        _appending_store_cleared(path)
    with _os_errors(path):
        return _gfile().GFile(os.fspath(path), mode)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole file's bytes."""
    if not is_url(path):
        return Path(path).read_bytes()
    with _os_errors(path), _gfile().GFile(os.fspath(path), "rb") as handle:
        return handle.read()


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """The whole file as text."""
    return read_bytes(path).decode(encoding)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes a whole file (on an object store the object appears whole when it is closed, or not at all)."""
    if not is_url(path):
        Path(path).write_bytes(data)
        return
    _appending_store_cleared(path)
    with _os_errors(path), _gfile().GFile(os.fspath(path), "wb") as handle:
        handle.write(data)


def _appending_store_cleared(path) -> None:
    """TensorFlow's ram:// file system appends to an existing file opened for writing (TF 2.20): it is removed
    first there. gs://, s3:// and hdfs:// replace the object, as a local write does."""
    if scheme(path) == "ram":
        remove(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Writes a whole text file."""
    write_bytes(path, text.encode(encoding))


def size(path: str | os.PathLike) -> int:
    """A file's size in bytes."""
    if not is_url(path):
        return Path(path).stat().st_size
    with _os_errors(path):
        return _gfile().stat(os.fspath(path)).length


def copy(source: str | os.PathLike, target: str | os.PathLike, overwrite: bool = False) -> None:
    """Copies one file, between any two places (local to URL, URL to local, URL to URL)."""
    if not is_url(source) and not is_url(target):
        if not overwrite and Path(target).exists():
            raise FileExistsError(17, "exists", os.fspath(target))
        shutil.copyfile(source, target)
        return
    if overwrite:
        _appending_store_cleared(target)
    with _os_errors(target):
        _gfile().copy(os.fspath(source), os.fspath(target), overwrite=overwrite)


def rename(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Renames a FILE (on object stores a copy then a delete: not atomic; never use it for a directory)."""
    if not is_url(source):
        os.replace(source, target)
        return
    with _os_errors(source):
        _gfile().rename(os.fspath(source), os.fspath(target), overwrite=True)


def remove(path: str | os.PathLike) -> None:
    """Deletes one file; a missing one is fine."""
    if not is_url(path):
        Path(path).unlink(missing_ok=True)
        return
    with contextlib.suppress(FileNotFoundError), _os_errors(path):
        _gfile().remove(os.fspath(path))


def rmtree(path: str | os.PathLike) -> None:
    """Deletes a directory and everything under it; a missing one is fine."""
    if not is_url(path):
        shutil.rmtree(path, ignore_errors=True)
        return
    with contextlib.suppress(FileNotFoundError), _os_errors(path):
        if _gfile().exists(os.fspath(path)):
            _gfile().rmtree(os.fspath(path))


def upload_tree(local_dir: str | os.PathLike, target: str | os.PathLike) -> dict[str, dict]:
    """Copies every file under the local `local_dir` to `target/...` (any filesystem); returns what
    `publish_complete` records: `{relative path: {"bytes": size}}`."""
    record = {}
    for relative in walk_files(local_dir):
        destination = join(target, *relative.split("/"))
        makedirs(parent(destination))
        copy(Path(local_dir, relative), destination, overwrite=True)
        record[relative] = {"bytes": Path(local_dir, relative).stat().st_size}
    return record


def download_tree(source: str | os.PathLike, local_dir: str | os.PathLike) -> Path:
    """Copies every file under `source` (a URL or local directory) into the local `local_dir`."""
    local_dir = Path(local_dir)
    for relative in walk_files(source):
        destination = local_dir.joinpath(*relative.split("/"))
        destination.parent.mkdir(parents=True, exist_ok=True)
        copy(join(source, *relative.split("/")), destination, overwrite=True)
    return local_dir


def publish_complete(directory: str | os.PathLike, record: dict[str, dict]) -> None:
    """Writes `directory/_COMPLETE` (the files and their sizes): the LAST write of a published directory."""
    body = {"format": "tfhub_transfer/complete-1", "files": dict(sorted(record.items()))}
    write_text(join(directory, COMPLETE), json.dumps(body, indent=1))


def publish_directory(local_dir: str | os.PathLike, target: str | os.PathLike) -> None:
    """Publishes a finished local directory at `target` (a URL): its files first, then `_COMPLETE`.

    Object stores cannot rename a directory atomically; readers instead check the marker
    (`check_complete`), so until the marker is there the directory is not read.

    Args:
        local_dir: the finished directory (this machine's staging copy).
        target: where it goes; any earlier contents (and their marker) must be removed before.

    Example:
        >>> publish_directory("/tmp/stage", "gs://bucket/models/reviews/3")  # doctest: +SKIP
    """
    record = upload_tree(local_dir, target)
    publish_complete(target, record)


def complete_damage(directory: str | os.PathLike) -> str | None:
    """Why a directory published to a URL is not complete (None when its marker and files agree).

    Local directories are written by an atomic rename and always count as complete.

    Example:
        >>> complete_damage("saved_models/reviews/1") is None
        True
    """
    if not is_url(directory):
        return None
    marker = join(directory, COMPLETE)
    try:
        recorded = json.loads(read_text(marker)).get("files", {})
    except FileNotFoundError:
        return (f"it has no {COMPLETE} marker (it is still being written, or its writer was interrupted)")
    except (ValueError, AttributeError, OSError) as err:
        return f"its {COMPLETE} marker cannot be read ({err})"
    for relative, expected in recorded.items():
        file = join(directory, *relative.split("/"))
        try:
            found = size(file)
        except FileNotFoundError:
            return f"{relative} is missing"
        if found != expected.get("bytes"):
            return f"{relative} is {found} bytes, not {expected.get('bytes')} (replaced or cut short)"
    return None


def check_complete(directory: str | os.PathLike, what: str, error: type[Exception] = ConfigError) -> None:
    """Raises `error` naming `what` when a directory published to a URL is not complete (see `complete_damage`).

    Example:
        >>> check_complete("saved_models/reviews/1", "the export")  # local: complete by construction
    """
    damage = complete_damage(directory)
    if damage is not None:
        raise error(f"{what} {os.fspath(directory)} is not complete: {damage}. Wait for its writer to finish, "
                    "or write it again")


def as_bytes_writer(write) -> bytes:
    """What `write(handle)` writes, as bytes (for a single-object write to a URL)."""
    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()
