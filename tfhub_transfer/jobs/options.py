"""Which training options apply to which task: every option works, or is refused here naming flag and task.

The ranges, flag names and architecture refusals are the config fields' own metadata (config.Option);
this module applies them to a whole `TrainConfig` and adds the checks that relate options to each other.
"""

from __future__ import annotations

from tfhub_transfer.config import TrainConfig, check_value, differs, field_default, flag, option_of
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.serving import BILSTM_EXPORT, check_format
from tfhub_transfer.files import check_name
from tfhub_transfer.preprocessing.text import LongText
from tfhub_transfer.training.tasks import TaskSpec, task_names, task_spec
from tfhub_transfer.training.weighting import parse_class_weight
from tfhub_transfer.transfer.modes import TransferMode


def refusal(field: str, task: str, architecture: str) -> str | None:
    """Why option `field` does not apply to `task` on `architecture`, as a message; None when it does.

    The task's spec says what it refuses (training.tasks); the option itself says which architectures it
    does not apply to (config.Option.refused).

    Example:
        >>> refusal("head", "single_label", "rnn")
        '--head does not apply to rnn models: the word-vector RNN is its own head (--rnn, --rnn-units)'
    """
    reason = task_spec(task).refusal(field)
    if reason:
        return f"{flag(field)} does not apply to --task {task}: {reason}"
    reason = option_of(field).refused.get(architecture)
    return f"{flag(field)} does not apply to {architecture} models: {reason}" if reason else None


def check_options(config: TrainConfig) -> None:
    """Every set option is in range and applies to the task and architecture, or one ConfigError says which."""
    for field, value in config.flat().items():
        check_value(field, value)  # the field's declared range
    check_name(config.name)
    if config.text_b_column and config.seq_length < 5:
        raise ConfigError(f"--seq-length {config.seq_length}: sentence pairs need at least 5 ([CLS], a word piece "
                          "of each text and two [SEP])")
    task, architecture = config.task, config.resolved_architecture()
    spec = check_task(task)
    if spec.needs_encoder and architecture != "encoder":
        raise ConfigError(f"--task {task} {spec.needs_encoder}; drop --word-vectors / --text-embedding")
    if architecture == "rnn" and config.encoder != field_default("encoder"):
        raise ConfigError("--word-vectors builds a word-vector RNN, which uses no --encoder: give one of them")
    for field in config.changed():
        message = refusal(field, task, architecture)
        if message:
            raise ConfigError(message)
    if architecture != "rnn":  # each mode says which tasks and backbones it trains (an RNN reads --embedding-mode)
        TransferMode.parse(config.mode).check_applies(
            task, config.text_b_column is not None, str(config.long_text).startswith("windows"), architecture)
    parse_class_weight(config.class_weight)  # its syntax; the labels are checked once the data is read
    check_label_names(config.label_names, config.label_separator if task == "multi_label" else None)
    check_export_options(config)
    if config.early_stopping and not config.restore_best:
        raise ConfigError("--early-stopping ends with the best epoch's weights; drop --no-restore-best "
                          "(or --early-stopping)")
    if config.feature_cache and not str(config.mode).startswith(("freeze", "feature_extraction")):
        raise ConfigError("--feature-cache needs --mode freeze: the cached features are the frozen encoder's")
    if architecture == "encoder":
        check_recipe(config)


def check_task(task: str) -> TaskSpec:
    """The spec of a task `train` takes, or a ConfigError naming --task and the registered tasks.

    Example:
        >>> check_task("regression").headline
        'pearson'
    """
    if task not in task_names():
        raise ConfigError(f"--task must be one of {task_names()}, not {task!r}")
    return task_spec(task)


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


def fits_pair_features(config: TrainConfig) -> bool:
    """Whether the job fits the head on fixed pair features (`--pairs siamese --feature-cache`: each pair's
    features computed once, in memory; `models.contrastive.fit_head`) instead of a per-layer cache or the model."""
    return config.feature_cache and config.pairs == "siamese"


def check_export_options(config: TrainConfig) -> None:
    """The export format and quantisation fit each other and the model (TFLite / ONNX read one window)."""
    check_format(config.export_format, config.quantize, "--export-format")
    if config.export_format != "saved_model" and str(config.long_text).startswith("windows"):
        raise ConfigError(f"--export-format {config.export_format} reads one window per text; a model trained "
                          f"with --long-text {config.long_text} exports as saved_model")
    if config.export_format != "saved_model" and config.pairs == "siamese":
        raise ConfigError(f"--export-format {config.export_format} reads a pair in one sequence; a model trained "
                          "with --pairs siamese exports as saved_model")
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
    long_text = LongText.parse(config.long_text, config.seq_length, config.text_b_column is not None, config.pairs)
    if config.packing and config.feature_cache:
        raise ConfigError("--pack does not apply to --feature-cache: the encoder runs once per text to fill the "
                          "cache, and the head trains on the features; drop --pack")
    if fits_pair_features(config) and not config.standardize_features:
        raise ConfigError("--no-standardize-features is about the head on per-layer cached features; with --pairs "
                          "siamese --feature-cache the head reads each pair's features as they are: drop it")
    if config.pairs == "siamese" and config.tune_head:
        raise ConfigError("--tune-head sweeps the L2 of a head on per-layer cached features; with --pairs siamese "
                          "--feature-cache the head on each pair's fixed features is fitted with scikit-learn's "
                          "default L2 until its loss stops falling: drop --tune-head")
    if long_text.windowed and config.feature_cache:
        raise ConfigError(f"--long-text {config.long_text} does not apply to --feature-cache: the cache holds one "
                          "feature vector per text, from its first seq_length pieces; drop one of them")
