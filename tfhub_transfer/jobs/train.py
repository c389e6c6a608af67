"""`train`: labelled text in, a trained task model (and its raw-string export) out, in one call.

It reads the data, builds the task model the config describes, fits it through the one
training loop (training.loop), reports on validation, saves the run (`OUT/NAME/run`,
loadable with `tfhub_transfer.load`) and exports `OUT/NAME/VERSION`. `--task tokens` runs
the same steps for a tagger (jobs.tagging).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.cache import honours_cache_dir
from tfhub_transfer.config import TrainConfig, field_default
from tfhub_transfer.data.streaming import StreamedSplits, expand_files, load_streamed
from tfhub_transfer.data.tables import LabelledSplits, load_labelled
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.jobs.cached_training import cached_optimization, tune_cached_head
from tfhub_transfer.jobs.common import TrainResult, announce, check_output, finish, keep_finished_run
from tfhub_transfer.jobs.options import check_options, fits_pair_features
from tfhub_transfer.jobs.tagging import train_tagger
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.models.cached_heads import CachedExamples, CachedHead, CachedSequenceHead
from tfhub_transfer.models.contrastive import fit_contrastive, fit_head
from tfhub_transfer.models.rnn_classifier import RnnClassifier, RnnClassifierConfig
from tfhub_transfer.models.saving import load
from tfhub_transfer.models.text_classifier import ClassifierConfig, TextClassifier
from tfhub_transfer.models.text_embedding_classifier import (
    TextEmbeddingClassifier,
    TextEmbeddingClassifierConfig,
)
from tfhub_transfer.training.callbacks import TENSORBOARD_DIR
from tfhub_transfer.training.distribution import is_chief, make_distribution
from tfhub_transfer.training.fault_tolerance import BACKUP_DIR, interruptible
from tfhub_transfer.training.loop import FitOutcome, fit_task
from tfhub_transfer.training.objectives import validation_report
from tfhub_transfer.training.tasks import task_spec
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.modes.auto import Choice, DataProfile, label_counts, resolve_mode


def num_outputs(splits: LabelledSplits) -> int:
    return 1 if splits.labels is None else len(splits.labels)


def classifier_config(config: TrainConfig, num_classes: int) -> ClassifierConfig:
    """The encoder classifier `config` describes (see ClassifierConfig.from_slices)."""
    return ClassifierConfig.from_slices(config.model, config.transfer, num_classes, task=config.task,
                                        pair=config.text_b_column is not None, seed=config.seed)


def build_task_model(config: TrainConfig, splits: LabelledSplits) -> TaskModel:
    """Builds the model `config` describes (call it inside the distribution strategy's scope)."""
    outputs, labels = num_outputs(splits), splits.label_names or None
    architecture = config.resolved_architecture()
    if architecture == "rnn":
        rnn = RnnClassifierConfig(outputs, config.word_vectors, config.embedding_mode, config.rnn,
                                  config.rnn_units, config.max_tokens, config.seq_length, config.slow_factor,
                                  dropout=config.dropout, seed=config.seed)
        model = RnnClassifier(rnn, train_texts=splits.train.texts, label_names=labels)
        if config.verbose and model.coverage is not None:
            print(model.coverage, flush=True)
        return model
    if architecture == "text_embedding":
        return TextEmbeddingClassifier(TextEmbeddingClassifierConfig(
            outputs, config.text_embedding or "", config.mode, config.dropout, seed=config.seed), labels)
    return TextClassifier(classifier_config(config, outputs), labels)


def cached_head(model: TextClassifier, splits: LabelledSplits, verbose: int = 1,
                standardize: bool = True) -> tuple[CachedHead | CachedSequenceHead, CachedExamples, CachedExamples]:
    """Encodes train and validation once; the mix + head model on the cache (pooled features, standardised
    unless told not to; every token's features for a BiLSTM head), with its train and valid examples."""
    kind = CachedSequenceHead if model.config.head == "bilstm" else CachedHead
    paths = [kind.encode(model, table.texts, table.texts_b, verbose) for table in (splits.train, splits.valid)]
    with model.distribute_strategy.scope():  # standardises the features (folded back in copy_weights_to)
        head = kind.on_cache(model, paths[0], standardize)
    return (head, CachedExamples(paths[0], splits.train_ids, len(splits.train), splits.train_examples.weights),
            CachedExamples(paths[1], splits.valid_ids, len(splits.valid)))


def fit_from_cache(model: TextClassifier, splits: LabelledSplits, config: TrainConfig) -> tuple[FitOutcome, dict]:
    """Encodes train and validation once, fits mix + head on the cache (the one loop; to convergence, and
    tuned with `--tune-head`), copies them back. Returns the fit and the tuning sweep ({} without one)."""
    head, train_examples, valid_examples = cached_head(model, splits, config.verbose, config.standardize_features)
    options = dict(shuffle=config.shuffle, log_dir=storage.join(config.run_dir, TENSORBOARD_DIR))
    tuning = {}
    if config.tune_head:
        head, outcome, tuning = tune_cached_head(model, head, train_examples, valid_examples, config, **options)
    else:
        outcome = fit_task(head, train_examples, valid_examples, cached_optimization(config), config.runtime, None,
                           job="--feature-cache training", **options)
    head.copy_weights_to(model)
    return outcome, tuning


@honours_cache_dir
def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Reads the data, builds the task model, fits it, reports and (by default) exports it.

    The distribution strategy is `strategy` if given, else made from `config.distribution`
    before anything else touches TensorFlow. Under a multi-worker strategy every worker
    trains; only the chief writes files.

    Args:
      config: the data, model, transfer mode, budget and output (`TrainConfig.of(...)`; the CLI's flags
        are its fields).
      strategy: a `tf.distribute` strategy to train under (None: from `config.distribution`).

    Returns:
      A `TrainResult` (the model, history, validation metrics, export path and run directory).

    Example:
      >>> from tfhub_transfer import train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> str(result.export_path), 0.0 <= result.metrics["accuracy"] <= 1.0
      ('models/reviews/1', True)
    """
    check_options(config)
    check_output(config)  # now, not after the training: nothing of the user's is lost or written through a link
    strategy = make_distribution(strategy or config.distribution)
    # SIGTERM and SIGINT end in one message that says whether the same command resumes.
    with interruptible(storage.join(config.run_dir, BACKUP_DIR) if config.backup_every_steps > 0 else None):
        if task_spec(config.task).per_token:
            config, choice = resolved_config(config, None)
            if choice is not None:
                print(choice.describe(), flush=True)
            keep_finished_run(config, is_chief(strategy))
            return train_tagger(config, strategy)
        return _train_classifier(config, strategy)


# Streaming (data.streaming) is chosen for training files of at least this many bytes (all shards
# together). Measured (benchmarks/data_scale.py, RESULTS.md "Data larger than memory"; 2 cores shared
# with other agents, load 7-9): on 1e5 short rows (8.7 MB) the in-memory reader takes 9.5 s and the
# streaming counting pass 3.6-4 s, both reach the first step in 15-20 s at ~0.9 GB peak RSS; on 1e6 rows
# (86.5 MB) the in-memory reader takes 76 s, 112 s to the first step and 1.36 GB, streaming 30-59 s,
# 42-86 s and 0.86-0.89 GB (flat up to 1e7). The reading alone never favours the in-memory path; what it
# keeps is the tokenised training set cached after the first epoch (streaming tokenises every epoch),
# the exact random hold-out and every option (--weight-column, --max-train-examples, ...). Small files
# train for many epochs (`--epochs auto`), so they stay in memory; from 32 MB (~370k short rows, about
# 0.5 GB more in memory) the memory and the first pass favour streaming.
STREAMING_MIN_BYTES = 32 << 20


def streaming_blockers(config: TrainConfig) -> list[str]:
    """Why `config`'s data cannot be streamed (options that read the whole table); [] when it can."""
    blockers = []
    if not isinstance(config.train, (str, Path)) or str(config.train).startswith("tfds:"):
        blockers.append("--train is not a file (a DataFrame or a TFDS dataset is in memory already)")
    named = {"weight_column": "--weight-column", "max_train_examples": "--max-train-examples",
             "class_weight": "--class-weight", "feature_cache": "--feature-cache"}
    blockers += [f"{flag} reads the whole table" for option, flag in named.items() if getattr(config, option, None)]
    if config.resolved_architecture() == "rnn":
        blockers.append("a word-vector RNN builds its vocabulary from every training text")
    return blockers


def training_bytes(pattern: str | Path) -> int:
    """The size of the training file(s) (a glob: all its shards)."""
    return sum(tf.io.gfile.stat(path).length for path in expand_files(str(pattern)))


def streams(config: TrainConfig) -> bool:
    """Whether `config`'s data is streamed: `--streaming on|off`, or auto (the default): files of at
    least STREAMING_MIN_BYTES, and globs (the in-memory reader takes one file), when nothing blocks it."""
    choice = config.streaming
    if choice not in ("auto", "on", "off"):
        raise ConfigError(f"--streaming must be auto, on or off, not {choice!r}")
    if choice == "off":
        return False
    blockers = streaming_blockers(config)
    if choice == "on" and blockers:
        raise ConfigError(f"--streaming on does not apply: {blockers[0]}. Leave --streaming at auto (or off) "
                          f"to read the data into memory.")
    if choice == "on":
        return True
    if blockers:
        return False
    pattern = str(config.train)
    if any(c in pattern for c in "*?["):
        return True
    try:
        return training_bytes(pattern) >= STREAMING_MIN_BYTES
    except (DataError, tf.errors.OpError):
        return False  # the in-memory reader says what is wrong with the path


def read_splits(config: TrainConfig) -> LabelledSplits | StreamedSplits:
    """The training and validation data `config` names, split as it says (streamed when `streams`)."""
    if streams(config):
        return load_streamed(
            config.train, config.valid, config.text_column, config.label_column, config.validation_fraction,
            config.seed, config.task, config.text_b_column, config.label_separator, config.label_names)
    return load_labelled(
        config.train, config.valid, config.text_column, config.label_column, config.validation_fraction,
        config.max_train_examples, config.seed, config.task, config.text_b_column, config.label_separator,
        config.weight_column, config.label_names,
    )


def data_profile(config: TrainConfig, splits: LabelledSplits) -> DataProfile:
    """What `--mode auto` decides from: every labelled example (held-out ones too), classes, task, encoder."""
    held_out = config.valid is None
    counts = class_counts(splits, include_valid=held_out)
    architecture = config.resolved_architecture()
    sentence_encoder = architecture == "encoder" and resolve_encoder(config.encoder, config.preprocessor).pooling \
        == "mean"
    return DataProfile.from_counts(
        counts, len(splits.train) + (len(splits.valid) if held_out else 0), task=config.task,
        pair=config.text_b_column is not None, windowed=str(config.long_text).startswith("windows"),
        sentence_encoder=sentence_encoder, validation_given=not held_out, architecture=architecture,
        single_vector_head=config.head == "dense" and not config.packing,
        texts_in_memory=not isinstance(splits, StreamedSplits))


def class_counts(splits: LabelledSplits | StreamedSplits, include_valid: bool) -> list[int]:
    """Examples per class (multi-label: texts carrying each label); [] for regression. Streamed data: the
    training rows the counting pass saw (none counted when the label names are given)."""
    if task_spec(splits.task).target == "number":
        return []
    if isinstance(splits, StreamedSplits):
        return splits.class_counts
    ids = [splits.train_ids, splits.valid_ids] if include_valid and len(splits.valid) else [splits.train_ids]
    rows = np.concatenate([np.asarray(i) for i in ids])
    return label_counts(rows, task_spec(splits.task).target, len(splits.label_names))


def resolved_config(config: TrainConfig, splits: LabelledSplits | None) -> tuple[TrainConfig, Choice | None]:
    """`config` with `--mode auto` replaced by the mode it chooses for this data (and, when `--epochs auto`
    and `--validation-fraction` / `--batch-size` are left at their defaults, its epochs, hold-out and batch); any
    other mode as given.

    Args:
        config: the training options.
        splits: the data as read (None for token labels, whose choice needs no counts).

    Returns:
        The config to train with, and the choice (None for an explicit mode).
    """
    if config.resolved_architecture() == "rnn":
        return config, None  # a word-vector RNN's transfer is --embedding-mode; it reads no --mode
    if splits is None:
        profile = DataProfile.token_labels()
    else:
        profile = data_profile(config, splits)
    choice = resolve_mode(TransferMode.parse(config.mode), profile)
    if choice is None:
        return config, None
    chosen = config.replace(**choice_changes(config, choice))
    check_options(chosen)
    return chosen, choice


def choice_changes(config: TrainConfig, choice: Choice) -> dict:
    """The options `auto`'s choice sets: its mode, and each setting the user left at its default."""
    left = {name: getattr(config, name) == field_default(name) for name in ("batch_size", "validation_fraction",
                                                                            "feature_cache", "tune_head", "pairs")}
    changes = {"mode": choice.mode}
    if choice.epochs is not None and config.epochs == "auto":
        changes["epochs"] = choice.epochs
    if choice.batch_size is not None and left["batch_size"]:
        changes["batch_size"] = choice.batch_size
    if choice.validation_fraction is not None and config.valid is None and left["validation_fraction"]:
        changes["validation_fraction"] = choice.validation_fraction
    if choice.tuned_cached_head and left["feature_cache"] and left["tune_head"]:
        changes.update(feature_cache=True, tune_head=True)
    if choice.pairs is not None and left["pairs"] and left["tune_head"]:  # the siamese head sweeps no L2
        changes["pairs"] = choice.pairs
        if choice.feature_cache and left["feature_cache"]:
            changes["feature_cache"] = True
    return changes


def choose_recipe(config: TrainConfig, splits: LabelledSplits) -> tuple[TrainConfig, LabelledSplits, dict]:
    """Resolves `--mode auto` (see `resolved_config`), prints the choice and why, and re-reads the data
    without a hold-out when auto trains on every label. Returns the config, the splits and the choice for
    metrics.json ({} for an explicit mode)."""
    chosen, choice = resolved_config(config, splits)
    if choice is None:
        return config, splits, {}
    if chosen.validation_fraction != config.validation_fraction:
        splits = read_splits(chosen)
    held = "no labels held out" if not len(splits.valid) else f"{len(splits.valid)} held out for validation"
    print(f"{choice.describe()}; {held}", flush=True)
    return chosen, splits, {"mode": choice.mode, "rule": choice.rule, "reason": choice.reason,
                            "validation_fraction": chosen.validation_fraction, "epochs": chosen.epochs,
                            "batch_size": chosen.batch_size, "feature_cache": chosen.feature_cache,
                            "tune_head": chosen.tune_head, "pairs": chosen.pairs if chosen.text_b_column else None}


def _train_classifier(config: TrainConfig, strategy: tf.distribute.Strategy) -> TrainResult:
    tf_keras.utils.set_random_seed(config.seed)
    config, splits, auto = choose_recipe(config, read_splits(config))
    with strategy.scope():
        model = build_task_model(config, splits)
    pair_features = fits_pair_features(config)
    if isinstance(splits, StreamedSplits) and (model.mode.brings_own_fit or pair_features):
        what = "--pairs siamese --feature-cache fits its head on features" if pair_features else \
            f"--mode {config.mode} fits on sentence pairs"
        raise ConfigError(f"{what} in memory; it cannot stream the data. "
                          f"Pass --streaming off (the data must then fit in memory).")
    keep_finished_run(config, is_chief(strategy))  # after the data and model are known good
    announce(config, model, len(splits.train), len(splits.valid), splits.label_names, strategy)
    tuning = {}
    if pair_features:  # pairs read apart: each pair's features computed once, in memory, the head fitted on them
        outcome = fit_head(model, splits.train_examples, splits.valid_examples, config.optimization, config.runtime,
                           job="--pairs siamese --feature-cache")
    elif config.feature_cache:
        outcome, tuning = fit_from_cache(model, splits, config)
    elif model.mode.brings_own_fit:  # contrastive: pairs through the loop, then the head on the tuned embeddings
        outcome = fit_contrastive(model, splits.train_examples, splits.valid_examples, config.optimization,
                                  config.runtime, shuffle=config.shuffle)
    else:
        outcome = fit_task(model, splits.train_examples, splits.valid_examples, config.optimization,
                           config.runtime, config.run_dir, job=f"--task {config.task}", shuffle=config.shuffle)
    report = validation_report(splits.task, splits.valid_ids, outcome.valid_outputs, num_outputs(splits))
    if tuning:
        report["head_tuning"] = tuning
    if auto:
        report["auto"] = auto
    if outcome.stopped:
        report["stopped"] = outcome.stopped
    return finish(model, config, splits.label_names, outcome.history, report, strategy, outcome.speed)


def load_run(run_dir: str | Path) -> tuple[TaskModel, list[str]]:
    """The model a `train` run saved, with its label names."""
    model = load(run_dir)
    return model, list(model.label_names or [])
