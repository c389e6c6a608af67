"""`tfhub-transfer`: the command line. Each subcommand calls the same function as the Python API."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # set by the package already; `--debug` there shows them

import tfhub_transfer.cli.cache as cache_command  # noqa: E402
import tfhub_transfer.cli.checks as checks  # noqa: E402
import tfhub_transfer.cli.lr_find as lr_find  # noqa: E402
import tfhub_transfer.cli.serve_check as serve_check  # noqa: E402
from tfhub_transfer import storage  # noqa: E402  (no TensorFlow until a URL is read)
from tfhub_transfer.cli.parsing import CliParser, ConcernGroups  # noqa: E402
from tfhub_transfer.config import (  # noqa: E402  (light: no TensorFlow, so --help stays fast)
    ENCODER_LEARNING_RATE,
    PRETRAIN_EPOCHS,
    PRETRAIN_HOLDOUT_FRACTION,
    Option,
    field_default,
    option_of,
    options,
)
from tfhub_transfer.errors import TransferError  # noqa: E402
from tfhub_transfer.training.tasks import task_spec  # noqa: E402  (the registry only: no TensorFlow)
from tfhub_transfer.transfer.modes import mode_syntax  # noqa: E402  (the registry only: no TensorFlow)

Flags = argparse.ArgumentParser | ConcernGroups  # what the flag-adding helpers add to
TRAINING_CONCERNS = ("data", "model", "transfer", "optimization", "runtime")  # train, compare, study, lr-find
# What an option's help may name that lives in a registry above config (filled in when the flag is added).
HELP_FILLS = {"{modes}": mode_syntax, "{tasks}": checks.task_help}


def _add_option(p: Flags, name: str, flag: str | None = None) -> list[argparse.Action]:
    """Adds the flag of config field `name`, everything about it read from the field's `Option`.

    Args:
        p: the parser (or its concern groups) to add to.
        name: the flat config field, e.g. `learning_rate`.
        flag: another spelling of the flag for this subcommand (`export --format`), default the declared one.

    Returns:
        The argparse actions added (two for an `either` switch), each marked with the field it sets.
    """
    spec = option_of(name)
    flag = flag or spec.flag
    kwargs = _argparse_kwargs(name, spec)
    if spec.switch == "either":  # --X / --no-X, neither leaves the default (None)
        container = p.container_for(kwargs["dest"]) if isinstance(p, ConcernGroups) else p
        pair = container.add_mutually_exclusive_group()
        actions = [pair.add_argument(flag, action="store_true", **kwargs),
                   pair.add_argument(spec.off_flag, action="store_false",
                                     **{**kwargs, "help": spec.off_help})]
    else:
        actions = [p.add_argument(flag, **kwargs)]
    for action in actions:
        action.config_field = name  # read back by _config_values
    return actions


def _argparse_kwargs(name: str, spec: Option) -> dict:
    """`add_argument`'s keywords for a field: its dest, default, help and how it takes a value."""
    help_text = spec.help
    for placeholder, fill in HELP_FILLS.items():
        if placeholder in help_text:
            help_text = help_text.replace(placeholder, fill())
    kwargs = {"dest": spec.dest or name, "default": field_default(name), "help": help_text}
    if spec.switch == "on":
        kwargs["action"] = "store_true"
    elif spec.switch == "off":  # in its own dest (args.no_bucket), the flag reads True; else the field's False
        kwargs["action"] = "store_true" if spec.dest else "store_false"
        kwargs["default"] = False if spec.dest else kwargs["default"]
    elif spec.switch == "pair":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif spec.switch is None:
        if spec.type is not None:  # a name: a check in cli.checks that reads a registry
            kwargs["type"] = getattr(checks, spec.type) if isinstance(spec.type, str) else spec.type
        if spec.choices is not None:
            kwargs["choices"] = getattr(checks, spec.choices)() if isinstance(spec.choices, str) else spec.choices
        if spec.metavar:
            kwargs["metavar"] = spec.metavar
        if spec.required:
            kwargs["required"] = True
    return kwargs


def _add_concern_flags(p: Flags, concern: str) -> None:
    """Every field of `concern` that has a flag, in the order config.py declares them."""
    for name, spec in options(concern).items():
        if spec.flag:
            _add_option(p, name)


def _add_data_flags(p: Flags) -> None:
    _add_option(p, "text_column")
    _add_option(p, "label_column")
    _add_tfds_flag(p)


def _add_tfds_flag(p: Flags) -> None:
    p.add_argument("--tfds-data-dir", metavar="DIR",
                   help="where prepared TFDS datasets are, for tfds:NAME[:SPLIT] inputs (`tfds build NAME "
                        "--data_dir DIR` on a machine with network access writes them) (default: "
                        "$TFDS_DATA_DIR, else ~/tensorflow_datasets)")


def _add_training_flags(parser: Flags) -> None:
    """Train's data, model, transfer, optimisation and runtime flags, each under its concern in --help:
    generated from the config fields' metadata, plus two CLI-only data flags."""
    p = ConcernGroups.of(parser)
    for concern in TRAINING_CONCERNS:
        _add_concern_flags(p, concern)
        if concern == "data":
            _add_tfds_flag(p)
            p.add_argument("--max-sentences", type=int, help="tokens task: use the first N sentences (same as "
                           "--max-train-examples) (default: all)")


def _add_train_parser(sub) -> None:
    p = ConcernGroups(sub.add_parser("train", help="fine-tune an encoder classifier and export it"))
    _add_training_flags(p)
    _add_concern_flags(p, "output")


def _add_format_flags(p: Flags, format_flag: str) -> None:
    _add_option(p, "export_format", format_flag)
    _add_option(p, "quantize")


def _add_compare_parser(sub) -> None:
    p = ConcernGroups(sub.add_parser("compare", help="run several transfer modes on the same data and seed"))
    _add_training_flags(p)
    p.add_argument("--modes", default="freeze,partial:3,gradual,discriminative,finetune,reinit",
                   type=checks.transfer_modes, help="comma-separated transfer modes")
    p.add_argument("--out", default="saved_models/compare", help="writes compare.md, .csv, .png here")
    p.add_argument("--test",
                   help="a labelled test file: each mode's test scores beside validation (default: validation only)")


def _add_pretrain_parser(sub) -> None:
    p = ConcernGroups(sub.add_parser("pretrain", help="continue masked-LM pretraining on unlabelled text"))
    p.add_argument("--corpus", nargs="+", required=True,
                   help="text files (one passage per line) or .csv/.tsv/.jsonl with --text-column")
    p.add_argument("--text-column", help="column to read from labelled files, whose labels are ignored "
                   "(default: none; plain text files need none)")
    p.add_argument("--encoder", default=field_default("encoder"),
                   help="default, a catalogue name, a path or a hub handle")
    p.add_argument("--preprocessor", help="the matching preprocessor (default: the one the encoder names)")
    p.add_argument("--out", required=True, help="e.g. saved_models/encoders/NAME (versions inside)")
    p.add_argument("--seq-length", type=int, default=field_default("seq_length"),
                   help="tokens per packed sequence")
    p.add_argument("--whole-word-masking", action="store_true", help="mask all pieces of a word together")
    p.add_argument("--epochs", type=int, default=PRETRAIN_EPOCHS, help="passes over the corpus")
    p.add_argument("--batch-size", type=int, default=field_default("batch_size"),
                   help="sequences per step (per replica)")
    p.add_argument("--lr", type=float, default=ENCODER_LEARNING_RATE, help="peak learning rate")
    p.add_argument("--holdout-fraction", type=float, default=PRETRAIN_HOLDOUT_FRACTION,
                   help="share of sequences held out to score masked accuracy and perplexity")
    p.add_argument("--max-lines", type=int, help="read at most this many corpus lines (default: all)")
    p.add_argument("--seed", type=int, default=field_default("seed"), help="seed of masking and data order")
    p.add_argument("--quiet", action="store_true", help="no progress")
    _add_option(p, "distribution")


def _cmd_pretrain(args) -> int:
    from tfhub_transfer.jobs.pretrain import PretrainConfig, pretrain

    result = pretrain(PretrainConfig.of(
        args.corpus, args.out, encoder=args.encoder, preprocessor=args.preprocessor,
        text_column=args.text_column, seq_length=args.seq_length,
        whole_word_masking=args.whole_word_masking, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, holdout_fraction=args.holdout_fraction, max_lines=args.max_lines,
        seed=args.seed, verbose=0 if args.quiet else 1, distribution=args.distribution,
    ))
    for name, values in (("before", result.before), ("after", result.after)):
        print(f"held-out {name}: masked accuracy {values['masked_accuracy']:.4f}, "
              f"perplexity {values['perplexity']:.2f}")
    print(f"wrote {result.path} (train --encoder {Path(args.out)} fine-tunes from it)")
    return 0


def _config_values(args: argparse.Namespace) -> dict:
    """The config fields the subcommand's generated flags set, by field name, converted from argparse's
    values (`--quiet` -> verbose 0, `--no-bucket` -> bucket False)."""
    parser = getattr(args, "command_parser", None)  # a namespace built by hand: every option found on it
    fields = {a.dest: a.config_field for a in parser._actions if hasattr(a, "config_field")} if parser else \
        {spec.dest or name: name for name, spec in options().items() if spec.flag and hasattr(args, spec.dest or name)}
    values = {}
    for dest, name in fields.items():
        value, spec = getattr(args, dest), option_of(name)
        if spec.switch == "off" and spec.dest:
            value = spec.off_value if value else field_default(name)
        values[name] = value
    return values


def _train_config(args, **overrides):
    from tfhub_transfer.config import TrainConfig

    values = _config_values(args)
    if values.get("max_train_examples") is None and getattr(args, "max_sentences", None) is not None:
        values["max_train_examples"] = args.max_sentences  # --max-sentences: the tokens task's alias
    values.update(overrides)
    return TrainConfig.of(**values)


def _add_study_parser(sub) -> None:
    p = ConcernGroups(sub.add_parser("study-layers", help="every layer mix (frozen) and fine-tuning on one dataset"))
    _add_training_flags(p)
    p.add_argument("--mixes", default="embeddings,last,second_to_last,sum_last4,concat_last4,scalar_mix",
                   help="comma-separated frozen layer mixes to compare (see --layer-mix)")
    p.add_argument("--no-finetune", action="store_true", help="skip the fine-tuned reference row")
    p.add_argument("--out", default="saved_models/study", help="writes study.md, .csv, .png here")


def _cmd_study(args) -> int:
    from tfhub_transfer.jobs.study import study_layers, study_markdown

    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    base = _train_config(args, export=False, output_dir=args.out)
    results = study_layers(base, args.out, mixes, finetune=not args.no_finetune)
    print(study_markdown(results))
    print(f"wrote {args.out}/study.md, study.csv, study.png")
    return 0


def _cmd_compare(args) -> int:
    from tfhub_transfer.jobs.compare import compare_modes, recommendation, results_markdown

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = compare_modes(_train_config(args, export=False), modes, args.out, test=args.test)
    print(results_markdown(results))
    print(recommendation(results))
    print(f"wrote {args.out}/compare.md, compare.csv, compare.png")
    return 0


def _cmd_train(args) -> int:
    from tfhub_transfer.jobs.train import train

    result = train(_train_config(args))
    if task_spec(args.task).per_token:  # a tagger's scores are entity-level
        scores = result.metrics
        print(f"validation entity F1 {scores['f1']:.4f} (precision {scores['precision']:.4f}, "
              f"recall {scores['recall']:.4f})")
    else:
        if getattr(result.model, "coverage", None) is not None:
            print(result.model.coverage)
        shown = {k: round(v, 4) for k, v in result.metrics.items() if isinstance(v, float)}
        print(f"validation {shown}")
    if result.export_path:
        print(f"exported to {result.export_path}")
    return 0


def _cmd_evaluate(args) -> int:
    from tfhub_transfer.jobs.evaluate import evaluate_exported, format_report

    report = evaluate_exported(args.model, args.data, args.text_column, args.label_column, args.out)
    print(format_report(report))
    if args.out:
        print(f"wrote {args.out}/metrics.json, confusion_matrix.png, errors.tsv ({report['misclassified']:,} "
              "misclassified, highest loss first)")
    return 0


def _read_predict_inputs(args) -> list[str]:
    if args.file:
        from tfhub_transfer.data.tables import read_table, read_text_file

        if os.path.splitext(storage.basename(args.file))[1].lower() in (".csv", ".tsv", ".jsonl", ".json"):
            return read_table(args.file, args.text_column, None).texts
        return [line for line in read_text_file(args.file).splitlines() if line.strip()]
    if not args.texts:
        raise TransferError("give texts to classify as arguments or with --file")
    return args.texts


def _cmd_predict(args) -> int:
    from tfhub_transfer.export.formats import open_export

    texts = _read_predict_inputs(args)
    out = open_export(args.model).predict(texts)
    for text, label, probs in zip(texts, out["labels"], out["probabilities"]):
        print(f"{label}\t{probs.max():.3f}\t{text}")
    return 0


def _cmd_export(args) -> int:
    from tfhub_transfer.models.saving import load

    path = load(args.run).export(args.out, args.name, args.version, args.export_format, args.quantize)
    print(f"exported to {path}")
    return 0


def _cmd_encoders(args) -> int:
    from tfhub_transfer.cli.encoders import run

    return run(args)


def _cmd_demo(args) -> int:
    from tfhub_transfer.jobs.demo import run_demo

    run_demo(args.out, epochs=args.epochs, encoder=args.encoder)
    return 0


def _with_defaults(add_parser):
    """Every subcommand takes --debug."""

    def add(*args, **kwargs):
        parser = add_parser(*args, **kwargs)
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the full traceback of an error, and TensorFlow's own logs")
        return parser

    return add


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog="tfhub-transfer", description="Transfer learning on text with TF Hub encoders.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = _with_defaults(sub.add_parser)
    _add_train_parser(sub)
    _add_compare_parser(sub)
    _add_pretrain_parser(sub)
    _add_study_parser(sub)

    p = sub.add_parser("evaluate", help="score an exported model on a labelled file")
    p.add_argument("--model", required=True, help="saved_models/NAME/VERSION")
    p.add_argument("--data", required=True,
                   help="labelled file (.csv, .tsv, .jsonl) or tfds:NAME:SPLIT")
    _add_data_flags(p)
    p.add_argument("--out", help="also write metrics.json, confusion_matrix.png and errors.tsv (misclassified "
                   "examples, highest loss first) into this new directory (default: print only)")

    p = sub.add_parser("predict", help="classify strings with an exported model")
    p.add_argument("--model", required=True, help="saved_models/NAME/VERSION")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file",
                   help="a text file (one per line) or a .csv/.tsv/.jsonl with --text-column "
                        "(default: the texts given as arguments)")
    _add_option(p, "text_column")

    p = sub.add_parser("export", help="re-export a training run (SavedModel, TFLite or ONNX)")
    p.add_argument("--run", required=True, help="the run directory train wrote (OUT/NAME/run)")
    p.add_argument("--out", default=field_default("output_dir"), help="export root")
    p.add_argument("--name", default=field_default("name"), help="exports go to OUT/NAME/VERSION")
    p.add_argument("--version", type=int, help="version number (default: one above the highest existing)")
    _add_format_flags(p, "--format")

    p = sub.add_parser("encoders", help="list, inspect, convert or build encoders")
    from tfhub_transfer.cli.encoders import add_subcommands

    add_subcommands(p)
    serve_check.add_parser(sub)
    lr_find.add_parser(sub, _add_training_flags)
    cache_command.add_parser(sub)

    p = sub.add_parser("demo", help="build the default encoder, fine-tune on the demo data, export, predict")
    p.add_argument("--out", default=field_default("output_dir"), help="export root")
    p.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs")
    p.add_argument("--encoder", default=field_default("encoder"),
                   help="default, a catalogue name, a path or a hub handle")
    return parser


COMMANDS = {
    "train": _cmd_train, "compare": _cmd_compare, "pretrain": _cmd_pretrain, "study-layers": _cmd_study,
    "evaluate": _cmd_evaluate, "predict": _cmd_predict,
    "export": _cmd_export, "encoders": _cmd_encoders, "demo": _cmd_demo,
    "serve-check": serve_check.run, "cache": cache_command.run,
    "lr-find": lambda args: lr_find.run(args, _train_config),
}


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand. Errors are one line on stderr (exit 2 for bad input, 1 for anything else);
    `--debug` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    checks.check_arguments(args)  # missing files, misspelt encoders: before any command imports TensorFlow
    try:
        with _tfds_data_dir(getattr(args, "tfds_data_dir", None)):
            return COMMANDS[args.command](args)
    except KeyboardInterrupt as err:  # training's say whether rerunning resumes (fault_tolerance.Interrupted)
        print(str(err) or "interrupted", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    except Exception as err:  # the one place that turns any failure into one line for a user
        if getattr(args, "debug", False):
            raise
        known = isinstance(err, TransferError)
        print(f"error: {_one_line(err) if known else _unexpected(err)}", file=sys.stderr)
        if not known:
            print("run with --debug for the traceback", file=sys.stderr)
        return 2 if known else 1


@contextlib.contextmanager
def _tfds_data_dir(directory: str | None):
    """--tfds-data-dir, as the TFDS_DATA_DIR that TensorFlow Datasets reads when it is imported (the
    commands import it lazily, after this) for tfds:NAME inputs; the caller's environment is restored."""
    if directory is None:
        yield
        return
    before = os.environ.get("TFDS_DATA_DIR")
    os.environ["TFDS_DATA_DIR"] = str(Path(directory).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TFDS_DATA_DIR", None)
        else:
            os.environ["TFDS_DATA_DIR"] = before


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _unexpected(err: BaseException) -> str:
    """`what (where)`: the message and the innermost frame outside installed libraries (TensorFlow's own
    frames say little to a user), else the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename and "/lib/python" not in f.filename] or frames
    where = f" ({Path(ours[-1].filename).name}:{ours[-1].lineno} in {ours[-1].name})" if ours else ""
    return f"{type(err).__name__}: {_one_line(err)[:300]}{where}"


if __name__ == "__main__":
    sys.exit(main())
