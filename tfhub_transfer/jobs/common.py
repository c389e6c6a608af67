"""What every training job does around the loop: announce the run, save it, export it."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.files import replace_file
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.training.distribution import describe, global_batch_size, is_chief
from tfhub_transfer.training.plots import confusion_matrix_png, training_curves_png


@dataclasses.dataclass
class TrainResult:
    model: TaskModel
    history: dict[str, list[float]]
    metrics: dict
    label_names: list[str]
    export_path: Path | None
    run_dir: Path


def announce(config: TrainConfig, model: TaskModel, n_train: int, n_valid: int, labels: list[str],
             strategy: tf.distribute.Strategy) -> None:
    if config.verbose:
        what = model.spec.name if model.spec is not None else model.name
        print(f"Training {what} ({config.resolved_architecture()}, mode {model.mode}) on {n_train} examples, "
              f"validating on {n_valid}; classes {labels}; {describe(strategy)}, global batch "
              f"{global_batch_size(config.batch_size, strategy)}", flush=True)


def finish(model: TaskModel, config: TrainConfig, labels: list[str], history: dict, report: dict,
           strategy: tf.distribute.Strategy) -> TrainResult:
    """Saves the run (chief only) and exports; returns the result."""
    chief = is_chief(strategy)
    if chief:
        model.save(config.run_dir, overwrite=True)
        record = json.dumps({"validation": report, "history": history}, indent=2).encode("utf-8")
        replace_file(config.run_dir / "metrics.json", lambda handle: handle.write(record))
    export_path = export_run(model, config, history, report, chief) if config.export else None
    return TrainResult(model, history, report, labels, export_path, config.run_dir)


def export_run(model: TaskModel, config: TrainConfig, history: dict, report: dict, chief: bool) -> Path | None:
    """Exports on the chief; other workers take part in the save (collectives) into a temp dir."""
    extra = {
        "training_curves.png": training_curves_png(history),
        "metrics.json": json.dumps({"validation": report, "history": history}, indent=2).encode(),
    }
    if "confusion_matrix" in report:
        extra["confusion_matrix.png"] = confusion_matrix_png(report["confusion_matrix"], model.label_names)
    headline = {k: v for k, v in report.items() if isinstance(v, (int, float))}
    scratch = None if chief else tempfile.mkdtemp(prefix="tfhub_transfer_worker_export_")
    options = {"extra_files": extra, "info": {"validation": headline}}
    if report.get("thresholds"):
        options["thresholds"] = report["thresholds"]
    try:
        path = model.export(scratch or config.output_dir, config.name, **options)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return path if chief else None


