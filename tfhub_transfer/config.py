"""Configuration as small dataclasses, one per concern; every default is written here once.

`TrainConfig` composes them. `TrainConfig.of(train=..., epochs=2, mode="gradual")` takes the
flat field names (the CLI's flags map one to one onto them) and routes each to its concern;
`config.replace(...)` does the same for a copy, and reading `config.epochs` reaches into the
concern that holds it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfhub_transfer.errors import ConfigError

HEADS = ("dense", "bilstm")  # the task head: see ModelConfig.head
HEAD_LEARNING_RATE = 1e-3  # what trains when the encoder is frozen: a new head (or RNN, mix)
ENCODER_LEARNING_RATE = 5e-5  # fine-tuning a pretrained transformer
CACHED_HEAD_EPOCHS = 50  # --feature-cache with the default --epochs: the head trains to convergence...
CACHED_HEAD_PATIENCE = 5  # ...stopping after this many epochs without a better validation score...
CACHED_HEAD_LEARNING_RATE = 3e-4  # ...at this head rate unless one is given (more epochs, a better head)
PRETRAIN_EPOCHS = 1  # continued masked-LM pretraining (jobs.pretrain); its other defaults are train's
PRETRAIN_HOLDOUT_FRACTION = 0.05
CONTRASTIVE_LEARNING_RATE = 2e-5  # --mode contrastive: the encoder on pairs (SetFit's body rate)
TASKS = ("single_label", "multi_label", "regression", "tokens")
ARCHITECTURES = ("auto", "encoder", "rnn", "text_embedding")


def default_learning_rate(encoder_trains: bool) -> float:
    """The peak learning rate when none is given: the encoder's rate when it trains, else the head's."""
    return ENCODER_LEARNING_RATE if encoder_trains else HEAD_LEARNING_RATE


@dataclasses.dataclass
class DataConfig:
    """Where the labelled text comes from and how it is read."""

    train: Any = None  # a file path, a pandas DataFrame; CoNLL files for the tokens task
    valid: Any = None  # None: hold out validation_fraction of train
    text_column: str = "text"
    label_column: str = "label"
    task: str = "single_label"  # single_label | multi_label | regression | tokens
    text_b_column: str | None = None  # sentence pairs: the second text's column
    label_separator: str = ","  # multi_label: separates a row's label names
    validation_fraction: float = 0.1
    max_train_examples: int | None = None  # a seeded random subset (tokens: the first N sentences)
    shuffle: bool = True
    weight_column: str | None = None  # per-example training weights (numbers >= 0) read from this column
    label_names: list[str] | None = None  # names of integer class ids 0..n-1, in order (the label column holds ids)


@dataclasses.dataclass
class ModelConfig:
    """Which backbone and head are built."""

    architecture: str = "auto"  # encoder | rnn | text_embedding; auto picks from the fields below
    encoder: str = "default"
    preprocessor: str | None = None
    pooling: str | None = None  # None: the encoder's own recommendation
    layer_mix: str | None = None  # feature-based layer mix, see tfhub_transfer.layers.layer_mix
    dropout: float = 0.1
    seq_length: int = 128
    dtype: str = "float32"  # encoder compute dtype: float32 | bfloat16 (encoders this package wrote; float32
    # on a CPU without bf16 instructions, see encoders.dtypes)
    head: str = "dense"  # dense | bilstm: a BiLSTM over the token states (pooled by mean and max for a sentence
    # task; before the tag layer for --task tokens), the BERT paper's reader of frozen features
    word_vectors: str | None = None  # word2vec / GloVe file -> an RNN classifier
    embedding_mode: str = "init"  # RNN: init | freeze | slow | random
    slow_factor: float = 0.01  # RNN: the embeddings' LR factor for embedding_mode=slow
    rnn: str = "bilstm"
    rnn_units: int = 64
    max_tokens: int = 20_000
    text_embedding: str | None = None  # a TF Hub text-embedding module (strings -> vectors)
    long_text: str = "truncate"  # truncate | windows:STRIDE (overlapping windows, pooled; see preprocessing.text)
    packing: int = 0  # train on batches packed into rows of this many word pieces (preprocessing.packing); 0: off


@dataclasses.dataclass
class TransferConfig:
    """What the pretrained weights do: the transfer mode and its options."""

    mode: str = "auto"  # see tfhub_transfer.transfer.modes; auto chooses from the data (modes/auto.py)
    embedding_lr_multiplier: float | None = None
    feature_cache: bool = False  # freeze mode: encode once, train the mix + head from the cache
    standardize_features: bool = True  # with the feature cache: the head trains on standardised features
    tune_head: bool = False  # with the feature cache: sweep the head's L2 and learning rate, keep the best
    frozen_epochs: float | None = None  # head-only epochs before the encoder trains; None: the mode's default
    lr_mult: float | None = None  # discriminative/gradual: top group's rate / bottom group's; None: mode default


@dataclasses.dataclass
class OptimizationConfig:
    """How the weights are fitted."""

    epochs: int | str = "auto"  # auto: enough optimizer steps for small data, 1-3 passes for large (training.budget)
    max_steps: int | None = None  # stop after this many optimizer steps (the schedule ends there too)
    batch_size: int = 32  # per replica
    learning_rate: float | None = None  # None: default_learning_rate(encoder trains)
    optimizer: str = "adamw"  # adamw | adam | sgd
    schedule: str = "linear"  # linear (warmup + decay) | slanted_triangular | one_cycle | constant
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    head_learning_rate: float | None = None  # a new head's rate while the encoder is frozen; None: 1e-3 (3e-4
    # for a --feature-cache head trained to convergence)
    head_lr_multiplier: float = 1.0  # while the encoder trains, the head's rate is this x learning_rate
    early_stopping: int = 0  # stop after this many epochs without a better validation score (0: never)
    class_weight: str | dict | None = None  # "balanced", "label=weight,..." or {label: weight}


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how the training loop runs: devices, speed options, faults, seeds, output."""

    distribution: str = "auto"  # auto | one_device | mirrored | multi_worker | tpu
    bucket: bool = True  # group similar lengths into batches (less padding)
    steps_per_execution: int = 1
    jit_compile: bool = False  # XLA; slower on CPU for hub.KerasLayer encoders
    resume: bool | None = None  # None: resume from a backup in the run directory if there is one
    backup_every_steps: int = 200  # 0: no backups
    keep_backups: bool = False  # keep the run's backup (its final state) after it finishes; else deleted
    cache_dir: str | Path | None = None  # the package's cache; None: $TFHUB_TRANSFER_CACHE, else ~/.cache/...
    restore_best: bool = True  # end with the weights of the best validation epoch
    time_budget: float | None = None  # minutes of training at most; then a clean stop with the best weights
    seed: int = 0
    verbose: int = 1  # 1: progress (bars on a terminal, a line per epoch in a log); 0: the header and result only
    tensorboard: bool = True  # TensorBoard logs in the run directory (OUT/NAME/run/tensorboard)
    callbacks: list = dataclasses.field(default_factory=list)  # extra Keras callbacks for fit


@dataclasses.dataclass
class OutputConfig:
    """Where results go: OUT/NAME/VERSION for exports, OUT/NAME/run for the run's state."""

    name: str = "classifier"
    output_dir: str | Path = "saved_models"
    export: bool = True
    export_format: str = "saved_model"  # saved_model | tflite | onnx (see export.formats)
    quantize: str | None = None  # int8: dynamic-range int8 weights (tflite, onnx)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name / "run"


CONCERNS = {"data": DataConfig, "model": ModelConfig, "transfer": TransferConfig,
            "optimization": OptimizationConfig, "runtime": RuntimeConfig, "output": OutputConfig}
_FIELD_CONCERN = {f.name: concern for concern, cls in CONCERNS.items() for f in dataclasses.fields(cls)}


def differs(value, default) -> bool:
    """Whether a set value differs from a default (data frames and arrays compare as 'set')."""
    if value is None or default is None:
        return value is not default
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True


def field_default(name: str):
    """The one default of a flat field name."""
    field = next(f for f in dataclasses.fields(CONCERNS[_FIELD_CONCERN[name]]) if f.name == name)
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs, by concern. Build it with `TrainConfig.of(**flat_fields)`."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    transfer: TransferConfig = dataclasses.field(default_factory=TransferConfig)
    optimization: OptimizationConfig = dataclasses.field(default_factory=OptimizationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)

    @classmethod
    def of(cls, **fields) -> TrainConfig:
        """A config from flat field names (`train=`, `epochs=`, `mode=` ...), each routed to its concern."""
        return cls().replace(**fields)

    def replace(self, **fields) -> TrainConfig:
        """A copy with the given flat fields changed."""
        unknown = sorted(set(fields) - set(_FIELD_CONCERN))
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(_FIELD_CONCERN)}")
        parts = {}
        for concern in CONCERNS:
            changes = {k: v for k, v in fields.items() if _FIELD_CONCERN[k] == concern}
            parts[concern] = dataclasses.replace(getattr(self, concern), **changes)
        return TrainConfig(**parts)

    def flat(self) -> dict[str, Any]:
        """Every field by its flat name."""
        return {name: getattr(getattr(self, concern), name) for name, concern in _FIELD_CONCERN.items()}

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults."""
        return {k: v for k, v in self.flat().items() if k != "train" and differs(v, field_default(k))}

    def __getattr__(self, name: str):
        concern = _FIELD_CONCERN.get(name)
        if concern is None:
            raise AttributeError(name)
        return getattr(self.__dict__[concern], name)

    @property
    def run_dir(self) -> Path:
        return self.output.run_dir

    def resolved_architecture(self) -> str:
        model = self.model
        if model.architecture not in ARCHITECTURES:
            raise ConfigError(f"--architecture must be one of {ARCHITECTURES}, not {model.architecture!r}")
        if model.architecture != "auto":
            return model.architecture
        if model.text_embedding:
            return "text_embedding"
        return "rnn" if model.word_vectors else "encoder"
