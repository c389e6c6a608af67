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
from tfhub_transfer.cli.parsing import CliParser, ConcernGroups  # noqa: E402
from tfhub_transfer.config import (  # noqa: E402  (light: no TensorFlow, so --help stays fast)
    ARCHITECTURES,
    CACHED_HEAD_LEARNING_RATE,
    CONTRASTIVE_LEARNING_RATE,
    ENCODER_LEARNING_RATE,
    HEAD_LEARNING_RATE,
    HEADS,
    PRETRAIN_EPOCHS,
    PRETRAIN_HOLDOUT_FRACTION,
    TASKS,
    field_default,
)
from tfhub_transfer.errors import TransferError  # noqa: E402
from tfhub_transfer.transfer.modes import mode_syntax  # noqa: E402  (the registry only: no TensorFlow)

Flags = argparse.ArgumentParser | ConcernGroups  # what the flag-adding helpers add to


def _add_data_flags(p: Flags) -> None:
    p.add_argument("--text-column", default=field_default("text_column"), help="column holding the text")
    p.add_argument("--label-column", default=field_default("label_column"), help="column holding the label")
    p.add_argument("--tfds-data-dir", metavar="DIR",
                   help="where prepared TFDS datasets are, for tfds:NAME[:SPLIT] inputs (`tfds build NAME "
                        "--data_dir DIR` on a machine with network access writes them) (default: "
                        "$TFDS_DATA_DIR, else ~/tensorflow_datasets)")


def _add_training_flags(parser: Flags) -> None:
    """Train's data, model, transfer, optimisation and runtime flags, each under its concern in --help."""
    p = ConcernGroups.of(parser)
    p.add_argument("--train", required=True,
                   help="training file (.csv, .tsv, .jsonl; CoNLL for tokens) or a prepared TFDS dataset "
                        "tfds:NAME[:SPLIT], e.g. tfds:glue/sst2 (its features named by --text-column / "
                        "--label-column)")
    p.add_argument("--valid",
                   help="validation file or tfds:NAME:SPLIT (default: hold out --validation-fraction of --train)")
    _add_data_flags(p)
    p.add_argument("--label-names", type=checks.label_names, metavar="NAME,NAME,...",
                   help="names of integer labels 0, 1, ... in order, e.g. neg,pos; predictions and reports "
                        "use them (default: labels as written in the file)")
    p.add_argument("--task", default=field_default("task"), choices=TASKS,
                   help="tokens = token classification (NER) on CoNLL column files")
    p.add_argument("--text-b-column", help="second text column: sentence-pair input (default: single texts)")
    p.add_argument("--label-separator", default=field_default("label_separator"),
                   help="multi_label: separator of label names")
    p.add_argument("--layer-mix", choices=["embeddings", "last", "second_to_last", "sum_last4",
                                           "concat_last4", "scalar_mix"],
                   help="feature-based layer mix (BERT section 5.3) (default: the encoder's outputs)")
    p.add_argument("--feature-cache", action="store_true",
                   help="freeze mode: encode the data once and train the mix + head from the cache")
    p.add_argument("--head", default=field_default("head"), choices=HEADS,
                   help="dense: the pooled features (or each word's) straight to the logits; bilstm: a BiLSTM "
                        "over the token states first (sentence tasks pool its outputs by mean and max), the BERT "
                        "paper's reader of frozen features, with --feature-cache a cache of every token's "
                        "features (default: %(default)s)")
    p.add_argument("--max-sentences", type=int, help="tokens task: use the first N sentences (same as "
                   "--max-train-examples) (default: all)")
    p.add_argument("--encoder", default=field_default("encoder"),
                   help="default, a catalogue name, a path or a hub handle")
    p.add_argument("--preprocessor", help="the matching preprocessor, for a bare encoder SavedModel "
                   "(default: the one the encoder names)")
    p.add_argument("--mode", default=field_default("mode"), type=checks.transfer_mode,
                   help=f"transfer mode, one of: {mode_syntax()}; contrastive is few-shot (SetFit): the "
                        "encoder tuned on ITERATIONS positive and negative pairs per example for --epochs, "
                        "then the head fitted on its embeddings")
    p.add_argument("--embedding-lr-multiplier", type=float,
                   help="scale the embeddings' learning rate, e.g. 0.01 for slow embeddings (default: the "
                        "rate the mode gives them)")
    p.add_argument("--architecture", default=field_default("architecture"), choices=ARCHITECTURES,
                   help="auto: rnn with --word-vectors, text_embedding with --text-embedding, else encoder")
    p.add_argument("--word-vectors",
                   help="word2vec (text or .bin) / GloVe file for an RNN classifier (default: none)")
    p.add_argument("--embedding-mode", default=field_default("embedding_mode"),
                   choices=["init", "freeze", "slow", "random"],
                   help="how the RNN's embedding uses the vectors (random = no vectors)")
    p.add_argument("--slow-factor", type=float, default=field_default("slow_factor"),
                   help="embedding LR factor for --embedding-mode slow")
    p.add_argument("--rnn", default=field_default("rnn"), choices=["bilstm", "lstm", "gru", "bigru"],
                   help="RNN classifier: the recurrent layer")
    p.add_argument("--rnn-units", type=int, default=field_default("rnn_units"), help="RNN classifier: units")
    p.add_argument("--max-tokens", type=int, default=field_default("max_tokens"), help="RNN vocabulary size")
    p.add_argument("--text-embedding", help="a TF Hub text-embedding module (strings -> vectors) "
                   "(default: none)")
    p.add_argument("--optimizer", default=field_default("optimizer"), choices=["adamw", "adam", "sgd"],
                   help="optimizer (adamw: Adam with decoupled weight decay)")
    p.add_argument("--schedule", default=field_default("schedule"),
                   choices=["linear", "slanted_triangular", "one_cycle", "constant"],
                   help="learning-rate schedule (linear = warmup then linear decay)")
    p.add_argument("--pooling", choices=["cls", "first", "mean", "max"],
                   help="how token vectors become one (default: the encoder's own)")
    p.add_argument("--dropout", type=float, default=field_default("dropout"), help="dropout before the head")
    p.add_argument("--epochs", type=checks.epochs, default=field_default("epochs"),
                   help="passes over the training data, or auto: at least 200 optimizer steps for small data, one "
                        "to three passes for large (default: %(default)s)")
    p.add_argument("--max-steps", type=int, help="stop after this many optimizer steps; the schedule ends there "
                   "(default: no limit)")
    p.add_argument("--time-budget", type=float, metavar="MINUTES", help="stop training cleanly after this many "
                   "minutes, keep the best weights and export (default: no limit)")
    p.add_argument("--batch-size", type=int, default=field_default("batch_size"),
                   help="examples per step (per replica)")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default: {ENCODER_LEARNING_RATE:g} when the "
                   f"encoder trains, {HEAD_LEARNING_RATE:g} when only a head does: --mode freeze, RNN, "
                   f"text embedding; {CONTRASTIVE_LEARNING_RATE:g} for the pair fit of --mode contrastive)")
    p.add_argument("--warmup-fraction", type=float, default=field_default("warmup_fraction"),
                   help="share of the steps spent warming the learning rate up")
    p.add_argument("--weight-decay", type=float, default=field_default("weight_decay"), help="AdamW weight decay")
    p.add_argument("--seq-length", type=int, default=field_default("seq_length"),
                   help="longest packed input, in word pieces")
    p.add_argument("--validation-fraction", type=float, default=field_default("validation_fraction"),
                   help="share of --train held out when there is no --valid")
    p.add_argument("--max-train-examples", type=int, help="train on a random subset of this size (default: all)")
    _add_recipe_flags(p)
    _add_phase_flags(p)
    p.add_argument("--seed", type=int, default=field_default("seed"), help="seed of data order and weights")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (the one-line header, the speed and the result still print)")
    p.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=field_default("tensorboard"),
                   help="write TensorBoard logs to OUT/NAME/run/tensorboard (tensorboard --logdir there)")
    _add_speed_flags(p)


def _add_phase_flags(p: Flags) -> None:
    """The head's own learning rates, head-first epochs, discriminative spread, long texts, head tuning."""
    p.add_argument("--head-lr", dest="head_lr", type=float, default=field_default("head_learning_rate"),
                   help=f"the new head's peak learning rate while the encoder is frozen (--mode freeze, the "
                        f"head-first epochs) (default: {HEAD_LEARNING_RATE:g}; {CACHED_HEAD_LEARNING_RATE:g} for a "
                        f"--feature-cache head with the default --epochs; in freeze mode --lr if given)")
    p.add_argument("--head-lr-multiplier", type=float, default=field_default("head_lr_multiplier"),
                   help="while the encoder trains, the head's rate is this x --lr")
    p.add_argument("--frozen-epochs", type=float, default=field_default("frozen_epochs"),
                   help="epochs (fractions allowed) that train the head alone before the encoder, counted in "
                        "--epochs; fastai's fine_tune, or LP-FT with finetune (default: 0)")
    p.add_argument("--lr-mult", type=float, default=field_default("lr_mult"),
                   help="discriminative / gradual: the top layer group trains at --lr, the embeddings at "
                        "--lr / LR_MULT, geometrically between; without --lr the top rate is 5e-5 x sqrt(LR_MULT), "
                        "centring the spread on 5e-5 (default: 10)")
    p.add_argument("--long-text", default=field_default("long_text"),
                   help="texts longer than --seq-length: truncate, or windows:STRIDE[:logits] (overlapping "
                        "windows every STRIDE word pieces, encoded one by one; the mean of their features, "
                        "or of their logits)")
    p.add_argument("--no-standardize-features", dest="standardize_features", action="store_false",
                   default=field_default("standardize_features"),
                   help="with --feature-cache: train the head on the raw features (default: standardised, "
                        "each centred and scaled by its spread on the training set, folded into the head)")
    p.add_argument("--tune-head", action="store_true", default=field_default("tune_head"),
                   help="with --feature-cache: sweep the head's L2 and learning rate on the validation set "
                        "and keep the best (the chosen values are printed and saved with the metrics)")


def _add_recipe_flags(p: Flags) -> None:
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE", default=field_default("early_stopping"),
                   help="stop after PATIENCE epochs without a better validation score and keep the best "
                        "epoch's weights (0: train every epoch)")
    p.add_argument("--class-weight", default=field_default("class_weight"),
                   help="single_label: 'balanced' (n / (classes x count)) or label=weight pairs, e.g. "
                        "positive=1,negative=5 (unnamed classes weigh 1) (default: every class weighs 1)")
    p.add_argument("--weight-column", default=field_default("weight_column"),
                   help="column of per-example training weights (numbers >= 0) (default: every example weighs 1)")


def _add_distribution_flag(p: Flags) -> None:
    p.add_argument("--distribution", default=field_default("distribution"),
                   choices=["auto", "one_device", "mirrored", "multi_worker", "tpu"],
                   help="tf.distribute strategy; auto: TPU if one answers, several GPUs -> mirrored, "
                        "else one device; multi_worker reads TF_CONFIG. --batch-size is per replica")


def _add_speed_flags(p: Flags) -> None:
    _add_distribution_flag(p)
    p.add_argument("--dtype", default=field_default("dtype"), choices=["float32", "bfloat16"],
                   help="encoder compute dtype; bfloat16 writes (once) and uses a copy of an encoder this "
                        "package wrote whose attention and feed-forward matmuls run in bfloat16 (layer norms and "
                        "residual sums stay float32); not possible for published Hub encoders; falls back to "
                        "float32, saying so, on a CPU without bf16 instructions")
    p.add_argument("--pack", dest="packing", type=int, metavar="ROW_LENGTH", default=field_default("packing"),
                   help="train on each batch packed into rows of ROW_LENGTH word pieces, several examples a row "
                        "(block-diagonal attention), so almost no token is padding; the same loss and gradients "
                        "as unpacked. Encoders this package wrote, mean pooling; e.g. --pack 128; 0: off")
    p.add_argument("--no-bucket", action="store_true",
                   help="do not group similar lengths into batches (each batch is still padded only "
                        "to its own longest row)")
    p.add_argument("--steps-per-execution", type=int, default=field_default("steps_per_execution"),
                   help="training steps per tf.function call (fewer Python round trips)")
    p.add_argument("--jit-compile", action="store_true",
                   help="XLA-compile the train step (can help on GPU/TPU; slower on CPU)")
    resume = p.container_for("resume").add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=None,
                        help="must resume: continue from the backup of this run (OUT/NAME/run), an error if "
                             "there is none (default, neither flag: resume automatically when a backup of this "
                             "same run exists, else start fresh)")
    resume.add_argument("--no-resume", dest="resume", action="store_false", default=None,
                        help="start over: discard any backup of this run (default: see --resume)")
    p.add_argument("--backup-every", type=int, default=field_default("backup_every_steps"),
                   help="back up the training state every N steps (0: never)")
    p.add_argument("--keep-backups", action="store_true", default=field_default("keep_backups"),
                   help="keep the backup (OUT/NAME/run/backup, the finished state) when the run ends; by "
                        "default it is deleted")
    p.add_argument("--cache-dir", default=field_default("cache_dir"),
                   help="where converted encoders and feature caches are kept (default: $TFHUB_TRANSFER_CACHE, "
                        "else ~/.cache/tfhub_transfer); see `tfhub-transfer cache list`")
    p.add_argument("--no-restore-best", action="store_true",
                   help="keep the last epoch's weights instead of the best validation epoch's")


def _add_train_parser(sub) -> None:
    p = ConcernGroups(sub.add_parser("train", help="fine-tune an encoder classifier and export it"))
    _add_training_flags(p)
    p.add_argument("--name", default=field_default("name"), help="model name: exports go to OUT/NAME/VERSION")
    p.add_argument("--out", default=field_default("output_dir"),
                   help="output root: exports in OUT/NAME/VERSION, the run (and TensorBoard logs) in OUT/NAME/run")
    p.add_argument("--no-export", action="store_true", help="train and report only")
    _add_format_flags(p, "--export-format")


def _add_format_flags(p: Flags, format_flag: str) -> None:
    p.add_argument(format_flag, dest="export_format", default=field_default("export_format"),
                   choices=["saved_model", "tflite", "onnx"],
                   help="saved_model and tflite take raw strings; onnx takes token ids (its tokenizer is "
                        "written beside it)")
    p.add_argument("--quantize", default=field_default("quantize"), choices=["int8"],
                   help="tflite / onnx: dynamic-range int8 weights (smaller, usually faster on CPU) "
                        "(default: float weights)")


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
        max_steps=args.max_steps, time_budget=args.time_budget,
        optimizer=args.optimizer, schedule=args.schedule, warmup_fraction=args.warmup_fraction,
        weight_decay=args.weight_decay, seq_length=args.seq_length, head=args.head,
        validation_fraction=args.validation_fraction,
        max_train_examples=args.max_sentences if args.max_train_examples is None else args.max_train_examples,
        seed=args.seed, verbose=0 if args.quiet else 1, distribution=args.distribution,
        dtype=args.dtype, packing=args.packing, bucket=not args.no_bucket, steps_per_execution=args.steps_per_execution,
        jit_compile=args.jit_compile, resume=args.resume, backup_every_steps=args.backup_every,
        restore_best=not args.no_restore_best, early_stopping=args.early_stopping,
        head_learning_rate=args.head_lr, head_lr_multiplier=args.head_lr_multiplier,
        frozen_epochs=args.frozen_epochs, lr_mult=args.lr_mult, long_text=args.long_text, tune_head=args.tune_head,
        standardize_features=args.standardize_features,
        class_weight=args.class_weight, weight_column=args.weight_column,
        tensorboard=args.tensorboard, keep_backups=args.keep_backups, cache_dir=args.cache_dir,
        label_names=args.label_names,
    )
    if hasattr(args, "export_format"):  # train's own flags
        values.update(export_format=args.export_format, quantize=args.quantize)
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

        if Path(args.file).suffix.lower() in (".csv", ".tsv", ".jsonl", ".json"):
            return read_table(args.file, args.text_column, None).texts
        return [line for line in read_text_file(Path(args.file)).splitlines() if line.strip()]
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
    p.add_argument("--text-column", default=field_default("text_column"), help="column holding the text")

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
