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
    """Where an encoder and its matching preprocessor live, and how to pool it."""

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


def read_metadata(directory: Path) -> dict:
    """The tfhub_transfer.json written beside a pair, or {}."""
    meta_file = directory / METADATA_FILE
    if meta_file.exists():
        return json.loads(meta_file.read_text(encoding="utf-8"))
    return {}


def _local_pair(directory: Path, name: str) -> EncoderSpec:
    problem = pair_damage(directory)
    if problem is not None:
        raise EncoderError(f"{directory} looks damaged or incomplete ({problem}); convert it again with "
                           "`tfhub-transfer encoders convert` (the default encoder is rebuilt by itself)")
    meta = read_metadata(directory)
    return EncoderSpec(
        name=name,
        encoder=str(directory / ENCODER_DIR),
        preprocessor=str(directory / PREPROCESSOR_DIR),
        pooling=meta.get("pooling", "cls"),
        has_embedding_output=meta.get("has_embedding_output", False),
        metadata=tuple(sorted((k, json.dumps(v)) for k, v in meta.items())),
    )


def latest_version(path: Path) -> Path:
    """`path`, or its highest numbered version subdirectory holding an encoder pair."""
    versions = [p for p in path.glob("*") if p.name.isdigit() and (p / ENCODER_DIR).is_dir()]
    return max(versions, key=lambda p: int(p.name)) if versions else path


def resolve_encoder(name: str = "default", preprocessor: str | None = None) -> EncoderSpec:
    """Returns the EncoderSpec for a name, path or handle (see the module docstring)."""
    if name in ("default", DEFAULT_NAME):
        return _local_pair(ensure_default_encoder(), DEFAULT_NAME)
    if is_hf_handle(name):
        spec = _local_pair(ensure_hf_encoder(name), name)
        return dataclasses.replace(spec, preprocessor=preprocessor) if preprocessor else spec
    path = latest_version(Path(name))
    if (path / ENCODER_DIR / "saved_model.pb").exists():
        spec = _local_pair(path, Path(name).name)
        return dataclasses.replace(spec, preprocessor=preprocessor) if preprocessor else spec
    if name in catalogue():
        entry = catalogue()[name]
        return EncoderSpec(name, entry["encoder"], preprocessor or entry["preprocessor"])
    if (path / "saved_model.pb").exists() or is_remote(name):
        if not preprocessor:
            raise EncoderError(
                f"{name} is a bare encoder: also pass its matching preprocessor "
                f"(--preprocessor HANDLE_OR_PATH), e.g. a bert_en_uncased_preprocess handle."
            )
        return EncoderSpec(path.name or name, name, preprocessor)
    raise EncoderError(
        f"unknown encoder {name!r}: not 'default', not an hf:ORG/NAME handle, not a catalogue name "
        f"(see `tfhub-transfer encoders list`), not a directory with encoder/ and preprocessor/, "
        f"and not a SavedModel or tfhub.dev/Kaggle handle."
    )
