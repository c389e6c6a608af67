"""Transfer modes: which pretrained weights train, when, and how fast — one registered class per module.

| mode | what trains |
|---|---|
| `freeze` | the head only (feature extraction) |
| `finetune` | everything |
| `partial:K` | all but the embeddings and the bottom K layers |
| `gradual[:STEPS]` | one more group at a time, top-down, at discriminative rates |
| `discriminative[:DECAY]` | everything, each group at its own rate |
| `slow_embeddings:FACTOR` | everything; embeddings at FACTOR x LR |
| `reinit` | fresh weights (no-transfer baseline) |
| `contrastive[:ITERATIONS]` | few-shot (SetFit): pairs, then the head |
| `bitfit` | the encoder's bias terms and the head |

Each mode is a `TransferMode` subclass in its own module here, registered with `register_mode`; this
package imports every module beside it, so adding a mode is adding one file (see base.py for the
contract). Any mode that trains the encoder takes `frozen_epochs` (head-only epochs first, fastai's
`fine_tune`) and `embedding_multiplier` (`--embedding-lr-multiplier`).
"""

import importlib
import pkgutil

from tfhub_transfer.transfer.modes.base import (
    TransferMode,
    mode_class,
    mode_classes,
    mode_names,
    mode_syntax,
    register_mode,
)

_FIRST = ("freeze", "finetune", "partial", "gradual", "discriminative", "slow_embeddings", "reinit", "contrastive")
for _name in (*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _FIRST)):
    if _name != "base":
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["TransferMode", "mode_class", "mode_classes", "mode_names", "mode_syntax", "register_mode"]
