"""The one training loop: every job (train, tag, cached training, compare, study, pretrain) fits here.

`fit_task(model, train, valid, optimization, runtime, run_dir)` works on any task model
(see models.base.TaskModel) through four of its methods: `training_stream` (the resumable
batches of an epoch range), `evaluation_dataset`, `compile` and `fit`. So each option —
optimizer, schedule, warmup, weight decay, epochs, batch size, length buckets, steps per
execution, XLA, distribution strategy, backups / resume, best-epoch restore, the NaN stop —
works for every task, or the task refuses it here with one clear error (`unsupported`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer import storage
from tfhub_transfer.config import OptimizationConfig, RuntimeConfig, differs, field_default
from tfhub_transfer.config import flag as flag_of
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.budget import StepBudget, resolve_epochs, validation_every
from tfhub_transfer.training.callbacks import (
    TENSORBOARD_DIR,
    EarlyStopping,
    LineProgress,
    RestoreBestWeights,
    SpeedMeter,
    TensorBoardLog,
    interactive_output,
)
from tfhub_transfer.training.distribution import global_batch_size, is_chief, is_multi_worker
from tfhub_transfer.training.fault_tolerance import (
    BACKUP_DIR,
    DivergenceGuard,
    HistoryLog,
    ResumableBackup,
    ResumePoint,
    prepare_backup,
    remove_finished_backup,
)
from tfhub_transfer.training.weighting import sample_weighting


@dataclasses.dataclass
class FitOutcome:
    """What a fit produced: Keras' history, the model's outputs on the validation set, the time it took,
    and its speed (`SpeedMeter.summary()`: wall time, steady train examples/s, peak memory, per epoch)."""

    history: dict[str, list[float]]
    valid_outputs: np.ndarray | list | None
    seconds: float
    best_epoch: int | None = None
    speed: dict | None = None
    stopped: str | None = None  # why training stopped before its epochs ran out (--max-steps, --time-budget)
    epochs: int | None = None  # the epochs it was given (`--epochs auto` resolved)


def check_supported(model, optimization: OptimizationConfig, runtime: RuntimeConfig, job: str) -> None:
    """Refuses, naming the flag and the job, any option set away from its default that `model` cannot honour."""
    for option, reason in getattr(model, "unsupported", {}).items():
        value = getattr(optimization, option, getattr(runtime, option, None))
        if differs(value, field_default(option)):
            raise ConfigError(f"{flag_of(option)} does not apply to {job}: {reason}")


def steps_per_epoch(examples: int, batch: int, whole_batches: bool) -> int:
    """Batches per epoch; with several replicas only whole global batches (a short one splits unevenly)."""
    if not whole_batches:
        return max(1, math.ceil(examples / batch))
    if examples < batch:
        raise ConfigError(f"{examples} training examples do not fill one global batch of {batch} "
                          "(per-replica batch x replicas); lower --batch-size")
    return examples // batch


def inputs_only(inputs, *_):
    """A dataset element's model inputs (a named function: AutoGraph cannot read `lambda x, *_: x`)."""
    return inputs


def predict_outputs(model, dataset: tf.data.Dataset) -> np.ndarray:
    """The model's outputs on every batch of `dataset`, in order, on this process.

    Under a multi-worker strategy `predict` would shard the data across workers, so
    each worker runs the (replicated) model on all of it instead.
    """
    inputs = dataset.map(inputs_only)
    if not is_multi_worker(model.distribute_strategy):
        return model.predict(inputs, verbose=0)
    call = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return np.concatenate([call(x).numpy() for x in inputs])


def training_batches(model, train, batch: int, epochs: int, runtime: RuntimeConfig, class_weight=None,
                     start: ResumePoint | None = None, shuffle: bool = True) -> tf.data.Dataset:
    """The model's training stream of `epochs` epochs (from `start`), with one weight per example when
    `train` has weights or `class_weight` is set (see training.weighting)."""
    strategy = model.distribute_strategy
    on_tpu = isinstance(strategy, tf.distribute.TPUStrategy)
    whole = strategy.num_replicas_in_sync > 1 or on_tpu
    weighting = sample_weighting(model, train, class_weight)
    if getattr(train, "streamed", False):  # streamed files are sharded by worker: a resume skips per worker
        workers = strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)
        train = dataclasses.replace(train, workers=workers)
    dataset = model.training_stream(weighting.indexed(train) if weighting else train, batch, epochs, runtime.seed,
                                    start or ResumePoint(), runtime.bucket and not on_tpu, whole, on_tpu,
                                    shuffle=shuffle)
    return weighting.apply(dataset) if weighting else dataset  # (inputs, targets, weights) when weighted


def fit_task(model, train, valid, optimization: OptimizationConfig, runtime: RuntimeConfig,
             run_dir: str | Path | None = None, job: str = "this task", shuffle: bool = True,
             extra_callbacks: tuple = (), log_dir: str | Path | None = None) -> FitOutcome:
    """Compiles and fits `model` on `train` (validating on `valid`) under its distribution strategy.

    `optimization.batch_size` is per replica. With a `run_dir` and `runtime.backup_every_steps`,
    the state is backed up into `run_dir/backup` and an interrupted run there is resumed
    (see `runtime.resume`); the backup is removed when the fit ends. With `runtime.tensorboard`,
    TensorBoard logs go to a new `<start time>` folder in `log_dir` (default `run_dir/tensorboard`).
    On a terminal Keras draws its progress bar; otherwise (a log file) a line per epoch is printed.
    """
    check_supported(model, optimization, runtime, job)
    strategy = model.distribute_strategy
    batch = global_batch_size(optimization.batch_size, strategy)
    on_tpu = isinstance(strategy, tf.distribute.TPUStrategy)
    whole = strategy.num_replicas_in_sync > 1 or on_tpu
    steps = steps_per_epoch(len(train), batch, whole)
    epochs = resolve_epochs(optimization.epochs, len(train), batch)
    optimization = dataclasses.replace(optimization, epochs=epochs)
    total_steps = steps * epochs if optimization.max_steps is None else min(steps * epochs, optimization.max_steps)
    chief = is_chief(strategy)
    backup_dir = storage.join(run_dir, BACKUP_DIR) if run_dir is not None else None
    backups = backup_dir is not None and runtime.backup_every_steps > 0
    for option, flag in (("resume", "--resume"), ("keep_backups", "--keep-backups")):
        if getattr(runtime, option) and not backups:
            raise ConfigError(f"{flag} does not apply to {job}: it keeps no backups (set --backup-every > 0)")
    fingerprint = run_fingerprint(model, train, optimization) if backups else None
    start = prepare_backup(backup_dir, steps, runtime.resume, chief, fingerprint) if backups else ResumePoint()
    train_ds = training_batches(model, train, batch, optimization.epochs, runtime, optimization.class_weight,
                                start, shuffle)
    valid_ds = model.evaluation_dataset(valid, batch) if valid is not None else None
    rate = optimization.learning_rate or model.default_learning_rate()
    model.compile(optimization.optimizer, learning_rate=rate, schedule=optimization.schedule,
                  warmup_fraction=optimization.warmup_fraction, weight_decay=optimization.weight_decay,
                  total_steps=total_steps, steps_per_execution=runtime.steps_per_execution,
                  jit_compile=runtime.jit_compile, **head_rates(model, optimization))
    log = HistoryLog(backup_dir, write=chief) if backups else None
    callbacks = [ResumableBackup(backup_dir, runtime.backup_every_steps, rate, keep=runtime.keep_backups), log] \
        if backups else [DivergenceGuard(rate)]
    best = None
    if optimization.early_stopping and valid_ds is None:
        raise ConfigError(f"--early-stopping does not apply to {job}: it has no validation data to watch")
    if valid_ds is not None and (runtime.restore_best or optimization.early_stopping):
        watch = (model.objective.monitor, model.objective.monitor_mode,
                 storage.join(backup_dir, "best_weights.npz") if backups else None)
        best = (EarlyStopping(optimization.early_stopping, *watch, write=chief) if optimization.early_stopping
                else RestoreBestWeights(*watch, write=chief))
        callbacks.append(best)
    meter = SpeedMeter(batch, len(train))
    callbacks += [meter, *_report_callbacks(runtime, meter, optimization.epochs, batch, chief, run_dir, log_dir)]
    budget = StepBudget(optimization.max_steps, runtime.time_budget)
    callbacks += [budget, *runtime.callbacks, *extra_callbacks]
    keras_bar = runtime.verbose and interactive_output()
    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=valid_ds, epochs=optimization.epochs, steps_per_epoch=steps,
                        callbacks=callbacks, verbose=runtime.verbose if keras_bar else 0,
                        validation_freq=1 if optimization.early_stopping else validation_every(optimization.epochs))
    seconds = time.perf_counter() - started
    logs = log.merged() if log else {k: [float(v) for v in vals] for k, vals in history.history.items()}
    if backups and chief and not runtime.keep_backups:
        remove_finished_backup(backup_dir)
    outputs = model.outputs_on(valid_ds) if valid_ds is not None else None
    return FitOutcome(logs, outputs, seconds, best.best_epoch if best else None,
                      {**meter.summary(), "train_seconds": round(seconds, 3)}, budget.stopped, optimization.epochs)


def head_rates(model, optimization: OptimizationConfig) -> dict:
    """The head's learning-rate options for `compile`, for models with a new head on a pretrained encoder."""
    if not getattr(model, "new_head", False):
        return {}
    return {"head_learning_rate": optimization.head_learning_rate,
            "head_lr_multiplier": optimization.head_lr_multiplier}


def _report_callbacks(runtime: RuntimeConfig, meter: SpeedMeter, epochs: int, batch: int, chief: bool,
                      run_dir, log_dir) -> list:
    """A line per epoch when stdout is not a terminal; TensorBoard logs (chief only)."""
    reports = []
    if runtime.verbose and not interactive_output():
        reports.append(LineProgress(epochs, meter, write=chief))
    board_root = log_dir if log_dir is not None else (storage.join(run_dir, TENSORBOARD_DIR) if run_dir else None)
    if runtime.tensorboard and board_root is not None and chief:
        reports.append(TensorBoardLog(TensorBoardLog.fresh_dir(board_root), meter, batch_size=batch))
    return reports


def _digest(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            digest.update(np.ascontiguousarray(part).tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8"))
    return digest.hexdigest()[:16]


def run_fingerprint(model, train, optimization: OptimizationConfig) -> dict:
    """What defines a run, for telling its backup from another run's: the model (encoder, task, mode,
    sequence length, label names), the training data (size and content) and the optimisation options."""
    if hasattr(train, "texts"):
        weights = [train.weights] if getattr(train, "weights", None) is not None else []  # --weight-column
        data = _digest(train.texts, train.texts_b, train.targets, *weights)
    elif hasattr(train, "words"):
        data = _digest(train.words, train.tags)
    else:
        data = _digest(len(train))
    return {"model": _digest(model.get_config()), "data": data, "examples": len(train),
            "options": _digest(dataclasses.asdict(optimization))}
