"""Layer groups of a Hub encoder, read from its variable names.

`hub.KerasLayer` is all-or-nothing trainable; partial freezing and per-layer
learning rates work on groups of its variables instead. Names follow TF Model
Garden's encoders (published Hub BERTs and this package's own):
`word_embeddings`, `position_embedding`, `type_embeddings`, `embeddings/layer_norm`
-> `embeddings`; `transformer/layer_<i>/...` -> `layer_<i>`; `pooler_transform` -> `pooler`.
"""

from __future__ import annotations

import dataclasses
import re

import tensorflow as tf

from tfhub_transfer.errors import EncoderError

_LAYER = re.compile(r"(?:^|/)transformer/layer_(\d+)/")
_EMBEDDING = re.compile(
    r"(?:^|/)(word_embeddings|position_embedding|type_embeddings|embeddings/layer_norm|"
    r"embedding_projection|embedding_postprocessor)"
)
_POOLER = re.compile(r"(?:^|/)pooler_transform")


def group_of(name: str) -> str | None:
    """The group a variable name belongs to, or None when the name is not understood."""
    layer = _LAYER.search(name)
    if layer:
        return f"layer_{int(layer.group(1))}"
    if _EMBEDDING.search(name):
        return "embeddings"
    if _POOLER.search(name):
        return "pooler"
    return None


@dataclasses.dataclass
class LayerGroups:
    """Encoder variables by group, ordered bottom (embeddings) to top (pooler)."""

    order: list[str]
    variables: dict[str, list[tf.Variable]]

    @property
    def num_layers(self) -> int:
        return sum(name.startswith("layer_") for name in self.order)

    def bottom(self, k: int) -> list[str]:
        """Embeddings plus the bottom `k` transformer layers."""
        if not 0 <= k <= self.num_layers:
            raise EncoderError(f"cannot freeze {k} layers of an encoder with {self.num_layers}")
        return ["embeddings"] + [f"layer_{i}" for i in range(k)]

    def describe(self) -> str:
        lines = []
        for name in self.order:
            count = sum(int(tf.size(v)) for v in self.variables[name])
            lines.append(f"{name:12} {len(self.variables[name]):3} variables {count:>12,} parameters")
        return "\n".join(lines)


def _order_key(name: str) -> tuple[int, int]:
    if name == "embeddings":
        return (0, 0)
    if name.startswith("layer_"):
        return (1, int(name.split("_")[1]))
    return (2, 0)


def layer_groups(variables: list[tf.Variable], source: str = "encoder") -> LayerGroups:
    """Groups an encoder's variables; raises EncoderError naming any variable it cannot place."""
    grouped: dict[str, list[tf.Variable]] = {}
    unknown = []
    for variable in variables:
        group = group_of(variable.name)
        if group is None:
            unknown.append(variable.name)
        else:
            grouped.setdefault(group, []).append(variable)
    if unknown or not any(g.startswith("layer_") for g in grouped):
        shown = unknown[:3] or [v.name for v in variables[:3]]
        raise EncoderError(
            f"cannot split {source} into layer groups: variable names such as {shown} do not "
            f"follow the Model Garden pattern (transformer/layer_<i>/...). Transfer modes that "
            f"need groups (partial, gradual, discriminative) do not work with this encoder; "
            f"use freeze or finetune."
        )
    order = sorted(grouped, key=_order_key)
    return LayerGroups(order, grouped)
