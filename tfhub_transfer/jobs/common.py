"""What every training job does around the loop: announce the run, save it, export it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.files import replace_file
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.models.saving import share_export_weights
from tfhub_transfer.training.callbacks import TENSORBOARD_DIR, describe_speed
from tfhub_transfer.training.distribution import describe, global_batch_size, is_chief
from tfhub_transfer.training.fault_tolerance import BACKUP_DIR
from tfhub_transfer.training.plots import confusion_matrix_png, training_curves_png

KEPT_IN_RUN = (TENSORBOARD_DIR, BACKUP_DIR)  # what the fit wrote into the run directory and saving keeps


@dataclasses.dataclass
class TrainResult:
    model: TaskModel
    history: dict[str, list[float]]
    metrics: dict
    label_names: list[str]
    export_path: Path | None
    run_dir: Path
    speed: dict | None = None  # training wall time, steady examples/s, peak memory (training.loop.FitOutcome)


def announce(config: TrainConfig, model: TaskModel, n_train: int, n_valid: int, labels: list[str],
             strategy: tf.distribute.Strategy) -> None:
    """The one-line header; printed also with --quiet (verbose 0), which only drops the progress."""
    what = model.spec.name if model.spec is not None else model.name
    print(f"Training {what} ({config.resolved_architecture()}, mode {model.mode}) on {n_train} examples, "
          f"validating on {n_valid}; classes {labels}; {describe(strategy)}, global batch "
          f"{global_batch_size(config.batch_size, strategy)}", flush=True)


def run_record(report: dict, history: dict, speed: dict | None) -> bytes:
    """metrics.json: the validation report, the per-epoch history and the training speed."""
    record = {"validation": report, "history": history}
    if speed is not None:
        record["speed"] = speed
    return json.dumps(record, indent=2).encode("utf-8")


def finish(model: TaskModel, config: TrainConfig, labels: list[str], history: dict, report: dict,
           strategy: tf.distribute.Strategy, speed: dict | None = None) -> TrainResult:
    """Saves the run (chief only) with its metrics and speed, prints the speed, and exports; returns the result."""
    chief = is_chief(strategy)
    if chief:
        save_run(model, config.run_dir)
        record = run_record(report, history, speed)
        replace_file(config.run_dir / "metrics.json", lambda handle: handle.write(record))
        if speed:
            print(describe_speed(speed), flush=True)
    export_path = export_run(model, config, history, report, chief, speed) if config.export else None
    if chief and export_path is not None:
        share_export_weights(model, config.run_dir, export_path)  # one copy of the weights on disk, not two
    return TrainResult(model, history, report, labels, export_path, config.run_dir, speed)


def save_run(model: TaskModel, run_dir: Path) -> None:
    """Saves the model into `run_dir` (replaced atomically) and keeps the TensorBoard logs written there
    (and the backup, with --keep-backups)."""
    # Named as this process's temporaries, so a crash in between leaves nothing behind for good.
    aside = {name: run_dir.parent / f".{run_dir.name}.tmp-{os.getpid()}-{name}"
             for name in KEPT_IN_RUN if (run_dir / name).is_dir()}
    for name, place in aside.items():
        os.rename(run_dir / name, place)
    try:
        model.save(run_dir, overwrite=True)
    finally:
        for name, place in aside.items():
            os.rename(place, run_dir / name)  # into the new run directory, or back into the old one


def export_run(model: TaskModel, config: TrainConfig, history: dict, report: dict, chief: bool,
               speed: dict | None = None) -> Path | None:
    """Exports on the chief; other workers take part in the save (collectives) into a temp dir."""
    extra = {
        "training_curves.png": training_curves_png(history),
        "metrics.json": run_record(report, history, speed),
    }
    if "confusion_matrix" in report:
        extra["confusion_matrix.png"] = confusion_matrix_png(report["confusion_matrix"], model.label_names,
                                                             split="validation")
    headline = {k: v for k, v in report.items() if isinstance(v, (int, float))}
    scratch = None if chief else tempfile.mkdtemp(prefix="tfhub_transfer_worker_export_")
    options = {"extra_files": extra, "info": {"validation": headline}}
    if config.export_format != "saved_model" or config.quantize:
        options.update(format=config.export_format, quantize=config.quantize)
    if report.get("thresholds"):
        options["thresholds"] = report["thresholds"]
    try:
        path = model.export(scratch or config.output_dir, config.name, **options)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return path if chief else None


