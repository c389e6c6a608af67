"""`train`: labelled text in, a fine-tuned classifier (and its raw-string export) out."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from tfhub_transfer.callbacks import GradualUnfreezing, RestoreBestWeights
from tfhub_transfer.data import LabelledSplits, load_labelled
from tfhub_transfer.distribution import (
    describe,
    global_batch_size,
    is_chief,
    is_multi_worker,
    make_distribution,
)
from tfhub_transfer.encoders.dtypes import encoder_with_dtype
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export import export_classifier
from tfhub_transfer.fault_tolerance import BACKUP_DIR, ResumableBackup, ResumePoint, prepare_backup
from tfhub_transfer.model import ClassifierConfig, build_classifier_from_config
from tfhub_transfer.optimizers import optimizer_factory
from tfhub_transfer.plots import confusion_matrix_png, training_curves_png
from tfhub_transfer.preprocessing import (
    make_dataset,
    make_string_dataset,
    make_training_dataset,
)
from tfhub_transfer.rnn_classifier import RnnClassifierConfig, build_rnn_classifier_from_config
from tfhub_transfer.schedules import make_schedule
from tfhub_transfer.tasks import TASK_SPECS, compile_args, validation_report
from tfhub_transfer.text_embedding_classifier import (
    TextEmbeddingClassifierConfig,
    build_text_embedding_classifier,
)
from tfhub_transfer.transfer_model import TransferModel
from tfhub_transfer.transfer_modes import TransferMode

RUN_DIR = "run"
FROZEN_ENCODER_LEARNING_RATE = 1e-3
ENCODER_LEARNING_RATE = 5e-5
ARCHITECTURES = ("auto", "encoder", "rnn", "text_embedding")


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs; the CLI's `train` flags map one to one onto these fields."""

    train: str | Path | pd.DataFrame
    valid: str | Path | pd.DataFrame | None = None
    text_column: str = "text"
    label_column: str = "label"
    task: str = "single_label"  # single_label | multi_label | regression
    text_b_column: str | None = None  # sentence pairs: the second text's column
    label_separator: str = ","  # multi_label: separates a row's label names
    layer_mix: str | None = None  # feature-based layer mix, see tfhub_transfer.layer_mix
    feature_cache: bool = False  # freeze mode: encode once, train the mix + head from the cache
    shuffle: bool = True
    architecture: str = "auto"  # encoder | rnn | text_embedding; auto picks from the fields below
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"  # transfer mode spec, see tfhub_transfer.transfer_modes
    word_vectors: str | None = None  # word2vec/GloVe file -> an RNN classifier
    embedding_mode: str = "init"  # init | freeze | slow | random (RNN only)
    slow_factor: float = 0.01  # the embeddings' LR factor for embedding_mode=slow
    rnn: str = "bilstm"
    rnn_units: int = 64
    max_tokens: int = 20_000
    text_embedding: str | None = None  # a TF Hub text-embedding module (strings -> vectors)
    embedding_lr_multiplier: float | None = None
    pooling: str | None = None
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None  # None: 1e-3 for `freeze`, 5e-5 when the encoder trains
    optimizer: str = "adamw"  # adamw | adam | sgd
    schedule: str = "linear"  # linear (warmup + decay) | slanted_triangular | one_cycle | constant
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    seq_length: int = 128
    dtype: str = "float32"  # encoder compute dtype: float32 | bfloat16 (encoders this package writes)
    distribution: str = "auto"  # auto | one_device | mirrored | multi_worker | tpu
    bucket: bool = True  # group similar lengths into batches (less padding)
    steps_per_execution: int = 1
    jit_compile: bool = False  # XLA; slower on CPU for hub.KerasLayer encoders, so off by default
    resume: bool | None = None  # None: resume from a backup in the output dir if there is one
    backup_every_steps: int = 200
    callbacks: list = dataclasses.field(default_factory=list)  # extra Keras callbacks for `fit`
    validation_fraction: float = 0.1
    max_train_examples: int | None = None
    seed: int = 0
    name: str = "classifier"
    output_dir: str | Path = "saved_models"
    export: bool = True
    verbose: int = 1

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name / RUN_DIR

    def classifier_config(self, num_classes: int) -> ClassifierConfig:
        return ClassifierConfig(
            num_classes=num_classes,
            encoder=self.encoder,
            preprocessor=self.preprocessor,
            mode=self.mode,
            embedding_lr_multiplier=self.embedding_lr_multiplier,
            pooling=self.pooling or ("mean" if self.feature_cache else None),
            dropout=self.dropout,
            seq_length=self.seq_length,
            seed=self.seed,
            task=self.task,
            layer_mix=self.layer_mix or ("last" if self.feature_cache else None),
            pair=self.text_b_column is not None,
        )

    def resolved_architecture(self) -> str:
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        if self.architecture != "auto":
            return self.architecture
        if self.text_embedding:
            return "text_embedding"
        return "rnn" if self.word_vectors else "encoder"

    def model_config(self, num_classes: int):
        """The builder config for the chosen architecture."""
        architecture = self.resolved_architecture()
        if architecture == "rnn":
            return RnnClassifierConfig(
                num_classes, self.word_vectors, self.embedding_mode, self.rnn, self.rnn_units,
                self.max_tokens, self.seq_length, self.slow_factor, dropout=self.dropout, seed=self.seed,
            )
        if architecture == "text_embedding":
            mode = self.mode if self.mode in ("freeze", "finetune") else "finetune"
            return TextEmbeddingClassifierConfig(
                num_classes, self.text_embedding or "", mode, self.dropout, seed=self.seed
            )
        return self.classifier_config(num_classes)

    def resolved_learning_rate(self) -> float:
        if self.learning_rate:
            return self.learning_rate
        if self.resolved_architecture() != "encoder":
            return FROZEN_ENCODER_LEARNING_RATE
        frozen = TransferMode.parse(self.mode).kind == "freeze"
        return FROZEN_ENCODER_LEARNING_RATE if frozen else ENCODER_LEARNING_RATE


@dataclasses.dataclass
class TrainResult:
    model: TransferModel
    history: dict[str, list[float]]
    metrics: dict
    label_names: list[str]
    export_path: Path | None
    run_dir: Path


def classifier_compile_args(num_classes: int, task: str = "single_label") -> dict:
    return compile_args(task, num_classes)


def compile_classifier(
    model: TransferModel, learning_rate, num_classes: int, optimizer: str = "adamw",
    weight_decay: float = 0.01, task: str = "single_label", steps_per_execution: int = 1,
    jit_compile: bool = False,
) -> None:
    """Compiles with per-group optimizers (see TransferModel.compile_transfer) and the task's loss."""
    with model.distribute_strategy.scope():
        model.compile_transfer(
            optimizer_factory(optimizer, weight_decay), learning_rate,
            steps_per_execution=steps_per_execution, jit_compile=jit_compile,
            **compile_args(task, num_classes),
        )


def transfer_callbacks(model: TransferModel) -> list:
    if model.mode.kind == "gradual":
        return [GradualUnfreezing(model.mode.unfreeze_every_steps)]
    return []


def predict_outputs(model: TransferModel, dataset: tf.data.Dataset) -> np.ndarray:
    """The model's outputs on every batch of `dataset`, in order, on this process.

    Under a multi-worker strategy `predict` would shard the data across workers, so
    each worker runs the (replicated) model on all of it instead.
    """
    inputs = dataset.map(lambda x, y: x)
    if not is_multi_worker(model.distribute_strategy):
        return model.predict(inputs, verbose=0)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return np.concatenate([call(x).numpy() for x in inputs])


def predict_ids(model: TransferModel, dataset: tf.data.Dataset) -> np.ndarray:
    return np.argmax(predict_outputs(model, dataset), axis=-1)


def fit_classifier(
    model: TransferModel,
    splits: LabelledSplits,
    config: TrainConfig,
) -> tuple[dict, dict]:
    """Compiles and fits `model` on `splits` under the model's distribution strategy.

    `config.batch_size` is per replica. Backups go to `config.run_dir/backup` and an
    earlier interrupted run there is resumed (see `config.resume`). Returns
    (history, validation report).
    """
    if config.feature_cache:
        from tfhub_transfer.cached_training import fit_from_cache

        return fit_from_cache(model, splits, config)
    strategy = model.distribute_strategy
    batch = global_batch_size(config.batch_size, strategy)
    backup_dir = config.run_dir / BACKUP_DIR
    whole_batches = strategy.num_replicas_in_sync > 1
    steps_per_epoch = _steps_per_epoch(len(splits.train), batch, whole_batches)
    start = prepare_backup(backup_dir, steps_per_epoch, config.resume, is_chief(strategy))
    train_ds = training_dataset(model, splits, config, batch, start, whole_batches)
    valid_ds = validation_dataset(model, splits, batch, config.seq_length)
    rate = config.resolved_learning_rate()
    schedule = make_schedule(config.schedule, rate, steps_per_epoch * config.epochs,
                             config.warmup_fraction)
    outputs = num_outputs(splits)
    compile_classifier(model, schedule, outputs, config.optimizer, config.weight_decay, splits.task,
                       config.steps_per_execution, config.jit_compile)
    task = TASK_SPECS[splits.task]
    best = RestoreBestWeights(task.monitor, task.monitor_mode, backup_dir / "best_weights.npz",
                              write=is_chief(strategy))
    callbacks = [*transfer_callbacks(model), best, *config.callbacks]
    if config.backup_every_steps:
        callbacks.insert(0, ResumableBackup(backup_dir, config.backup_every_steps, rate))
    history = model.fit(
        train_ds, validation_data=valid_ds, epochs=config.epochs, steps_per_epoch=steps_per_epoch,
        callbacks=callbacks, verbose=config.verbose,
    )
    if is_chief(strategy):
        shutil.rmtree(backup_dir, ignore_errors=True)
    report = validation_report(splits.task, splits.valid_ids, predict_outputs(model, valid_ds), outputs)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}, report


def _steps_per_epoch(examples: int, batch: int, whole_batches: bool) -> int:
    """Batches per epoch; with several replicas only whole global batches (see `training_dataset`)."""
    if not whole_batches:
        return math.ceil(examples / batch)
    if examples < batch:
        raise ConfigError(f"{examples} training examples do not fill one global batch of {batch} "
                          "(per-replica batch x replicas); lower --batch-size")
    return examples // batch


def num_outputs(splits: LabelledSplits) -> int:
    return 1 if splits.labels is None else len(splits.labels)


def training_dataset(model: TransferModel, splits: LabelledSplits, config: TrainConfig,
                     batch: int, start: ResumePoint, whole_batches: bool = False) -> tf.data.Dataset:
    """The training stream from `start` on, in the form the model takes (encoder inputs or strings).

    With several replicas only whole global batches are used (a short last batch would
    split unevenly); on a TPU every batch is also padded to `seq_length` (static shapes).
    """
    on_tpu = isinstance(model.distribute_strategy, tf.distribute.TPUStrategy)
    dataset, _ = make_training_dataset(
        splits.train.texts, splits.train_ids, model.preprocessor, batch, config.seq_length,
        config.epochs, seed=config.seed, shuffle=config.shuffle, bucket=config.bucket and not on_tpu,
        start_epoch=start.epoch, start_step=start.step, texts_b=splits.train.texts_b,
        drop_remainder=whole_batches or on_tpu, static_length=on_tpu,
    )
    return dataset


def validation_dataset(model: TransferModel, splits: LabelledSplits, batch: int,
                       seq_length: int) -> tf.data.Dataset:
    if model.preprocessor is None:
        return make_string_dataset(splits.valid.texts, splits.valid_ids, batch)
    return make_dataset(splits.valid.texts, splits.valid_ids, model.preprocessor, batch, seq_length,
                        texts_b=splits.valid.texts_b)


def build_model(config: TrainConfig, splits: LabelledSplits) -> TransferModel:
    """Builds the model `config` describes (call it inside the distribution strategy's scope)."""
    model_config = config.model_config(num_outputs(splits))
    if isinstance(model_config, ClassifierConfig) and config.dtype != "float32":
        encoder = encoder_with_dtype(config.encoder, config.dtype, config.preprocessor)
        model_config = dataclasses.replace(model_config, encoder=encoder)
    if isinstance(model_config, RnnClassifierConfig):
        model = build_rnn_classifier_from_config(model_config, splits.train.texts)
        if config.verbose and model.coverage is not None:
            print(model.coverage, flush=True)
        return model
    if isinstance(model_config, TextEmbeddingClassifierConfig):
        return build_text_embedding_classifier(model_config)
    return build_classifier_from_config(model_config)


_KINDS = {ClassifierConfig: "encoder", RnnClassifierConfig: "rnn",
          TextEmbeddingClassifierConfig: "text_embedding"}


def _numeric_variables(model: TransferModel) -> list[tf.Variable]:
    """Model variables in a stable order, without lookup-table handles (rebuilt from the vocabulary)."""
    return [w for w in model.weights if isinstance(w, tf.Variable)]


def save_run(run_dir: Path, config: TrainConfig, model: TransferModel, labels: list[str]) -> None:
    """Keeps what `tfhub-transfer export` needs to rebuild the model: config, labels, weights."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "kind": _KINDS[type(model.config)],
        "classifier": dataclasses.asdict(model.config),
        "labels": labels,
        "train": {f.name: str(getattr(config, f.name)) for f in dataclasses.fields(config)
                  if f.name not in ("train", "valid", "callbacks")},
    }
    if record["kind"] == "rnn":
        record["vocabulary"] = model.vocabulary
        record["embedding_dim"] = int(model.get_layer("embeddings").output_dim)
    (run_dir / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    # By position, not by object graph: a rebuilt model's graph can differ in bookkeeping.
    np.savez(run_dir / "weights.npz", *[v.numpy() for v in _numeric_variables(model)])


def load_run(run_dir: str | Path) -> tuple[TransferModel, list[str]]:
    """Rebuilds the model a `train` run saved, with its trained weights."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    kind = record.get("kind", "encoder")
    if kind == "rnn":
        model = build_rnn_classifier_from_config(RnnClassifierConfig(**record["classifier"]),
                                     vocabulary=record["vocabulary"], restore_dim=record["embedding_dim"])
    elif kind == "text_embedding":
        model = build_text_embedding_classifier(TextEmbeddingClassifierConfig(**record["classifier"]))
    else:
        model = build_classifier_from_config(ClassifierConfig(**record["classifier"]))
    with np.load(run_dir / "weights.npz") as saved:
        for i, variable in enumerate(_numeric_variables(model)):
            variable.assign(saved[f"arr_{i}"])
    return model, record["labels"]


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> TrainResult:
    """Reads the data, builds the classifier, fits it, reports and (by default) exports it.

    The distribution strategy is `strategy` if given, else made from
    `config.distribution` before anything else touches TensorFlow. Under a
    multi-worker strategy every worker trains; only the chief writes files.
    """
    strategy = make_distribution(strategy or config.distribution)
    tf_keras.utils.set_random_seed(config.seed)
    splits = load_labelled(
        config.train, config.valid, config.text_column, config.label_column,
        config.validation_fraction, config.max_train_examples, config.seed,
        config.task, config.text_b_column, config.label_separator,
    )
    labels = list(splits.labels.names) if splits.labels is not None else []
    with strategy.scope():
        model = build_model(config, splits)
    if config.verbose:
        what = model.spec.name if model.spec is not None else model.name
        print(
            f"Training {what} ({config.resolved_architecture()}) on {len(splits.train)} examples, "
            f"validating on {len(splits.valid)}; classes {labels}; {describe(strategy)}, global "
            f"batch {global_batch_size(config.batch_size, strategy)}", flush=True
        )
    history, report = fit_classifier(model, splits, config)
    chief = is_chief(strategy)
    if chief:
        save_run(config.run_dir, config, model, labels)
    export_path = None
    if config.export:
        export_path = _export_run(model, config, labels, history, report, chief)
    return TrainResult(model, history, report, labels, export_path, config.run_dir)


def _export_run(model: TransferModel, config: TrainConfig, labels: list[str], history: dict,
                report: dict, chief: bool) -> Path | None:
    """Exports on the chief; other workers take part in the save (collectives) into a temp dir."""
    extra = {
        "training_curves.png": training_curves_png(history),
        "metrics.json": json.dumps({"validation": report, "history": history}, indent=2).encode(),
    }
    if "confusion_matrix" in report:
        extra["confusion_matrix.png"] = confusion_matrix_png(report["confusion_matrix"], labels)
    headline = {k: v for k, v in report.items() if isinstance(v, (int, float))}
    scratch = None if chief else tempfile.mkdtemp(prefix="tfhub_transfer_worker_export_")
    try:
        path = export_classifier(
            model, labels, scratch or config.output_dir, config.name, extra_files=extra,
            info={"validation": headline}, thresholds=report.get("thresholds"),
        )
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return path if chief else None
