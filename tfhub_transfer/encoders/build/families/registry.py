"""The registry of encoder families: one module per architecture, chosen by config.json's `model_type`.

A family module declares, in one `EncoderFamily`, which `model_type`s it reads, how their config.json maps
onto the package's `BertConfig` (embedding vs hidden size, position offset, token types), how their
checkpoint tensors map onto the package's layers, and which tokenizers it accepts; then it calls
`register_family`. `encoders convert` dispatches on `model_type` through `family_for`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.families.weights import WeightSource
from tfhub_transfer.errors import EncoderError


@dataclasses.dataclass(frozen=True)
class EncoderFamily:
    """One architecture the converter understands.

    `read_config(values, path)` maps a config.json dict to a BertConfig; `assign_weights(encoder, head, src,
    values)`
    copies the checkpoint's tensors (names with `prefixes` stripped) and returns whether the checkpoint
    had a pooler and an MLM head; `tokenizers` are the tokenizer kinds (tokenizer_files) it accepts."""

    name: str
    model_types: tuple[str, ...]
    description: str
    read_config: Callable[[dict, Path], BertConfig]
    assign_weights: Callable[[BertEncoder, MaskedLMHead, WeightSource, dict], dict[str, bool]]
    prefixes: tuple[str, ...]
    tokenizers: tuple[str, ...]
    examples: tuple[str, ...] = ()
    notes: str = ""


_FAMILIES: dict[str, EncoderFamily] = {}


def register_family(family: EncoderFamily) -> EncoderFamily:
    """Adds `family` to the registry.

    Args:
      family: its `model_types` must not be claimed by a family already registered.

    Returns:
      `family`, so a module can write `FAMILY = register_family(EncoderFamily(...))`.

    Example:
      >>> register_family(EncoderFamily("mine", ("mine",), "...", read, assign, (), ("wordpiece",)))  # doctest: +SKIP
    """
    for model_type in family.model_types:
        owner = next((f for f in _FAMILIES.values() if model_type in f.model_types), None)
        if owner is not None and owner.name != family.name:
            raise ValueError(f"model_type {model_type!r} is already handled by family {owner.name!r}")
    _FAMILIES[family.name] = family
    return family


def families() -> list[EncoderFamily]:
    """The registered families, in registration order."""
    return list(_FAMILIES.values())


def supported_summary() -> str:
    """`bert (model_type bert), electra (...)`: for error messages and `encoders list`."""
    return ", ".join(f"{f.name} (model_type {'/'.join(f.model_types)})" for f in families())


def family_for(model_type: str | None, source: str | Path) -> EncoderFamily:
    """The family that reads `model_type` (a config.json without one is read as BERT, as older ones are).

    Args:
      model_type: config.json's `model_type`.
      source: the checkpoint, named in the error.

    Returns:
      The registered EncoderFamily.

    Raises:
      EncoderError: naming the supported families when none reads `model_type`.

    Example:
      >>> family_for("electra", "ckpt").name  # doctest: +SKIP
      'electra'
    """
    wanted = model_type or "bert"
    for family in families():
        if wanted in family.model_types:
            return family
    raise EncoderError(f"{source}: model_type {wanted!r} is not supported. Supported families: "
                       f"{supported_summary()}.")
