"""`tfhub-transfer`: the command line. Each subcommand calls the same function as the Python API."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tfhub_transfer.errors import TransferError  # noqa: E402


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text-column", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-column", default="label", help="column holding the label (default: label)")


def _add_training_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="training file (.csv, .tsv, .jsonl; CoNLL for tokens)")
    p.add_argument("--valid", help="validation file; default: hold out --validation-fraction")
    _add_data_flags(p)
    p.add_argument("--task", default="single_label",
                   choices=["single_label", "multi_label", "regression", "tokens"],
                   help="tokens = token classification (NER) on CoNLL column files")
    p.add_argument("--text-b-column", help="second text column: sentence-pair input")
    p.add_argument("--label-separator", default=",", help="multi_label: separator of label names")
    p.add_argument("--layer-mix", choices=["embeddings", "last", "second_to_last", "sum_last4",
                                           "concat_last4", "scalar_mix"],
                   help="feature-based layer mix (BERT section 5.3); default: the encoder's outputs")
    p.add_argument("--feature-cache", action="store_true",
                   help="freeze mode: encode the data once and train the mix + head from the cache")
    p.add_argument("--tagger-head", default="dense", choices=["dense", "bilstm"], help="tokens task head")
    p.add_argument("--max-sentences", type=int, help="tokens task: use the first N sentences (same as "
                   "--max-train-examples)")
    p.add_argument("--encoder", default="default", help="default, a catalogue name, a path or a hub handle")
    p.add_argument("--preprocessor", help="the matching preprocessor, for a bare encoder SavedModel")
    p.add_argument("--mode", default="finetune",
                   help="transfer mode: freeze | finetune | partial:K | gradual[:STEPS] | "
                        "discriminative[:DECAY] | slow_embeddings:FACTOR | reinit")
    p.add_argument("--embedding-lr-multiplier", type=float,
                   help="scale the embeddings' learning rate (e.g. 0.01 for slow embeddings)")
    p.add_argument("--architecture", default="auto", choices=["auto", "encoder", "rnn", "text_embedding"],
                   help="auto: rnn with --word-vectors, text_embedding with --text-embedding, else encoder")
    p.add_argument("--word-vectors", help="word2vec (text or .bin) / GloVe file for an RNN classifier")
    p.add_argument("--embedding-mode", default="init", choices=["init", "freeze", "slow", "random"],
                   help="how the RNN's embedding uses the vectors (random = no vectors)")
    p.add_argument("--slow-factor", type=float, default=0.01,
                   help="embedding LR factor for --embedding-mode slow")
    p.add_argument("--rnn", default="bilstm", choices=["bilstm", "lstm", "gru", "bigru"])
    p.add_argument("--rnn-units", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=20_000, help="RNN vocabulary size")
    p.add_argument("--text-embedding", help="a TF Hub text-embedding module (strings -> vectors)")
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "adam", "sgd"])
    p.add_argument("--schedule", default="linear",
                   choices=["linear", "slanted_triangular", "one_cycle", "constant"],
                   help="learning-rate schedule (linear = warmup then linear decay)")
    p.add_argument("--pooling", choices=["cls", "first", "mean", "max"], help="default: the encoder's own")
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3 freeze, 5e-5 finetune)")
    p.add_argument("--warmup-fraction", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seq-length", type=int, default=128, help="longest packed input, in word pieces")
    p.add_argument("--validation-fraction", type=float, default=0.1)
    p.add_argument("--max-train-examples", type=int, help="train on a random subset of this size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_speed_flags(p)


def _add_distribution_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--distribution", default="auto",
                   choices=["auto", "one_device", "mirrored", "multi_worker", "tpu"],
                   help="tf.distribute strategy; auto: TPU if one answers, several GPUs -> mirrored, "
                        "else one device; multi_worker reads TF_CONFIG. --batch-size is per replica")


def _add_speed_flags(p: argparse.ArgumentParser) -> None:
    _add_distribution_flag(p)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="encoder compute dtype; bfloat16 writes (once) and uses a mixed_bfloat16 copy "
                        "of an encoder this package wrote (not possible for published Hub encoders)")
    p.add_argument("--no-bucket", action="store_true",
                   help="do not group similar lengths into batches (each batch is still padded only "
                        "to its own longest row)")
    p.add_argument("--steps-per-execution", type=int, default=1,
                   help="training steps per tf.function call (fewer Python round trips)")
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile the train step (can help on GPU/TPU; slower on CPU)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None,
                        help="continue from the backup in the output directory (it must exist); "
                             "without either flag a backup there is resumed automatically")
    resume.add_argument("--no-resume", dest="resume", action="store_false",
                        help="discard any backup in the output directory and start over")
    p.add_argument("--backup-every", type=int, default=200,
                   help="back up the training state every N steps (0: never)")
    p.add_argument("--no-restore-best", action="store_true",
                   help="keep the last epoch's weights instead of the best validation epoch's")


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune an encoder classifier and export it")
    _add_training_flags(p)
    p.add_argument("--name", default="classifier", help="model name: exports go to OUT/NAME/VERSION")
    p.add_argument("--out", default="saved_models", help="export root (default: saved_models)")
    p.add_argument("--no-export", action="store_true", help="train and report only")


def _add_compare_parser(sub) -> None:
    p = sub.add_parser("compare", help="run several transfer modes on the same data and seed")
    _add_training_flags(p)
    p.add_argument("--modes", default="freeze,partial:3,gradual,discriminative,finetune,reinit",
                   help="comma-separated transfer modes")
    p.add_argument("--out", default="saved_models/compare", help="writes compare.md, .csv, .png here")


def _add_pretrain_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="continue masked-LM pretraining on unlabelled text")
    p.add_argument("--corpus", nargs="+", required=True,
                   help="text files (one passage per line) or .csv/.tsv/.jsonl with --text-column")
    p.add_argument("--text-column", help="column to read from labelled files (labels are ignored)")
    p.add_argument("--encoder", default="default")
    p.add_argument("--preprocessor")
    p.add_argument("--out", required=True, help="e.g. saved_models/encoders/NAME (versions inside)")
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("--whole-word-masking", action="store_true")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--holdout-fraction", type=float, default=0.05)
    p.add_argument("--max-lines", type=int, help="read at most this many corpus lines")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    _add_distribution_flag(p)


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


def _train_config(args, **overrides):
    from tfhub_transfer.config import TrainConfig

    values = dict(
        train=args.train, valid=args.valid, text_column=args.text_column,
        label_column=args.label_column, task=args.task, text_b_column=args.text_b_column,
        label_separator=args.label_separator, layer_mix=args.layer_mix,
        feature_cache=args.feature_cache, architecture=args.architecture, encoder=args.encoder,
        preprocessor=args.preprocessor, word_vectors=args.word_vectors,
        embedding_mode=args.embedding_mode, slow_factor=args.slow_factor, rnn=args.rnn,
        rnn_units=args.rnn_units, max_tokens=args.max_tokens, text_embedding=args.text_embedding,
        mode=args.mode, embedding_lr_multiplier=args.embedding_lr_multiplier, pooling=args.pooling,
        dropout=args.dropout, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        optimizer=args.optimizer, schedule=args.schedule, warmup_fraction=args.warmup_fraction,
        weight_decay=args.weight_decay, seq_length=args.seq_length, tagger_head=args.tagger_head,
        validation_fraction=args.validation_fraction,
        max_train_examples=args.max_sentences if args.max_train_examples is None else args.max_train_examples,
        seed=args.seed, verbose=0 if args.quiet else 1, distribution=args.distribution,
        dtype=args.dtype, bucket=not args.no_bucket, steps_per_execution=args.steps_per_execution,
        jit_compile=args.jit_compile, resume=args.resume, backup_every_steps=args.backup_every,
        restore_best=not args.no_restore_best,
    )
    values.update(overrides)
    return TrainConfig.of(**values)


def _add_study_parser(sub) -> None:
    p = sub.add_parser("study-layers", help="every layer mix (frozen) and fine-tuning on one dataset")
    _add_training_flags(p)
    p.add_argument("--mixes", default="embeddings,last,second_to_last,sum_last4,concat_last4,scalar_mix")
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
    from tfhub_transfer.jobs.compare import compare_modes, results_markdown

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = compare_modes(_train_config(args, export=False), modes, args.out)
    print(results_markdown(results))
    print(f"wrote {args.out}/compare.md, compare.csv, compare.png")
    return 0


def _cmd_train(args) -> int:
    from tfhub_transfer.jobs.train import train

    result = train(_train_config(args, name=args.name, output_dir=args.out, export=not args.no_export))
    if args.task == "tokens":
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
    from tfhub_transfer.jobs.evaluate import evaluate_exported

    report = evaluate_exported(args.model, args.data, args.text_column, args.label_column)
    print(json.dumps({k: v for k, v in report.items() if k != "confusion_matrix"}, indent=2))
    print("confusion matrix (rows true, columns predicted):", report["confusion_matrix"])
    return 0


def _read_predict_inputs(args) -> list[str]:
    if args.file:
        from tfhub_transfer.data.tables import read_table, read_text_file

        if Path(args.file).suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
            return read_table(args.file, args.text_column, None).texts
        return [line for line in read_text_file(Path(args.file)).splitlines() if line.strip()]
    if not args.texts:
        raise TransferError("give texts to classify as arguments or with --file")
    return args.texts


def _cmd_predict(args) -> int:
    from tfhub_transfer.export.saved_model import ExportedClassifier

    texts = _read_predict_inputs(args)
    out = ExportedClassifier(args.model).predict(texts)
    for text, label, probs in zip(texts, out["labels"], out["probabilities"]):
        print(f"{label}\t{probs.max():.3f}\t{text}")
    return 0


def _cmd_export(args) -> int:
    from tfhub_transfer.models.saving import load

    path = load(args.run).export(args.out, args.name, args.version)
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
    """Every subcommand's --help shows each option's default."""

    def add(*args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        parser = add_parser(*args, **kwargs)
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show the full traceback of an error")
        return parser

    return add


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfhub-transfer", description="Transfer learning on text with TF Hub encoders."
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = _with_defaults(sub.add_parser)
    _add_train_parser(sub)
    _add_compare_parser(sub)
    _add_pretrain_parser(sub)
    _add_study_parser(sub)

    p = sub.add_parser("evaluate", help="score an exported model on a labelled file")
    p.add_argument("--model", required=True, help="saved_models/NAME/VERSION")
    p.add_argument("--data", required=True)
    _add_data_flags(p)

    p = sub.add_parser("predict", help="classify strings with an exported model")
    p.add_argument("--model", required=True, help="saved_models/NAME/VERSION")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a text file (one per line) or a .csv/.tsv/.jsonl with --text-column")
    p.add_argument("--text-column", default="text")

    p = sub.add_parser("export", help="re-export a training run as a raw-string SavedModel")
    p.add_argument("--run", required=True, help="the run directory train wrote (OUT/NAME/run)")
    p.add_argument("--out", default="saved_models")
    p.add_argument("--name", default="classifier")
    p.add_argument("--version", type=int, help="default: one above the highest existing")

    p = sub.add_parser("encoders", help="list, inspect, convert or build encoders")
    from tfhub_transfer.cli.encoders import add_subcommands

    add_subcommands(p)

    p = sub.add_parser("demo", help="build the default encoder, fine-tune on the demo data, export, predict")
    p.add_argument("--out", default="saved_models")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--encoder", default="default")
    return parser


COMMANDS = {
    "train": _cmd_train, "compare": _cmd_compare, "pretrain": _cmd_pretrain, "study-layers": _cmd_study,
    "evaluate": _cmd_evaluate, "predict": _cmd_predict,
    "export": _cmd_export, "encoders": _cmd_encoders, "demo": _cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one subcommand. Errors are one line on stderr (exit 2 for bad input, 1 for anything else);
    `--debug` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # the one place that turns any failure into one line for a user
        if getattr(args, "debug", False):
            raise
        known = isinstance(err, TransferError)
        print(f"error: {_one_line(err) if known else _unexpected(err)}", file=sys.stderr)
        if not known:
            print("run with --debug for the traceback", file=sys.stderr)
        return 2 if known else 1


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
