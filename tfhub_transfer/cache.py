"""Where things are cached: the package's own cache (the converted default encoder, feature caches)
and tensorflow_hub's download cache, and whether a hub handle can be loaded here at all."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from tfhub_transfer.errors import EncoderError


def cache_dir() -> Path:
    """`$TFHUB_TRANSFER_CACHE`, else `$XDG_CACHE_HOME/tfhub_transfer`, else `~/.cache/tfhub_transfer`."""
    explicit = os.environ.get("TFHUB_TRANSFER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tfhub_transfer"


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
