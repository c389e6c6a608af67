"""The task contract and its registry: one `TaskSpec` subclass per task, one module each.

A task says what a model learns to output and how that is scored. Each subclass declares:
- its `name` and `help` (one line: the CLI's `--task` help), and whether `train` offers it (`trainable`);
- its objective, by names in training.objectives' vocabulary: the `loss` on the model's logits (or
  score), its `metrics` (`weighted_metrics`: weighted by the per-token mask), the `activation` that turns
  logits into what a user reads, and the `report` that scores validation outputs;
- the best-epoch `monitor` (`monitor_mode`), and the `headline` score that `study` and `compare` show;
- its labels: what a target is (`target`), whether a class weight can be put on them (`no_class_weights`:
  why not), whether classes are named (`named_classes`), whether it labels each token (`per_token`);
- the options it refuses, with why (`refuses`: field -> reason), and the backbone it needs;
- the output names its export produces (`export_outputs`).

`register_task` adds a class to the registry; `task_spec("tokens")` finds it. Importing
`tfhub_transfer.training.tasks` registers every module in that folder, so adding a task is adding one
module there (and its test). Nothing here imports TensorFlow: the CLI reads the registry for `--task`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import ClassVar

from tfhub_transfer.errors import ConfigError

_REGISTRY: dict[str, TaskSpec] = {}


def register_task(cls: type[TaskSpec]) -> type[TaskSpec]:
    """Class decorator: makes a `TaskSpec` subclass available to `task_spec` by its name.

    Args:
        cls: the task class; its `name` must be new.

    Returns:
        The class itself.

    Example:
        >>> @register_task
        ... class Ranking(TaskSpec):  # doctest: +SKIP
        ...     name = "ranking"
    """
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"task {cls.name!r} is unnamed or already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def unregister_task(name: str) -> None:
    """Removes a task from the registry (for tests that register a toy task)."""
    _REGISTRY.pop(name, None)


def task_names(trainable_only: bool = True) -> list[str]:
    """The registered tasks' names in registration order: those `train --task` takes, or (False) all.

    Example:
        >>> task_names()[:2]
        ['single_label', 'multi_label']
    """
    return [name for name, spec in _REGISTRY.items() if spec.trainable or not trainable_only]


def task_specs(trainable_only: bool = True) -> list[TaskSpec]:
    """The registered task specs, in registration order (see `task_names`).

    Example:
        >>> [spec.headline for spec in task_specs()]
        ['accuracy', 'micro_f1', 'pearson', 'f1']
    """
    return [_REGISTRY[name] for name in task_names(trainable_only)]


def task_help() -> str:
    """The tasks as `--task`'s help lists them, from each spec's `help`.

    Example:
        >>> task_help().split("; ")[0]
        'single_label: one class per text'
    """
    return "; ".join(f"{spec.name}: {spec.help}" for spec in task_specs())


def task_spec(name: str) -> TaskSpec:
    """The spec registered under `name`.

    Args:
        name: a task name such as `single_label` or `tokens`.

    Returns:
        The registered `TaskSpec`.

    Raises:
        ConfigError: no task has that name; the message suggests the closest one.

    Example:
        >>> task_spec("regression").headline
        'pearson'
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"--task must be one of {task_names()}, not {name!r}{hint}")


class TaskSpec:
    """What a task's model outputs, how it is trained and scored, and what it refuses (see the module doc)."""

    name: ClassVar[str] = ""
    help: ClassVar[str] = ""
    trainable: ClassVar[bool] = True  # a `train --task` choice (masked_lm is `pretrain`'s)

    # -- objective: names in training.objectives' vocabulary ---------------------------------------------
    loss: ClassVar[str | None] = None  # None: the model computes its own loss
    metrics: ClassVar[tuple[str, ...]] = ()
    weighted_metrics: ClassVar[bool] = False  # the metrics count only weighted positions (tokens, masks)
    activation: ClassVar[str | None] = None  # logits -> what a user reads: softmax | sigmoid | None (as is)
    report: ClassVar[str | None] = None  # how validation outputs are scored (objectives.REPORTS)
    monitor: ClassVar[str] = "val_loss"  # the best epoch's Keras log key...
    monitor_mode: ClassVar[str] = "min"  # ...and whether higher (max) or lower (min) is better
    headline: ClassVar[str] = "loss"  # the report's main score (study, compare)
    headline_label: ClassVar[str | None] = None  # how study names the headline (None: `headline`)

    # -- labels ------------------------------------------------------------------------------------------
    target: ClassVar[str] = "class"  # what a label is: class (an id) | classes (multi-hot) | number | tag | piece
    named_classes: ClassVar[bool] = False  # outputs are classes with names (label_names)
    no_class_weights: ClassVar[str | None] = None  # why --class-weight does not apply (None: it does)
    per_token: ClassVar[bool] = False  # one output per token (taggers, masked LM), not per example
    needs_encoder: ClassVar[str | None] = None  # what it trains when only an encoder backbone can do it

    # -- what it refuses and what its export gives -------------------------------------------------------
    refuses: ClassVar[Mapping[str, str]] = {}  # config field -> why it does not apply to this task
    export_outputs: ClassVar[tuple[str, ...]] = ()  # the serving signature's output names

    def refusal(self, field: str) -> str | None:
        """Why option `field` does not apply to this task, or None when it does."""
        if field == "class_weight" and self.no_class_weights:
            return self.no_class_weights
        return self.refuses.get(field)

    @property
    def study_metric(self) -> str:
        """The headline as `study` labels its column (`entity_f1` for taggers)."""
        return self.headline_label or self.headline

    def __repr__(self) -> str:
        return f"<task {self.name}>"
