"""Tasks: what a model learns to output and how it is scored — one registered spec per module.

| task | output | loss | headline |
|---|---|---|---|
| `single_label` | one class per text | sparse categorical cross-entropy | accuracy |
| `multi_label` | any classes per text | binary cross-entropy | micro-F1 |
| `regression` | a number per text | mean squared error | Pearson r |
| `tokens` | a tag per word (NER) | cross-entropy per word | entity F1 |
| `masked_lm` | masked word pieces (pretraining) | the model's own | masked accuracy |
| `similarity` | two texts' cosine (contrastive pairs) | mean squared error | loss |

Each task is a `TaskSpec` subclass in its own module here, registered with `register_task`; this
package imports every module beside it, so adding a task is adding one file (see base.py for the
contract). Nothing here imports TensorFlow.
"""

import importlib
import pkgutil

from tfhub_transfer.training.tasks.base import (
    TaskSpec,
    register_task,
    task_help,
    task_names,
    task_spec,
    task_specs,
    unregister_task,
)

# The registry (and --task) lists these first, in this order; any other module after them, by name.
_FIRST = ("single_label", "multi_label", "regression", "tokens", "masked_lm", "similarity")
for _name in (*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in _FIRST)):
    if _name != "base":
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["TaskSpec", "register_task", "task_help", "task_names", "task_spec", "task_specs", "unregister_task"]
