"""The command line's parser: no abbreviated flags, a "did you mean" on every mistake, --help by concern.

`CliParser` is the class of every parser and subparser `tfhub-transfer` builds: it refuses prefixes of
flags (`--epoch` is not `--epochs`), names the closest flag, subcommand or choice on a mistake, and
reports an unknown flag with the usage of the subcommand it was given to. `ConcernGroups` files each
flag of a training subcommand under the configuration concern (config.py's dataclasses) holding the
field it sets, so `train --help` reads in the same groups as `TrainConfig`.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Sequence

from tfhub_transfer.config import CONCERNS, concern_of_field, options

TITLES = {"data": "data", "model": "model and encoder", "transfer": "transfer mode and recipe",
          "optimization": "optimisation", "runtime": "runtime and distribution", "output": "output and export"}
# Flags whose destination is not the name of the config field they set (`lr` -> learning_rate), from the
# fields' metadata.
FLAG_FIELDS = {spec.dest: name for name, spec in options().items() if spec.dest}
# Flags that set no TrainConfig field (CLI-only ones, those of single subcommands), by the concern they belong
# with.
OTHER_FLAGS = {"tfds_data_dir": "data", "max_sentences": "data", "test": "data", "corpus": "data", "max_lines": "data",
               "holdout_fraction": "data", "modes": "transfer", "mixes": "transfer", "no_finetune": "transfer",
               "whole_word_masking": "optimization", "start_lr": "optimization", "end_lr": "optimization",
               "num_steps": "optimization", "stop_factor": "optimization"}


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """The closest known word as a hint to append to an error, or "" when none is close.

    Args:
        word: what the user typed.
        known: the words that would have been valid.

    Returns:
        `"; did you mean X?"`, or "".

    Example:
        >>> did_you_mean("--epoch", ["--epochs", "--lr"])
        '; did you mean --epochs?'
    """
    match = closest(word, known)
    return f"; did you mean {match}?" if match else ""


def closest(word: str, known: Iterable[str]) -> str | None:
    """The known word most like `word` (difflib's ratio at least 0.6), or None.

    Args:
        word: what the user typed.
        known: the valid words.

    Returns:
        The closest valid word, or None when none is close.

    Example:
        >>> closest("trian", ["train", "predict"])
        'train'
    """
    matches = difflib.get_close_matches(word, [str(k) for k in known], n=1, cutoff=0.6)
    return matches[0] if matches else None


def concern_of(dest: str) -> str | None:
    """The config concern (a key of config.CONCERNS) a flag's destination belongs to, None if none.

    Args:
        dest: the argparse destination, e.g. `batch_size` or `lr`.

    Returns:
        `"data"`, `"model"`, ... or None for flags outside the training configuration (`--debug`).

    Example:
        >>> concern_of("lr")
        'optimization'
    """
    return concern_of_field(FLAG_FIELDS.get(dest, dest)) or OTHER_FLAGS.get(dest)


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default to its help once, and only where it is true as written.

    An option whose default is None says in its own help what leaving it out means; so does an on/off
    switch (`--no-export`, `--resume`, `--no-standardize-features`), whose "(default: True)" would read as
    the switch being on. A `--X/--no-X` pair names the flag that is in effect by default.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if isinstance(action, argparse.BooleanOptionalAction):
            return _paired_switch_help(action)
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)


def _paired_switch_help(action: argparse.Action) -> str | None:
    # Python's BooleanOptionalAction appends "(default: True)" itself; say which of the pair is on instead.
    help_text = (action.help or "").replace(" (default: %(default)s)", "")
    if action.default is None or action.default is argparse.SUPPRESS:
        return help_text
    on, off = action.option_strings[0], action.option_strings[-1]
    return f"{help_text} (default: {on if action.default else off})"


class CliParser(argparse.ArgumentParser):
    """An ArgumentParser (and the class of its subparsers) that takes flags only as written in full and
    suggests the closest valid word on a mistake.

    Example:
        >>> parser = CliParser(prog="demo")
        >>> _ = parser.add_argument("--epochs", type=int)
        >>> parser.parse_args(["--epoch", "2"])  # doctest: +SKIP
        demo: error: unrecognized arguments: --epoch 2; did you mean --epochs?
    """

    def __init__(self, *args, **kwargs) -> None:
        kwargs["allow_abbrev"] = False  # a prefix of a flag must not silently become the flag
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        # The innermost (sub)command parser that parsed the line overwrites this, so errors found after
        # parsing are reported with that subcommand's usage.
        self.set_defaults(command_parser=self)

    def parse_args(self, args: Sequence[str] | None = None, namespace=None) -> argparse.Namespace:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = getattr(namespace, "command_parser", self)
            parser.error(parser.unrecognized(extras))
        return namespace

    def unrecognized(self, extras: Sequence[str]) -> str:
        """The error for arguments this parser does not take, with the closest flag for each unknown one."""
        known = [flag for action in self._actions for flag in action.option_strings]
        typed = [word.split("=", 1)[0] for word in extras if word.startswith("-")]
        matches = {word: match for word in typed for match in [closest(word, known)] if match}
        message = f"unrecognized arguments: {' '.join(extras)}"
        if len(matches) == 1:
            return f"{message}; did you mean {next(iter(matches.values()))}?"
        if matches:
            return f"{message}; did you mean " + ", ".join(f"{m} for {w}" for w, m in matches.items()) + "?"
        return message

    def _check_value(self, action: argparse.Action, value) -> None:
        try:
            super()._check_value(action, value)
        except argparse.ArgumentError as err:
            hint = did_you_mean(str(value), action.choices or ())
            if not hint:
                raise
            raise argparse.ArgumentError(action, f"{err.message}{hint}") from None


class ConcernGroups:
    """Adds flags to a parser under the --help group of the config concern that holds each flag's field.

    Flags outside the training configuration (`--debug`) stay in the parser's own "options" group.

    Example:
        >>> flags = ConcernGroups(CliParser(prog="train"))
        >>> action = flags.add_argument("--batch-size", type=int)  # listed under "optimisation"
    """

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser
        # All six made up front, in the config's order, so --help lists them in that order; each gets its
        # description with its first flag, as argparse prints a group with a description even when empty.
        self.groups = {concern: parser.add_argument_group(TITLES[concern]) for concern in CONCERNS}

    @classmethod
    def of(cls, target: argparse.ArgumentParser | ConcernGroups) -> ConcernGroups:
        """`target` itself if it already groups its flags, else groups for the parser `target`."""
        return target if isinstance(target, ConcernGroups) else cls(target)

    def add_argument(self, *flags: str, **kwargs) -> argparse.Action:
        """`ArgumentParser.add_argument`, filed under the flag's concern."""
        return self.container_for(_destination(flags, kwargs)).add_argument(*flags, **kwargs)

    def container_for(self, dest: str):
        """The argument group for a destination (the parser itself for flags outside every concern)."""
        concern = concern_of(dest)
        if concern is None:
            return self.parser
        group = self.groups[concern]
        group.description = _first_line(CONCERNS[concern].__doc__)
        return group


def _destination(flags: Sequence[str], kwargs: dict) -> str:
    """argparse's own rule: `dest=`, else the first long flag, else the first flag, without dashes."""
    if "dest" in kwargs:
        return kwargs["dest"]
    long_flags = [f for f in flags if f.startswith("--")]
    return (long_flags or list(flags))[0].lstrip("-").replace("-", "_")


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text else None
