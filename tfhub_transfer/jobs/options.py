"""Which training options apply to which task: every option works, or is refused here naming flag and task."""

from __future__ import annotations

import math

from tfhub_transfer.config import TrainConfig, field_default
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import check_name
from tfhub_transfer.transfer.modes import TransferMode

FLAG_NAMES = {"learning_rate": "--lr", "output_dir": "--out", "bucket": "--no-bucket",
              "backup_every_steps": "--backup-every", "restore_best": "--no-restore-best",
              "export": "--no-export", "shuffle": "--no-shuffle", "verbose": "--quiet"}

ENCODER_ONLY = {"preprocessor", "pooling", "layer_mix", "feature_cache", "dtype", "embedding_lr_multiplier"}
RNN_ONLY = {"word_vectors", "embedding_mode", "slow_factor", "rnn", "rnn_units", "max_tokens"}
SENTENCE_ONLY = {"text_b_column", "label_separator", "text_column", "label_column", "pooling"}
REFUSED = {
    # (architecture or task) -> {field: why}
    "tokens": {**dict.fromkeys(SENTENCE_ONLY, "CoNLL files hold one word and its tag per line"),
               **dict.fromkeys(RNN_ONLY, "taggers are built on an encoder"),
               "text_embedding": "taggers are built on an encoder",
               "pooling": "a tagger labels each word's first piece; there is nothing to pool"},
    "rnn": {**dict.fromkeys(ENCODER_ONLY, "it applies to encoder models, not word-vector RNNs"),
            "mode": "the RNN's transfer mode is --embedding-mode (init, freeze, slow, random)",
            "text_b_column": "the RNN classifier takes one text", "tagger_head": "it is for --task tokens",
            "text_embedding": "give either --word-vectors or --text-embedding"},
    "text_embedding": {**dict.fromkeys(ENCODER_ONLY, "it applies to encoder models, not text-embedding modules"),
                       **dict.fromkeys(RNN_ONLY, "it applies to word-vector RNNs"),
                       "seq_length": "a text-embedding module takes whole strings",
                       "text_b_column": "a text-embedding module takes one text",
                       "tagger_head": "it is for --task tokens"},
    "encoder": {**dict.fromkeys(RNN_ONLY - {"word_vectors"}, "it applies to word-vector RNNs (--word-vectors)"),
                "tagger_head": "it is for --task tokens"},
    "multi_label": {}, "single_label": {}, "regression": {},
}
RANGES = {  # field -> (low, high, low inclusive, what)
    "epochs": (1, None, True, "a whole number >= 1"), "batch_size": (1, None, True, "a whole number >= 1"),
    "learning_rate": (0, None, False, "a number > 0"), "warmup_fraction": (0, 1, True, "between 0 and 1"),
    "weight_decay": (0, None, True, "a number >= 0"), "dropout": (0, 1, True, "in [0, 1)"),
    "seq_length": (3, None, True, "at least 3 ([CLS], one word piece, [SEP])"),
    "validation_fraction": (0, 1, False, "between 0 and 1"),
    "max_train_examples": (1, None, True, "a whole number >= 1"),
    "steps_per_execution": (1, None, True, "a whole number >= 1"),
    "backup_every_steps": (0, None, True, "a whole number >= 0 (0: no backups)"),
    "embedding_lr_multiplier": (0, None, False, "a number > 0"), "slow_factor": (0, None, False, "a number > 0"),
    "rnn_units": (1, None, True, "a whole number >= 1"), "max_tokens": (3, None, True, "a whole number >= 3"),
}


def flag(field: str) -> str:
    return FLAG_NAMES.get(field, "--" + field.replace("_", "-"))


def check_value(field: str, value) -> None:
    """Raises ConfigError naming the flag when `value` is outside the field's range (None is 'unset')."""
    if value is None or field not in RANGES:
        return
    low, high, inclusive, what = RANGES[field]
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
        reason = REFUSED.get(kind, {}).get(field) or REFUSED.get(task, {}).get(field)
        if reason:
            where = f"--task {task}" if kind == task else f"{kind} models"
            raise ConfigError(f"{flag(field)} does not apply to {where}: {reason}")
    if kind == "text_embedding" and TransferMode.parse(config.mode).kind not in ("freeze", "finetune"):
        raise ConfigError(f"--mode {config.mode} does not apply to text_embedding models: a text-embedding "
                          "module has no layer groups; use freeze or finetune")
    if config.feature_cache and not str(config.mode).startswith(("freeze", "feature_extraction")):
        raise ConfigError("--feature-cache needs --mode freeze: the cached features are the frozen encoder's")
