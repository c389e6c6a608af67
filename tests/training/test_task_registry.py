"""Tasks are registered specs: objective, metrics, refusals and export outputs each say what they are, and a
new task is one module (here: a toy task registered in the test) that the CLI and the option checks pick up."""

from __future__ import annotations

import numpy as np
import pytest

from tfhub_transfer.cli.main import _train_config, build_parser
from tfhub_transfer.config import TrainConfig, field_default
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.training.objectives import compile_args, validation_report
from tfhub_transfer.training.tasks import TaskSpec, register_task, task_names, task_spec, unregister_task
from tfhub_transfer.training.weighting import check_task

DOCUMENTED = {  # task -> (loss class, metric names, monitor, monitor mode, headline, per token, export outputs)
    "single_label": ("SparseCategoricalCrossentropy", ["accuracy", "macro_f1"], "val_accuracy", "max", "accuracy",
                     False, ("probabilities", "label_ids", "labels")),
    "multi_label": ("BinaryCrossentropy", ["micro_f1"], "val_micro_f1", "max", "micro_f1", False,
                    ("probabilities", "predicted", "labels")),
    "regression": ("MeanSquaredError", ["mae"], "val_loss", "min", "pearson", False, ("score",)),
    "tokens": ("SparseCategoricalCrossentropy", ["token_accuracy"], "val_token_accuracy", "max", "f1", True,
               ("tags", "words", "num_words")),
    "masked_lm": (None, ["masked_accuracy"], "val_loss", "min", "masked_accuracy", True, ()),
    "similarity": ("MeanSquaredError", [], "val_loss", "min", "loss", False, ()),
}


def _task_choices(parser) -> list[str]:
    train = parser._subparsers._group_actions[0].choices["train"]
    return list(next(a for a in train._actions if a.dest == "task").choices)


def test_the_registry_holds_the_documented_tasks():
    assert task_names() == ["single_label", "multi_label", "regression", "tokens"]
    assert task_names(trainable_only=False) == [*task_names(), "masked_lm", "similarity"]


@pytest.mark.parametrize("task", sorted(DOCUMENTED))
def test_each_spec_gives_its_documented_objective(task):
    loss, metrics, monitor, mode, headline, per_token, outputs = DOCUMENTED[task]
    spec = task_spec(task)
    args = compile_args(task, 3)
    assert (type(args["loss"]).__name__ if args["loss"] is not None else None) == loss
    assert [m.name for m in args.get("metrics", []) + args.get("weighted_metrics", [])] == metrics
    assert ("weighted_metrics" in args) == per_token  # per-token metrics count the weighted positions only
    if loss is not None:
        assert args["loss"].get_config().get("from_logits", False) == (spec.target != "number")
    assert (spec.monitor, spec.monitor_mode, spec.headline, spec.per_token) == (monitor, mode, headline, per_token)
    assert spec.export_outputs == outputs


def test_reports_score_the_logits_as_each_task_reads_them():
    y = np.array([0, 1, 1])
    logits = np.array([[2.0, -1.0], [0.0, 3.0], [1.0, 0.5]])
    assert validation_report("single_label", y, logits, 2)["accuracy"] == pytest.approx(2 / 3)
    scores = validation_report("regression", np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.1], [2.9]]), 1)
    assert scores["pearson"] > 0.99
    multi = validation_report("multi_label", np.array([[1, 0], [0, 1]]), np.array([[3.0, -3.0], [-3.0, 3.0]]), 2)
    assert multi["micro_f1"] == pytest.approx(1.0)
    assert validation_report("single_label", np.array([]), logits, 2) == {}


REFUSED = {  # task -> (an option it refuses, the flag's value, the reason's words)
    "multi_label": ("class_weight", "balanced", "several labels at once"),
    "regression": ("label_names", ["a", "b"], "a number, not a class id"),
    "tokens": ("pooling", "max", "nothing to pool"),
}


@pytest.mark.parametrize("task", sorted(REFUSED))
def test_each_spec_refuses_its_options_naming_flag_and_task(task):
    field, value, why = REFUSED[task]
    with pytest.raises(ConfigError, match=f"does not apply to --task {task}: .*{why}"):
        check_options(TrainConfig.of(train="x", task=task, **{field: value}))


def test_class_weights_follow_the_spec():
    check_task("single_label")
    with pytest.raises(ConfigError, match="--class-weight does not apply to --task regression: regression targets"):
        check_task("regression")
    assert task_spec("single_label").no_class_weights is None


def test_study_names_the_taggers_headline_entity_f1():
    assert task_spec("tokens").study_metric == "entity_f1"
    assert task_spec("single_label").study_metric == "accuracy"


def test_cli_task_choices_are_the_registry_and_the_default_is_registered():
    assert _task_choices(build_parser()) == task_names()
    assert field_default("task") in task_names()


def test_an_unknown_task_is_refused_naming_the_registered_ones():
    with pytest.raises(ConfigError, match=r"--task must be one of \['single_label'"):
        check_options(TrainConfig.of(train="x", task="ranking"))


@pytest.fixture
def toy_task():
    @register_task
    class Ranking(TaskSpec):
        name = "ranking"
        help = "an order of texts"
        loss = "mean_squared_error"
        report = "regression"
        headline = "pearson"
        refuses = {"pooling": "rankings read whole texts"}

    yield Ranking
    unregister_task("ranking")


def test_a_new_task_module_reaches_the_cli_and_the_option_checks(toy_task):
    parser = build_parser()
    assert _task_choices(parser)[-1] == "ranking"
    args = parser.parse_args(["train", "--train", "x.csv", "--task", "ranking", "--pooling", "max"])
    config = _train_config(args)
    assert config.task == "ranking"
    with pytest.raises(ConfigError, match="^--pooling does not apply to --task ranking: rankings read whole texts"):
        check_options(config)
    check_options(config.replace(pooling=None))  # everything else applies
    assert compile_args("ranking", 1)["loss"].__class__.__name__ == "MeanSquaredError"


def test_a_task_name_is_registered_once(toy_task):
    with pytest.raises(ValueError, match="already registered"):
        register_task(toy_task)


def test_each_spec_says_what_its_targets_are():
    targets = {task: task_spec(task).target for task in DOCUMENTED}
    assert targets == {"single_label": "class", "multi_label": "classes", "regression": "number", "tokens": "tag",
                       "masked_lm": "piece", "similarity": "number"}
    assert [t for t in DOCUMENTED if task_spec(t).named_classes] == ["single_label", "multi_label"]
