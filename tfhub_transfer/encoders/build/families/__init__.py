"""Encoder families: importing this package registers every family module (see registry)."""

from tfhub_transfer.encoders.build.families import bert, distilbert, electra, mpnet, roberta  # noqa: F401  (registers)
from tfhub_transfer.encoders.build.families.registry import (
    EncoderFamily,
    families,
    family_for,
    register_family,
    supported_summary,
)

__all__ = ["EncoderFamily", "families", "family_for", "register_family", "supported_summary"]
