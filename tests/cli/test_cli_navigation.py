"""The command line is navigable: no abbreviated flags, a "did you mean" on every mistake, each
subcommand's usage on its own errors, checks before TensorFlow loads, --help grouped by concern."""

import argparse
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tfhub_transfer.cli import checks
from tfhub_transfer.cli.main import COMMANDS, _train_config, build_parser, main
from tfhub_transfer.cli.parsing import TITLES, did_you_mean

TRAINING_COMMANDS = ("train", "compare", "study-layers", "lr-find")


def _fail(capsys, argv: list[str]) -> str:
    """Runs the CLI on a line argparse refuses; returns stderr after checking the exit status is 2."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from _parsers(child)


def _help(capsys, monkeypatch, command: str) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one line per option's help
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def _sections(help_text: str) -> dict[str, str]:
    """--help's sections by title ("options", "data", ...)."""
    parts = re.split(r"^(\S[^\n]*):\n", help_text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def test_no_parser_takes_abbreviated_flags():
    parsers = list(_parsers(build_parser()))
    assert len(parsers) > 15  # the top level, every subcommand, encoders' and cache's own
    assert [p.prog for p in parsers if p.allow_abbrev] == []


def test_a_prefix_of_a_flag_is_an_error_that_names_the_flag(capsys, demo_data):
    err = _fail(capsys, ["train", "--train", str(demo_data), "--epoch", "2"])
    assert "unrecognized arguments: --epoch 2; did you mean --epochs?" in err


def test_an_unknown_flag_prints_the_subcommands_usage(capsys, demo_data):
    err = _fail(capsys, ["train", "--train", str(demo_data), "--batchsize", "8"])
    assert err.startswith("usage: tfhub-transfer train ")
    assert "tfhub-transfer train: error:" in err and "did you mean --batch-size?" in err
    err = _fail(capsys, ["encoders", "info", "default", "--variable"])
    assert err.startswith("usage: tfhub-transfer encoders info ") and "did you mean --variables?" in err


def test_a_misspelt_subcommand_gets_the_closest(capsys, demo_data):
    err = _fail(capsys, ["trian", "--train", str(demo_data)])
    assert "invalid choice: 'trian'" in err and err.rstrip().endswith("did you mean train?")
    assert "did you mean list?" in _fail(capsys, ["cache", "lst"])


def test_a_misspelt_choice_gets_the_closest(capsys, demo_data):
    err = _fail(capsys, ["train", "--train", str(demo_data), "--task", "singel_label"])
    assert "argument --task: invalid choice: 'singel_label'" in err and "did you mean single_label?" in err


def test_a_misspelt_encoder_gets_the_closest(capsys, demo_data):
    err = _fail(capsys, ["encoders", "info", "defualt"])
    assert err.startswith("usage: tfhub-transfer encoders info ")
    assert "unknown encoder 'defualt' (did you mean default?)" in err
    err = _fail(capsys, ["train", "--train", str(demo_data), "--encoder", "bert_en_uncased_L-12_H-768_A-11"])
    assert "argument --encoder" in err and "did you mean bert_en_uncased_L-12_H-768_A-12?" in err


def test_known_encoder_names_match_the_package(tmp_path):
    from tfhub_transfer.encoders.build.default import DEFAULT_NAME
    from tfhub_transfer.encoders.resolve import catalogue

    names = checks.known_encoder_names()
    assert names == ["default", DEFAULT_NAME, *catalogue()]
    assert checks.encoder_name(str(tmp_path)) == str(tmp_path)  # an existing directory is left to the loader
    assert checks.encoder_name("https://tfhub.dev/google/x/1") == "https://tfhub.dev/google/x/1"


def test_a_misspelt_mode_gets_the_closest_and_modes_are_checked_in_full(capsys, demo_data):
    err = _fail(capsys, ["train", "--train", str(demo_data), "--mode", "fintune"])
    assert "argument --mode: unknown transfer mode 'fintune'" in err and "did you mean 'finetune'?" in err
    err = _fail(capsys, ["train", "--train", str(demo_data), "--mode", "partial:x"])
    assert "argument --mode" in err and "'x' is not a number" in err
    err = _fail(capsys, ["compare", "--train", str(demo_data), "--modes", "freeze,gradul"])
    assert "argument --modes" in err and "did you mean 'gradual'?" in err
    assert checks.transfer_mode("partial:3") == "partial:3"


def test_a_missing_file_names_the_flag_and_the_closest_file(capsys, tmp_path):
    (tmp_path / "reviews.tsv").write_text("text\tlabel\nhi\tpos\n")
    err = _fail(capsys, ["train", "--train", str(tmp_path / "review.tsv")])
    assert err.startswith("usage: tfhub-transfer train ")
    assert f"argument --train: no such file: {tmp_path / 'review.tsv'}; did you mean {tmp_path / 'reviews.tsv'}?" in err
    err = _fail(capsys, ["train", "--train", str(tmp_path / "reviews.tsv"), "--valid", str(tmp_path)])
    assert "argument --valid:" in err and "is a directory" in err
    err = _fail(capsys, ["evaluate", "--model", "m", "--data", str(tmp_path / "nothing.csv")])
    assert "argument --data: no such file" in err


# Each line must fail in the CLI layer, before anything imports TensorFlow.
EARLY_FAILURES = {
    "mode": (["--mode", "fintune"], "did you mean 'finetune'?"),
    "file": (["--train", "missing.tsv"], "no such file: missing.tsv"),
    "task": (["--task", "regresion"], "did you mean regression?"),
    "flag": (["--epoch", "2"], "did you mean --epochs?"),
    "encoder": (["--encoder", "defualt"], "did you mean default?"),
    "label_names": (["--label-names", "pos"], "two or more non-empty names"),
}
PROBE = textwrap.dedent("""
    import sys
    from tfhub_transfer.cli.main import main

    try:
        main(sys.argv[1:])
    except SystemExit as exited:
        print("tensorflow loaded" if "tensorflow" in sys.modules else "tensorflow not loaded", exited.code)
""")


@pytest.mark.parametrize("case", sorted(EARLY_FAILURES))
def test_bad_lines_fail_before_tensorflow_is_imported(case, demo_data):
    flags, message = EARLY_FAILURES[case]
    argv = ["train", "--train", str(demo_data), "--out", "unused", *flags]
    run = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "tensorflow not loaded 2", run.stderr
    assert message in run.stderr


def test_train_help_is_grouped_by_the_config_concerns(capsys, monkeypatch):
    sections = _sections(_help(capsys, monkeypatch, "train"))
    assert list(TITLES.values()) == [t for t in sections if t in TITLES.values()]
    assert re.findall(r"^  (-\S+)", sections["options"], flags=re.M) == ["-h,", "--debug"]
    placed = {"data": ["--train", "--text-column", "--tfds-data-dir", "--label-names"],
              "model and encoder": ["--encoder", "--seq-length", "--pooling"],
              "transfer mode and recipe": ["--mode", "--frozen-epochs", "--no-standardize-features"],
              "optimisation": ["--epochs", "--batch-size", "--lr", "--early-stopping"],
              "runtime and distribution": ["--distribution", "--resume", "--no-resume", "--seed", "--quiet"],
              "output and export": ["--name", "--out", "--no-export", "--export-format"]}
    for title, flags in placed.items():
        shown = re.findall(r"^  (--[\w-]+)", sections[title], flags=re.M)
        assert set(flags) <= set(shown), (title, shown)


@pytest.mark.parametrize("command", ["compare", "study-layers", "lr-find", "pretrain"])
def test_subcommands_sharing_training_flags_use_the_same_groups(command, capsys, monkeypatch):
    sections = _sections(_help(capsys, monkeypatch, command))
    options = re.findall(r"^  (--[\w-]+)", sections["options"], flags=re.M)
    assert options == ["--debug"], options  # every other flag sits in a concern's group
    assert {"data", "optimisation", "output and export"} <= set(sections)
    assert ("transfer mode and recipe" in sections) == (command != "pretrain")  # no empty group is printed


def test_each_default_is_stated_once_and_truly(capsys, monkeypatch):
    text = _help(capsys, monkeypatch, "train")
    # Each option with its help on one line (a long option's help starts on the next line).
    lines = [" ".join(chunk.split("\n\n")[0].split())  # up to a blank line: the next group's title
             for chunk in re.split(r"\n  (?=-)", text) if chunk.startswith("-")]
    assert "(default: True)" not in text and "(default: False)" not in text and "(default: None)" not in text
    assert [line for line in lines if line.count("(default") > 1] == []
    assert [line for line in lines if line.startswith("--no-") and "(default: True)" in line] == []
    tensorboard = next(line for line in lines if line.startswith("--tensorboard, --no-tensorboard"))
    assert tensorboard.endswith("(default: --tensorboard)")
    resume = next(line for line in lines if line.startswith("--resume "))
    assert "must resume" in resume and "resume automatically when a backup of this same run exists" in resume
    no_resume = next(line for line in lines if line.startswith("--no-resume "))
    assert "start over" in no_resume


def test_label_names_are_parsed_and_checked(demo_data, capsys):
    args = build_parser().parse_args(["train", "--train", str(demo_data), "--label-names", "neg, pos"])
    assert args.label_names == ["neg", "pos"]
    assert build_parser().parse_args(["train", "--train", str(demo_data)]).label_names is None
    err = _fail(capsys, ["train", "--train", str(demo_data), "--label-names", "neg,pos,neg"])
    assert "argument --label-names" in err and "['neg'] occur more than once" in err


def test_label_names_reach_the_training_config(demo_data):
    args = build_parser().parse_args(["train", "--train", str(demo_data), "--label-names", "neg,pos"])
    assert _train_config(args).label_names == ["neg", "pos"]


def test_integer_labels_come_back_named_from_the_cli(tiny_encoder, tmp_path, capsys):
    data = tmp_path / "ids.tsv"
    rows = [("a wonderful film", 1), ("an awful plot", 0)] * 20
    data.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    code = main(["train", "--train", str(data), "--label-names", "neg,pos", "--encoder", str(tiny_encoder),
                 "--epochs", "1", "--seq-length", "16", "--no-tensorboard", "--out", str(tmp_path), "--name", "ids",
                 "--quiet"])
    assert code == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "ids" / "1"), "a wonderful film", "an awful plot"]) == 0
    predicted = [line.split("\t")[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert len(predicted) == 2 and set(predicted) <= {"neg", "pos"}


def test_tfds_data_dir_is_what_tfds_reads_while_the_command_runs(demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    seen = []
    monkeypatch.setitem(COMMANDS, "train", lambda args: seen.append(os.environ.get("TFDS_DATA_DIR")) or 0)
    assert main(["train", "--train", "tfds:glue/sst2", "--tfds-data-dir", str(tmp_path)]) == 0
    assert seen == [str(tmp_path.resolve())] and "TFDS_DATA_DIR" not in os.environ  # restored afterwards
    err = _fail(capsys, ["train", "--train", str(demo_data), "--tfds-data-dir", str(tmp_path / "none")])
    assert f"argument --tfds-data-dir: no such directory: {tmp_path / 'none'}" in err


def test_the_offline_tfds_error_says_what_to_download_where(tmp_path, monkeypatch):
    from tfhub_transfer.data.tables import read_table
    from tfhub_transfer.errors import DataError

    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError) as error:
        read_table("tfds:glue/sst2:validation", "sentence", "label")
    message = str(error.value)
    assert "`tfds build glue/sst2 --data_dir DIR`" in message and "--tfds-data-dir DIR" in message
    assert "TFDS_DATA_DIR" in message


def test_did_you_mean_only_suggests_close_words():
    assert did_you_mean("--batchsize", ["--batch-size", "--seed"]) == "; did you mean --batch-size?"
    assert did_you_mean("--zzz", ["--batch-size", "--seed"]) == ""


def test_a_misspelt_column_gets_a_suggestion():
    import pandas as pd

    from tfhub_transfer.data.tables import read_table
    from tfhub_transfer.errors import DataError

    with pytest.raises(DataError, match="no column 'txt'.*Did you mean 'text'"):
        read_table(pd.DataFrame({"text": ["a"], "label": ["b"]}), text_column="txt")
