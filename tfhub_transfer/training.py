"""`train`: labelled text in, a fine-tuned classifier (and its raw-string export) out."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from tfhub_transfer.callbacks import RestoreBestWeights
from tfhub_transfer.data import LabelledSplits, load_labelled
from tfhub_transfer.export import export_classifier
from tfhub_transfer.metrics import MacroF1, classification_report
from tfhub_transfer.model import ClassifierConfig, TransferModel, build_classifier_from_config
from tfhub_transfer.optimizers import make_adamw
from tfhub_transfer.plots import confusion_matrix_png, training_curves_png
from tfhub_transfer.preprocessing import make_dataset

RUN_DIR = "run"
DEFAULT_LEARNING_RATES = {"freeze": 1e-3, "finetune": 5e-5}


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs; the CLI's `train` flags map one to one onto these fields."""

    train: str | Path | pd.DataFrame
    valid: str | Path | pd.DataFrame | None = None
    text_column: str = "text"
    label_column: str = "label"
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"
    pooling: str | None = None
    dropout: float = 0.1
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None  # None: 1e-3 for `freeze`, 5e-5 for `finetune`
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    seq_length: int = 128
    validation_fraction: float = 0.1
    max_train_examples: int | None = None
    seed: int = 0
    name: str = "classifier"
    output_dir: str | Path = "saved_models"
    export: bool = True
    verbose: int = 1

    def classifier_config(self, num_classes: int) -> ClassifierConfig:
        return ClassifierConfig(
            num_classes=num_classes,
            encoder=self.encoder,
            preprocessor=self.preprocessor,
            mode=self.mode,
            pooling=self.pooling,
            dropout=self.dropout,
            seq_length=self.seq_length,
            seed=self.seed,
        )

    def resolved_learning_rate(self) -> float:
        return self.learning_rate or DEFAULT_LEARNING_RATES.get(self.mode, 5e-5)


@dataclasses.dataclass
class TrainResult:
    model: TransferModel
    history: dict[str, list[float]]
    metrics: dict
    label_names: list[str]
    export_path: Path | None
    run_dir: Path


def compile_classifier(model: TransferModel, optimizer, num_classes: int) -> None:
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy"), MacroF1(num_classes)],
    )


def predict_ids(model: TransferModel, dataset: tf.data.Dataset) -> np.ndarray:
    logits = model.predict(dataset.map(lambda x, y: x), verbose=0)
    return np.argmax(logits, axis=-1)


def fit_classifier(
    model: TransferModel,
    splits: LabelledSplits,
    config: TrainConfig,
) -> tuple[dict, dict]:
    """Compiles and fits `model` on `splits`; returns (history, validation report)."""
    pre = model.preprocessor
    train_ds = make_dataset(
        splits.train.texts, splits.train_ids, pre, config.batch_size, config.seq_length,
        shuffle=True, seed=config.seed,
    )
    valid_ds = make_dataset(
        splits.valid.texts, splits.valid_ids, pre, config.batch_size, config.seq_length
    )
    steps = math.ceil(len(splits.train) / config.batch_size) * config.epochs
    optimizer = make_adamw(
        config.resolved_learning_rate(), steps, config.warmup_fraction, config.weight_decay
    )
    compile_classifier(model, optimizer, len(splits.labels))
    history = model.fit(
        train_ds,
        validation_data=valid_ds,
        epochs=config.epochs,
        callbacks=[RestoreBestWeights("val_accuracy", "max")],
        verbose=config.verbose,
    )
    report = classification_report(
        splits.valid_ids, predict_ids(model, valid_ds), len(splits.labels)
    )
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}, report


def save_run(run_dir: Path, config: TrainConfig, model: TransferModel, labels: list[str]) -> None:
    """Keeps what `tfhub-transfer export` needs to rebuild the model: config, labels, weights."""
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {
        "classifier": dataclasses.asdict(model.config),
        "labels": labels,
        "train": {k: str(v) for k, v in dataclasses.asdict(config).items() if k not in ("train", "valid")},
    }
    (run_dir / "run.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    model.save_weights(str(run_dir / "weights"))


def load_run(run_dir: str | Path) -> tuple[TransferModel, list[str]]:
    """Rebuilds the model a `train` run saved, with its trained weights."""
    run_dir = Path(run_dir)
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    model = build_classifier_from_config(ClassifierConfig(**record["classifier"]))
    model.load_weights(str(run_dir / "weights")).expect_partial()
    return model, record["labels"]


def train(config: TrainConfig) -> TrainResult:
    """Reads the data, builds the classifier, fits it, reports and (by default) exports it."""
    tf_keras.utils.set_random_seed(config.seed)
    splits = load_labelled(
        config.train, config.valid, config.text_column, config.label_column,
        config.validation_fraction, config.max_train_examples, config.seed,
    )
    labels = list(splits.labels.names)
    model = build_classifier_from_config(config.classifier_config(len(labels)))
    if config.verbose:
        print(
            f"Training {config.mode} on {len(splits.train)} examples, validating on "
            f"{len(splits.valid)}; encoder {model.spec.name}; classes {labels}", flush=True
        )
    history, report = fit_classifier(model, splits, config)
    run_dir = Path(config.output_dir) / config.name / RUN_DIR
    save_run(run_dir, config, model, labels)
    export_path = None
    if config.export:
        extra = {
            "confusion_matrix.png": confusion_matrix_png(report["confusion_matrix"], labels),
            "training_curves.png": training_curves_png(history),
            "metrics.json": json.dumps({"validation": report, "history": history}, indent=2).encode(),
        }
        export_path = export_classifier(
            model, labels, config.output_dir, config.name, extra_files=extra,
            info={"validation": {k: report[k] for k in ("accuracy", "macro_f1", "examples")}},
        )
    return TrainResult(model, history, report, labels, export_path, run_dir)
