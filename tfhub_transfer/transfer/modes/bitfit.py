"""`bitfit`: only the encoder's bias terms (and the new head) train (Ben Zaken et al., 2022).

BitFit updates about 0.1 % of a BERT's weights — every dense layer's bias and the layer norms' offsets
(`beta`, Hugging Face's `LayerNorm.bias`), as the paper's reference code does with `bias` in a name —
and reports results within about a point of full fine-tuning on GLUE with BERT-base. Kernels, embedding
tables and layer-norm scales stay fixed, so no weight gradient is computed for them.
"""

from __future__ import annotations

import dataclasses
import re

from tfhub_transfer.transfer.modes.base import TransferMode, register_mode

BIAS_NAME = re.compile(r"(^|/)(bias|beta)(:\d+)?$")
DEFAULT_LEARNING_RATE_FACTOR = 20.0  # the paper's rates (1e-4..1e-3) over fine-tuning's 5e-5


@register_mode
@dataclasses.dataclass(frozen=True)
class BitFit(TransferMode):
    """Bias-terms fine-tuning: the encoder's biases and layer-norm offsets train, nothing else of it."""

    name = "bitfit"
    summary = "the encoder's bias terms and layer-norm offsets, and the head (BitFit)"

    def fixed_variables(self, variables: list) -> list:
        return [v for v in variables if not BIAS_NAME.search(v.name)]

    def default_rate(self, encoder_rate: float) -> float:
        # Biases alone need larger steps than whole weight matrices (the paper sweeps 1e-4 .. 1e-3).
        return encoder_rate * DEFAULT_LEARNING_RATE_FACTOR
