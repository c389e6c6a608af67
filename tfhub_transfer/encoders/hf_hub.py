"""`hf:ORG/NAME[@REVISION]` encoder handles: a Hugging Face Hub checkpoint, converted once into the cache.

The checkpoint's files come through `huggingface_hub.snapshot_download` (its own cache, `HF_HUB_CACHE` /
`HF_HOME`; only the files the converter reads). The conversion is written to
`<cache>/encoders/hf--ORG--NAME--<commit>` (keyed by repository and resolved commit) and reused from then on,
offline too: a handle already in the Hugging Face cache or already converted needs no network. With neither
and no network (or `HF_HUB_OFFLINE=1`), one EncoderError names both caches and the local-directory
alternative (`encoders convert DIR OUT`, then `--encoder OUT`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

from tfhub_transfer.cache import ENCODERS_DIR, cache_dir, check_cache_dir
from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint
from tfhub_transfer.encoders.build.default import is_current
from tfhub_transfer.encoders.build.hub_writer import METADATA_FILE
from tfhub_transfer.errors import EncoderError

PREFIX = "hf:"
# What the converter reads (and the tokenizer files it recognises, so a refusal can name them); never the
# PyTorch / TF / ONNX weights beside them.
ALLOW_PATTERNS = ["config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt", "tokenizer_config.json",
                  "sentencepiece.bpe.model", "tokenizer.model", "vocab.json", "merges.txt", "modules.json",
                  "1_Pooling/config.json", "special_tokens_map.json"]
_REPO = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")
_TRUE = ("1", "true", "yes", "on")


def is_hf_handle(name: str) -> bool:
    return name.startswith(PREFIX)


def parse_hf_handle(handle: str) -> tuple[str, str]:
    """`hf:ORG/NAME[@REVISION]` -> (repository id, revision; "main" when none is given).

    Args:
      handle: e.g. "hf:klue/roberta-base" or "hf:klue/roberta-base@v1.0".

    Returns:
      (repo_id, revision).

    Raises:
      EncoderError: for a handle that names no repository.

    Example:
      >>> parse_hf_handle("hf:klue/roberta-base@main")
      ('klue/roberta-base', 'main')
    """
    body = handle[len(PREFIX):] if is_hf_handle(handle) else handle
    repo, at, revision = body.partition("@")
    if not _REPO.match(repo) or (at and not revision):
        raise EncoderError(f"{handle!r} is not a Hugging Face handle: write hf:ORG/NAME or hf:ORG/NAME@REVISION "
                           "(e.g. hf:klue/roberta-base, hf:intfloat/multilingual-e5-small@main)")
    return repo, revision or "main"


def hf_cache_dir() -> Path:
    """huggingface_hub's cache, read from the environment at call time (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE


def converted_dir(repo: str, commit: str) -> Path:
    """Where the conversion of `repo` at `commit` lives in the package's cache."""
    return check_cache_dir(cache_dir()) / ENCODERS_DIR / f"hf--{repo.replace('/', '--')}--{commit[:12]}"


def _snapshot(repo: str, revision: str, local_only: bool) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise EncoderError("hf: handles need huggingface_hub: pip install 'tfhub_transfer[hf]' (or convert a "
                           "downloaded checkpoint directory with `tfhub-transfer encoders convert DIR OUT`)") from None
    return Path(snapshot_download(repo, revision=revision, cache_dir=str(hf_cache_dir()),
                                  allow_patterns=ALLOW_PATTERNS, local_files_only=local_only))


def _previous_conversion(repo: str, revision: str) -> Path | None:
    """A conversion of `repo` at `revision` made earlier (the Hugging Face cache may have been cleared since)."""
    root = check_cache_dir(cache_dir()) / ENCODERS_DIR
    for candidate in sorted(root.glob(f"hf--{repo.replace('/', '--')}--*")):
        try:
            meta = json.loads((candidate / METADATA_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if revision in (meta.get("hf_revision"), meta.get("hf_commit")) and is_current(candidate):
            return candidate
    return None


def _unreachable(handle: str, repo: str, why: str) -> EncoderError:
    converted = check_cache_dir(cache_dir()) / ENCODERS_DIR
    return EncoderError(
        f"cannot fetch {handle}: {why}. It is neither in the Hugging Face cache ({hf_cache_dir()}, set by "
        f"HF_HUB_CACHE / HF_HOME) nor converted in this package's cache ({converted}). "
        f"Fetch it once where the network is reachable (the conversion is reused offline), or download the "
        f"checkpoint directory of {repo} (config.json, model.safetensors, tokenizer files), convert it with "
        f"`tfhub-transfer encoders convert DIR OUT` and pass --encoder OUT.")


def _download(handle: str, repo: str, revision: str) -> Path:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if _offline():
        raise _unreachable(handle, repo, "HF_HUB_OFFLINE is set")
    try:
        return _snapshot(repo, revision, local_only=False)
    except GatedRepoError:
        raise EncoderError(f"{handle}: the repository is gated; accept its terms on huggingface.co and log in "
                           "(`hf auth login` or HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise EncoderError(f"{handle}: no repository {repo} on the Hugging Face Hub (or it is private: log in "
                           "with `hf auth login` or set HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise EncoderError(f"{handle}: {repo} has no revision {revision!r} (a branch, tag or commit)") from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        raise _unreachable(handle, repo, f"the Hub cannot be reached ({type(err).__name__})") from None


def hf_snapshot(handle: str) -> Path:
    """The checkpoint directory of an `hf:` handle in the Hugging Face cache, downloaded when missing.

    Args:
      handle: `hf:ORG/NAME` or `hf:ORG/NAME@REVISION`.

    Returns:
      huggingface_hub's `snapshots/<commit>` directory (the files the converter reads).

    Example:
      >>> hf_snapshot("hf:klue/roberta-base").name  # doctest: +SKIP
      '02f94ba5e3fcb7e2a58a390b8639b0fac974a8da'
    """
    repo, revision = parse_hf_handle(handle)
    try:
        return _snapshot(repo, revision, local_only=True)
    except (OSError, ValueError):  # huggingface_hub's LocalEntryNotFoundError is an OSError
        return _download(handle, repo, revision)


def ensure_hf_encoder(handle: str, verbose: bool = True) -> Path:
    """The converted encoder pair of an `hf:` handle, fetching and converting it on first use.

    Args:
      handle: `hf:ORG/NAME` or `hf:ORG/NAME@REVISION` (a branch, tag or commit).
      verbose: print a line when it converts.

    Returns:
      The pair's directory in the package's cache (encoder/, preprocessor/, tfhub_transfer.json).

    Raises:
      EncoderError: for a bad handle, an unreachable uncached one, or a checkpoint the converter refuses.

    Example:
      >>> ensure_hf_encoder("hf:klue/roberta-base")  # doctest: +SKIP
      PosixPath('/home/me/.cache/tfhub_transfer/encoders/hf--klue--roberta-base--02f94ba5e3fc')
    """
    repo, revision = parse_hf_handle(handle)
    try:
        snapshot = _snapshot(repo, revision, local_only=True)
    except (OSError, ValueError):  # huggingface_hub's LocalEntryNotFoundError is an OSError
        previous = _previous_conversion(repo, revision)
        if previous is not None:
            return previous
        snapshot = _download(handle, repo, revision)
    return _convert_once(handle, repo, revision, snapshot, verbose)


def _convert_once(handle: str, repo: str, revision: str, snapshot: Path, verbose: bool) -> Path:
    commit = snapshot.name  # huggingface_hub's snapshots/<commit> folder
    target = converted_dir(repo, commit)
    if is_current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent first uses convert once
        if is_current(target):
            return target
        if verbose:
            print(f"Converting {handle} ({commit[:12]}) into TF Hub format at {target} (once) ...", flush=True)
        metadata = {"name": repo.split("/")[-1], "origin": f"https://huggingface.co/{repo}",
                    "hf_repo": repo, "hf_revision": revision, "hf_commit": commit}
        stale = (target / "encoder" / "saved_model.pb").exists()
        return convert_hf_checkpoint(snapshot, target, metadata, overwrite=stale)
