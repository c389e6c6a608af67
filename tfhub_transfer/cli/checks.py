"""Flag values checked while the command line is parsed, before TensorFlow is imported.

Each check returns the value as given or raises `argparse.ArgumentTypeError`. The syntax checks
(`transfer_mode`, `label_names`) are argparse `type=`s; the checks that look at the disk (files,
directories, encoder names) run in `check_arguments` once the line is parsed, so `build_parser()`
still parses any line. Either way the subcommand's usage and the error print, with exit status 2,
in a fraction of a second instead of after TensorFlow's import. Nothing here imports TensorFlow:
transfer modes come from the mode registry and tasks from the task registry (neither loads it),
encoder names from the catalogue file. `task_names` and `task_help` are read by the `--task` option
that config.py declares (`choices="task_names"`).
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
from importlib import resources
from pathlib import Path

from tfhub_transfer import storage
from tfhub_transfer.cache import is_remote
from tfhub_transfer.cli.parsing import closest
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.tasks import task_help, task_names  # noqa: F401  (named by config's --task option)
from tfhub_transfer.transfer.modes import TransferMode

TFDS_PREFIX = "tfds:"


def check_arguments(args: argparse.Namespace) -> None:
    """Checks the parsed files, directories and encoder names of any subcommand before it runs.

    Args:
        args: what `CliParser.parse_args` returned (it names the subcommand's parser).

    Returns:
        None; a failed check exits through the subcommand parser's `error` (its usage, status 2).

    Example:
        >>> check_arguments(build_parser().parse_args(["train", "--train", "missing.tsv"]))  # doctest: +SKIP
        usage: ... error: argument --train: no such file: missing.tsv
    """
    parser = args.command_parser
    for dest, check in ON_DISK.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            try:
                check(item)
            except argparse.ArgumentTypeError as err:
                parser.error(f"argument {_flag(parser, dest)}: {err}")


def _flag(parser: argparse.ArgumentParser, dest: str) -> str:
    action = next(a for a in parser._actions if a.dest == dest)
    return "/".join(action.option_strings) or action.metavar or dest


def input_file(value: str) -> str:
    """A data file that exists, or a TFDS name (`tfds:NAME[:SPLIT]`).

    Args:
        value: the flag's value.

    Returns:
        `value` unchanged.

    Example:
        >>> input_file("tfds:glue/sst2")
        'tfds:glue/sst2'
    """
    if value.startswith(TFDS_PREFIX) or storage.is_url(value) or Path(value).is_file():
        return value  # a URL (gs://, s3://, ram://) is checked where it is read, through tf.io.gfile
    if any(c in value for c in "*?[") and glob.glob(value):
        return value  # a glob of shards (train-*.csv), read one file after another
    path = Path(value)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{value} is a directory; give a file (.csv, .tsv, .jsonl)")
    siblings = [p.name for p in path.parent.iterdir()] if path.parent.is_dir() else []
    match = closest(path.name, siblings)
    hint = f"; did you mean {path.parent / match}?" if match else ""
    raise argparse.ArgumentTypeError(f"no such file: {value}{hint}")


def directory(value: str) -> str:
    """A directory that exists (returned unchanged).

    Args:
        value: the flag's value.

    Returns:
        `value` unchanged.

    Example:
        >>> directory(".")
        '.'
    """
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {value}")
    return value


def transfer_mode(value: str) -> str:
    """A transfer mode as written on the command line (`name[:ARG]`), checked by the mode registry.

    Args:
        value: e.g. `finetune`, `partial:3`.

    Returns:
        `value` unchanged (the training job parses it again with its recipe options).

    Example:
        >>> transfer_mode("gradual:100")
        'gradual:100'
    """
    try:
        TransferMode.parse(value)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def transfer_modes(value: str) -> str:
    """A comma-separated list of transfer modes, each checked as `transfer_mode` does.

    Args:
        value: e.g. `freeze,partial:3,finetune`.

    Returns:
        `value` unchanged.

    Example:
        >>> transfer_modes("freeze,finetune")
        'freeze,finetune'
    """
    modes = [m.strip() for m in value.split(",") if m.strip()]
    if not modes:
        raise argparse.ArgumentTypeError("give at least one transfer mode, e.g. freeze,finetune")
    for mode in modes:
        transfer_mode(mode)
    return value


def encoder_name(value: str) -> str:
    """`default`, a catalogue name, an existing path or a remote handle; a misspelt name gets the closest.

    Args:
        value: the flag's value.

    Returns:
        `value` unchanged (whether a path holds an encoder is checked when it loads).

    Example:
        >>> encoder_name("default")
        'default'
    """
    names = known_encoder_names()
    if value in names or is_remote(value) or value.startswith("hf:") or Path(value).exists():
        return value
    match = closest(value, names)
    hint = f" (did you mean {match}?)" if match else ""
    raise argparse.ArgumentTypeError(
        f"unknown encoder {value!r}{hint}: not 'default', not a catalogue name (`tfhub-transfer encoders "
        "list`), not an existing directory, not an hf:ORG/NAME handle and not a tfhub.dev/Kaggle handle")


def label_names(value: str) -> list[str]:
    """Comma-separated names of the integer classes 0, 1, ... (`neg,pos`).

    Args:
        value: the flag's value.

    Returns:
        The names, in class-id order.

    Example:
        >>> label_names("neg, pos")
        ['neg', 'pos']
    """
    names = [name.strip() for name in value.split(",")]
    if len(names) < 2 or not all(names):
        raise argparse.ArgumentTypeError(f"{value!r}: give two or more non-empty names separated by commas, "
                                         "one for each class id 0, 1, ... (e.g. neg,pos)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{value!r}: the name(s) {repeated} occur more than once")
    return names


# The values checked against the disk, by argparse destination, whichever subcommand has them.
ON_DISK = {"train": input_file, "valid": input_file, "test": input_file, "data": input_file, "file": input_file,
           "corpus": input_file, "word_vectors": input_file, "encoder": encoder_name, "tfds_data_dir": directory}


def known_encoder_names() -> list[str]:
    """`default`, the built-in encoder's own name and every catalogue name, read without TensorFlow."""
    package = resources.files("tfhub_transfer")
    catalogue = json.loads(package.joinpath("encoders", "catalogue.json").read_text("utf-8"))["encoders"]
    default_module = package.joinpath("encoders", "build", "default.py").read_text("utf-8")
    return ["default", _constant(default_module, "DEFAULT_NAME"), *catalogue]


def _constant(source: str, name: str):
    # encoders.build.default imports TensorFlow (through the converter), so its name is read from the source.
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} is not assigned in the module")


def epochs(value: str) -> int | str:
    """`--epochs`: `auto` or a whole number (its range is checked with the other options).

    Args:
        value: the flag's value.

    Returns:
        `"auto"` or the number.

    Example:
        >>> epochs("auto"), epochs("3")
        ('auto', 3)
    """
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: give a whole number of passes, or auto (enough optimizer "
                                         "steps for small data, one to three passes for large)") from None
