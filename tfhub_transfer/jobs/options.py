"""Which training options apply to which task: every option works, or is refused here naming flag and task."""

from __future__ import annotations

import math

from tfhub_transfer.config import TrainConfig, differs, field_default
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.serving import BILSTM_EXPORT, check_format
from tfhub_transfer.files import check_name
from tfhub_transfer.preprocessing.text import LongText
from tfhub_transfer.training.weighting import NO_CLASSES, parse_class_weight
from tfhub_transfer.transfer.modes import TransferMode

FLAG_NAMES = {"learning_rate": "--lr", "packing": "--pack", "head_learning_rate": "--head-lr", "output_dir": "--out",
              "standardize_features": "--no-standardize-features",
              "bucket": "--no-bucket",
              "backup_every_steps": "--backup-every", "restore_best": "--no-restore-best",
              "export": "--no-export", "shuffle": "--no-shuffle", "verbose": "--quiet"}

ENCODER_ONLY = {"preprocessor", "pooling", "layer_mix", "feature_cache", "dtype", "embedding_lr_multiplier",
                "head_learning_rate", "head_lr_multiplier", "frozen_epochs", "lr_mult", "long_text", "tune_head",
                "standardize_features", "export_format", "quantize", "packing"}
TAGGER_RECIPE = "a tagger takes the modes' default recipes (its config has no field for this option)"
RNN_ONLY = {"word_vectors", "embedding_mode", "slow_factor", "rnn", "rnn_units", "max_tokens"}
SENTENCE_ONLY = {"text_b_column", "label_separator", "text_column", "label_column", "pooling", "label_names"}
REFUSED = {
    # (architecture or task) -> {field: why}
    "tokens": {**dict.fromkeys(SENTENCE_ONLY, "CoNLL files hold one word and its tag per line"),
               **dict.fromkeys(RNN_ONLY, "taggers are built on an encoder"),
               "text_embedding": "taggers are built on an encoder",
               "pooling": "a tagger labels each word's first piece; there is nothing to pool",
               **dict.fromkeys(("frozen_epochs", "lr_mult", "tune_head", "standardize_features"), TAGGER_RECIPE),
               "long_text": "a tagger labels the words of each sentence (it splits none into windows)",
               "packing": "packing is built for sentence-level tasks (one output per example)",
               **dict.fromkeys(("export_format", "quantize"), "a tagger exports as a SavedModel (TFLite and ONNX "
                                                          "exports are for sentence classifiers)"),
               "class_weight": NO_CLASSES["tokens"], "weight_column": "CoNLL files have no columns to read it from"},
    "rnn": {**dict.fromkeys(ENCODER_ONLY, "it applies to encoder models, not word-vector RNNs"),
            "mode": "the RNN's transfer mode is --embedding-mode (init, freeze, slow, random)",
            "text_b_column": "the RNN classifier takes one text",
            "head": "the word-vector RNN is its own head (--rnn, --rnn-units)",
            "text_embedding": "give either --word-vectors or --text-embedding"},
    "text_embedding": {**dict.fromkeys(ENCODER_ONLY, "it applies to encoder models, not text-embedding modules"),
                       **dict.fromkeys(RNN_ONLY, "it applies to word-vector RNNs"),
                       "seq_length": "a text-embedding module takes whole strings",
                       "text_b_column": "a text-embedding module takes one text",
                       "head": "a text-embedding module gives one vector per text, no token states to read"},
    "encoder": dict.fromkeys(RNN_ONLY - {"word_vectors"}, "it applies to word-vector RNNs (--word-vectors)"),
    "multi_label": {"class_weight": NO_CLASSES["multi_label"]}, "single_label": {},
    "regression": {"class_weight": NO_CLASSES["regression"],
                   "label_names": "a regression target is a number, not a class id to name"},
}
RANGES = {  # field -> (low, high, low inclusive, what)
    "epochs": (1, None, True, "a whole number >= 1, or auto"), "batch_size": (1, None, True, "a whole number >= 1"),
    "learning_rate": (0, None, False, "a number > 0"), "warmup_fraction": (0, 1, True, "between 0 and 1"),
    "weight_decay": (0, None, True, "a number >= 0"), "dropout": (0, 1, True, "in [0, 1)"),
    "seq_length": (3, None, True, "at least 3 ([CLS], one word piece, [SEP])"),
    "validation_fraction": (0, 1, True, "at least 0 (0: no validation) and below 1"),
    "max_train_examples": (1, None, True, "a whole number >= 1"),
    "steps_per_execution": (1, None, True, "a whole number >= 1"),
    "backup_every_steps": (0, None, True, "a whole number >= 0 (0: no backups)"),
    "embedding_lr_multiplier": (0, None, False, "a number > 0"), "slow_factor": (0, None, False, "a number > 0"),
    "rnn_units": (1, None, True, "a whole number >= 1"), "max_tokens": (3, None, True, "a whole number >= 3"),
    "head_learning_rate": (0, None, False, "a number > 0"), "head_lr_multiplier": (0, None, False, "a number > 0"),
    "frozen_epochs": (0, None, True, "a number of epochs >= 0 (fractions allowed)"),
    "lr_mult": (1, None, True, "a number >= 1 (the top group's rate over the embeddings')"),
    "early_stopping": (0, None, True, "a whole number of epochs >= 0 (0: never stop early)"),
    "packing": (0, None, True, "a whole number of word pieces per packed row >= 0 (0: no packing)"),
}


def flag(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def check_value(field: str, value) -> None:
    """Raises ConfigError naming the flag when `value` is outside the field's range (None is 'unset')."""
    if value is None or field not in RANGES or (field == "epochs" and value == "auto"):
        return
    low, high, inclusive, what = RANGES[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{flag(field)} {value!r}: must be {what}")
    bad = isinstance(value, float) and not math.isfinite(value)
    bad = bad or (value < low if inclusive else value <= low)
    bad = bad or (high is not None and (value >= high if field in ("dropout", "validation_fraction") else value > high))
    if bad:
        raise ConfigError(f"{flag(field)} {value}: must be {what}")


def check_options(config: TrainConfig) -> None:
    """Every set option is in range and applies to the task and architecture, or one ConfigError says which."""
    for field, value in config.flat().items():
        check_value(field, value)
    check_name(config.name)
    if config.text_b_column and config.seq_length < 5:
        raise ConfigError(f"--seq-length {config.seq_length}: sentence pairs need at least 5 ([CLS], a word piece "
                          "of each text and two [SEP])")
    task = config.task
    kind = "tokens" if task == "tokens" else config.resolved_architecture()
    if kind == "tokens" and config.resolved_architecture() != "encoder":
        raise ConfigError("--task tokens trains a tagger on an encoder; drop --word-vectors / --text-embedding")
    if kind == "rnn" and config.encoder != field_default("encoder"):
        raise ConfigError("--word-vectors builds a word-vector RNN, which uses no --encoder: give one of them")
    for field in config.changed():
        by_kind = REFUSED.get(kind, {}).get(field)
        reason = by_kind or REFUSED.get(task, {}).get(field)
        if reason:
            where = f"{kind} models" if by_kind and kind != task else f"--task {task}"
            raise ConfigError(f"{flag(field)} does not apply to {where}: {reason}")
    if kind != "rnn":  # each mode says which tasks and backbones it trains (an RNN reads --embedding-mode)
        TransferMode.parse(config.mode).check_applies(
            task, config.text_b_column is not None, str(config.long_text).startswith("windows"),
            "text_embedding" if kind == "text_embedding" else "encoder")
    parse_class_weight(config.class_weight)  # its syntax; the labels are checked once the data is read
    check_label_names(config.label_names, config.label_separator if task == "multi_label" else None)
    check_export_options(config)
    if config.early_stopping and not config.restore_best:
        raise ConfigError("--early-stopping ends with the best epoch's weights; drop --no-restore-best "
                          "(or --early-stopping)")
    if config.feature_cache and not str(config.mode).startswith(("freeze", "feature_extraction")):
        raise ConfigError("--feature-cache needs --mode freeze: the cached features are the frozen encoder's")
    if kind in ("encoder", "tokens"):
        check_recipe(config)


def check_label_names(names, separator: str | None = None) -> None:
    """--label-names: at least 2 distinct non-empty names (without the multi-label separator), or None.

    Args:
      names: the names of class ids 0..n-1 in order (a list of str), or None.
      separator: the multi-label separator, which a name cannot hold.
    Example:
      >>> check_label_names(["neg", "pos"])
    """
    if names is None:
        return
    if isinstance(names, str) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"--label-names {names!r}: give the names of class ids 0, 1, ... in order, as a list of "
                          "non-empty strings (label_names=['neg', 'pos']; on the command line neg,pos)")
    repeated = sorted({n for n in names if list(names).count(n) > 1})
    if len(names) < 2 or repeated:
        why = f"names {repeated[0]!r} twice" if repeated else "names fewer than 2 classes"
        raise ConfigError(f"--label-names {','.join(names)}: {why}; give each class id 0..n-1 its own name")
    if separator and any(separator in n for n in names):
        raise ConfigError(f"--label-names: a name holds the --label-separator {separator!r}; rename it")


def check_export_options(config: TrainConfig) -> None:
    """The export format and quantisation fit each other and the model (TFLite / ONNX read one window)."""
    check_format(config.export_format, config.quantize, "--export-format")
    if config.export_format != "saved_model" and str(config.long_text).startswith("windows"):
        raise ConfigError(f"--export-format {config.export_format} reads one window per text; a model trained "
                          f"with --long-text {config.long_text} exports as saved_model")
    if config.export_format != "saved_model" and config.head == "bilstm":
        raise ConfigError(f"--export-format {config.export_format} takes dense heads: {BILSTM_EXPORT}")


def check_recipe(config: TrainConfig) -> None:
    """The transfer recipe's options fit the mode, and each other."""
    mode = TransferMode.parse(config.mode, lr_mult=config.lr_mult, frozen_epochs=config.frozen_epochs)
    if mode.encoder_trainable and mode.has_phases and config.epochs != "auto" and mode.head_epochs >= config.epochs:
        raise ConfigError(f"--frozen-epochs {mode.head_epochs:g} (mode {config.mode}) leaves none of --epochs "
                          f"{config.epochs} for the encoder: raise --epochs or lower --frozen-epochs (or use "
                          "--mode freeze)")
    if not mode.encoder_trainable and differs(config.head_lr_multiplier, field_default("head_lr_multiplier")):
        raise ConfigError("--head-lr-multiplier does not apply to --mode freeze: the encoder never trains; "
                          "--head-lr (or --lr) sets the head's rate")
    if config.tune_head and not config.feature_cache:
        raise ConfigError("--tune-head sweeps the head on cached features: add --feature-cache (with --mode freeze)")
    if not config.standardize_features and not config.feature_cache:
        raise ConfigError("--no-standardize-features is about the head on cached features: add --feature-cache")
    if not config.standardize_features and config.head == "bilstm":
        raise ConfigError("--no-standardize-features is about the linear head: --head bilstm reads the cached "
                          "features as they are")
    long_text = LongText.parse(config.long_text, config.seq_length, config.text_b_column is not None)
    if config.packing and config.feature_cache:
        raise ConfigError("--pack does not apply to --feature-cache: the encoder runs once per text to fill the "
                          "cache, and the head trains on the features; drop --pack")
    if long_text.windowed and config.feature_cache:
        raise ConfigError(f"--long-text {config.long_text} does not apply to --feature-cache: the cache holds one "
                          "feature vector per text, from its first seq_length pieces; drop one of them")
