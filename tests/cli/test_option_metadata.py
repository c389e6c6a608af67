"""Every training option is declared once, as config field metadata; the CLI, ranges and messages follow it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from tfhub_transfer.cli.main import _train_config, build_parser
from tfhub_transfer.config import CONCERNS, TrainConfig, check_value, field_default, flag, option_of, options
from tfhub_transfer.errors import ConfigError

# `tfhub-transfer train --help`'s option strings before the flags were generated from the metadata (#35).
FROZEN_TRAIN_FLAGS = [  # today's flags (+ --streaming, #37; --pairs, #32): a change here is a change users see
    "--architecture", "--backup-every", "--batch-size", "--cache-dir", "--class-weight", "--debug", "--distribution",
    "--dropout", "--dtype", "--early-stopping", "--embedding-lr-multiplier", "--embedding-mode", "--encoder",
    "--epochs", "--export-format", "--feature-cache", "--frozen-epochs", "--head", "--head-lr",
    "--head-lr-multiplier", "--help", "--jit-compile", "--keep-backups", "--label-column", "--label-names",
    "--label-separator", "--layer-mix", "--long-text", "--lr", "--lr-mult", "--max-sentences", "--max-steps",
    "--max-tokens", "--max-train-examples", "--mode", "--name", "--no-bucket", "--no-export", "--no-restore-best",
    "--no-resume", "--no-standardize-features", "--no-tensorboard", "--optimizer", "--out", "--pack", "--pairs",
    "--pooling",
    "--preprocessor", "--quantize", "--quiet", "--resume", "--rnn", "--rnn-units", "--schedule", "--seed",
    "--seq-length", "--slow-factor", "--steps-per-execution", "--streaming", "--task", "--tensorboard",
    "--text-b-column",
    "--text-column", "--text-embedding", "--tfds-data-dir", "--time-budget", "--train", "--tune-head", "--valid",
    "--validation-fraction", "--warmup-fraction", "--weight-column", "--weight-decay", "--word-vectors", "-h",
]
# Flags of `train` that set no TrainConfig field of their own (documented CLI-only flags).
CLI_ONLY = {"--debug", "--help", "-h", "--tfds-data-dir", "--max-sentences"}
API_ONLY = {"shuffle", "callbacks"}  # fields with no flag: a DataFrame's order, Keras callback objects


def _train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def _flags_of(parser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}


def test_train_flags_are_todays_flags():
    assert sorted(_flags_of(_train_parser())) == FROZEN_TRAIN_FLAGS


def test_every_field_has_a_train_flag_and_every_flag_a_field():
    by_field = {}
    for action in _train_parser()._actions:
        for opt in action.option_strings:
            by_field.setdefault(getattr(action, "config_field", None), set()).add(opt)
    fields = {f.name for cls in CONCERNS.values() for f in dataclasses.fields(cls)}
    assert set(by_field) - {None} == fields - API_ONLY
    assert by_field[None] == CLI_ONLY
    assert by_field["resume"] == {"--resume", "--no-resume"}
    assert by_field["tensorboard"] == {"--tensorboard", "--no-tensorboard"}


def test_each_flag_sits_in_the_group_of_its_fields_concern():
    titles = {"data": "data", "model": "model and encoder", "transfer": "transfer mode and recipe",
              "optimization": "optimisation", "runtime": "runtime and distribution", "output": "output and export"}
    groups = {a: g.title for g in _train_parser()._action_groups for a in g._group_actions}
    for concern, cls in CONCERNS.items():
        for field in dataclasses.fields(cls):
            actions = [a for a in groups if getattr(a, "config_field", None) == field.name]
            assert all(groups[a] == titles[concern] for a in actions), field.name


def test_defaults_are_the_fields_defaults():
    args = build_parser().parse_args(["train", "--train", "x.csv"])
    assert _train_config(args, train=None) == TrainConfig()


RANGED = {  # field -> (flag, a value outside its range)
    "validation_fraction": ("--validation-fraction", "1"), "max_train_examples": ("--max-train-examples", "0"),
    "dropout": ("--dropout", "1"), "seq_length": ("--seq-length", "2"), "slow_factor": ("--slow-factor", "0"),
    "rnn_units": ("--rnn-units", "0"), "max_tokens": ("--max-tokens", "2"), "packing": ("--pack", "-1"),
    "embedding_lr_multiplier": ("--embedding-lr-multiplier", "0"), "frozen_epochs": ("--frozen-epochs", "-1"),
    "lr_mult": ("--lr-mult", "0.5"), "epochs": ("--epochs", "0"), "batch_size": ("--batch-size", "0"),
    "learning_rate": ("--lr", "0"), "warmup_fraction": ("--warmup-fraction", "1.5"),
    "weight_decay": ("--weight-decay", "-0.1"), "head_learning_rate": ("--head-lr", "-1"),
    "head_lr_multiplier": ("--head-lr-multiplier", "0"), "early_stopping": ("--early-stopping", "-1"),
    "steps_per_execution": ("--steps-per-execution", "0"), "backup_every_steps": ("--backup-every", "-5"),
}


def test_the_table_covers_every_declared_range():
    assert {name for name, spec in options().items() if spec.range} == set(RANGED)


@pytest.mark.parametrize("field", sorted(RANGED))
def test_each_range_is_enforced_naming_the_flag(field):
    cli_flag, bad = RANGED[field]
    assert flag(field) == cli_flag
    args = build_parser().parse_args(["train", "--train", "x.csv", cli_flag, bad])
    config = _train_config(args)
    expected = f"{cli_flag} {getattr(config, field)}: must be {option_of(field).range.what}"
    with pytest.raises(ConfigError, match="^" + re.escape(expected)):
        check_value(field, getattr(config, field))
    check_value(field, field_default(field))  # the default is in range


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "3", True])
def test_a_range_refuses_what_is_not_a_finite_number(value):
    with pytest.raises(ConfigError, match="^--batch-size .*: must be a whole number >= 1"):
        check_value("batch_size", value)


def test_open_and_closed_ends():
    check_value("warmup_fraction", 1.0)  # [0, 1]
    check_value("validation_fraction", 0.0)  # [0, 1)
    with pytest.raises(ConfigError):
        check_value("validation_fraction", 1.0)
    check_value("epochs", "auto")
    with pytest.raises(ConfigError, match="--epochs 'often'"):
        check_value("epochs", "often")


SAMPLE = [  # (argv, field, value it sets)
    (["--epochs", "3"], "epochs", 3), (["--lr", "0.002"], "learning_rate", 0.002),
    (["--head-lr", "0.01"], "head_learning_rate", 0.01), (["--pack", "64"], "packing", 64),
    (["--no-bucket"], "bucket", False), (["--quiet"], "verbose", 0), (["--no-restore-best"], "restore_best", False),
    (["--no-export"], "export", False), (["--no-tensorboard"], "tensorboard", False), (["--resume"], "resume", True),
    (["--no-resume"], "resume", False), (["--no-standardize-features"], "standardize_features", False),
    (["--out", "o"], "output_dir", "o"), (["--backup-every", "7"], "backup_every_steps", 7),
    (["--label-names", "neg,pos"], "label_names", ["neg", "pos"]), (["--mode", "partial:2"], "mode", "partial:2"),
    (["--task", "regression"], "task", "regression"), (["--time-budget", "1.5"], "time_budget", 1.5),
    (["--max-sentences", "9"], "max_train_examples", 9), (["--feature-cache"], "feature_cache", True),
    (["--export-format", "onnx"], "export_format", "onnx"), (["--layer-mix", "last"], "layer_mix", "last"),
]


@pytest.mark.parametrize(("argv", "field", "value"), SAMPLE, ids=[" ".join(s[0]) for s in SAMPLE])
def test_a_flag_sets_its_field(argv, field, value):
    config = _train_config(build_parser().parse_args(["train", "--train", "x.csv", *argv]))
    assert getattr(config, field) == value
    assert value != field_default(field)


def test_messages_name_the_flag_that_moves_a_field_off_its_default():
    assert [flag(f) for f in ("learning_rate", "bucket", "verbose", "tensorboard", "resume", "output_dir", "shuffle")] \
        == ["--lr", "--no-bucket", "--quiet", "--no-tensorboard", "--resume/--no-resume", "--out", "shuffle"]


def test_architecture_refusals_come_from_the_option():
    from tfhub_transfer.jobs.options import check_options

    assert option_of("pooling").refused["rnn"] == "it applies to encoder models, not word-vector RNNs"
    config = TrainConfig.of(train="x.csv", word_vectors="v.txt", pooling="max")
    with pytest.raises(ConfigError, match="^--pooling does not apply to rnn models: it applies to encoder models"):
        check_options(config)


def test_compare_takes_no_output_fields_from_its_own_out():
    parser = build_parser()
    args = parser.parse_args(["compare", "--train", "x.csv", "--out", "elsewhere"])
    assert _train_config(args).output_dir == field_default("output_dir")
