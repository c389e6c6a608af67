"""Surviving faults during `fit`: periodic backups, exact resume, and a stop on NaN.

Backups are tf_keras `BackupAndRestore` checkpoints (model, optimizers, epoch and
step counters) in `RUN_DIR/backup`, written every `backup_every_steps` steps. A
run started in the same output directory resumes from them automatically. Keras
restarts the epoch's counters but not its data, so the training dataset is built to
start at the saved (epoch, step) itself (see `make_training_dataset`).

Only the newest checkpoint is kept (the one before it is deleted once the new one is
complete), beside one `best_weights.npz` (training.callbacks.RestoreBestWeights) and
the epochs' logs. The whole backup is deleted when the run finishes, unless
`keep_backups`: then it ends with a last checkpoint of the finished state.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import shutil
import sys
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError, TrainingDiverged
from tfhub_transfer.files import disk_full_error, replace_file

BACKUP_DIR = "backup"
FINGERPRINT = "run_fingerprint.json"
HISTORY = "history.json"
_EPOCH_KEY = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
_BATCH_KEY = "ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE"


@dataclasses.dataclass(frozen=True)
class ResumePoint:
    """Where a run continues: the first epoch and the first step in it still to train."""

    epoch: int = 0
    step: int = 0


def read_resume_point(backup_dir: str | Path, steps_per_epoch: int) -> ResumePoint | None:
    """The point after the newest backup in `backup_dir`, or None when there is none.

    Follows the rule `BackupAndRestore` itself applies, so the data stream and
    Keras' counters agree.
    """
    latest = tf.train.latest_checkpoint(str(Path(backup_dir) / "chief"))
    if latest is None:
        return None
    reader = tf.train.load_checkpoint(latest)
    epoch, batch = int(reader.get_tensor(_EPOCH_KEY)), int(reader.get_tensor(_BATCH_KEY))
    if batch < 0:
        return ResumePoint(max(epoch, 0), 0)
    if batch >= steps_per_epoch - 1:
        return ResumePoint(epoch + 1, 0)
    return ResumePoint(epoch, batch + 1)


def prepare_backup(backup_dir: str | Path, steps_per_epoch: int, resume: bool | None,
                   chief: bool = True, fingerprint: dict | None = None) -> ResumePoint:
    """Applies the resume choice: None = resume if a backup of this same run exists, True = must,
    False = start over.

    `fingerprint` says what defines the run (model and labels, data, options); a backup made
    by a different run is not resumed silently. Only the chief (`chief=True`) deletes or
    writes; other workers just read.
    """
    backup_dir = Path(backup_dir)
    if resume is False and chief and backup_dir.exists():
        shutil.rmtree(backup_dir)
    if chief:
        for stale in (backup_dir / "chief").glob("*_temp*"):  # a checkpoint cut short (crash, full disk)
            shutil.rmtree(stale, ignore_errors=True)
    point = read_resume_point(backup_dir, steps_per_epoch)
    if point is None:
        if resume is True:
            raise ConfigError(
                f"--resume: there is no backup to resume from in {backup_dir}; it is written "
                "during training and removed when a run finishes. Run without --resume to start."
            )
        if chief and backup_dir.exists():
            shutil.rmtree(backup_dir)  # leftovers from a run that never saved a checkpoint
        if chief and fingerprint is not None:
            backup_dir.mkdir(parents=True, exist_ok=True)
            (backup_dir / FINGERPRINT).write_text(json.dumps(fingerprint, indent=2), encoding="utf-8")
        return ResumePoint()
    _check_same_run(backup_dir, fingerprint, resume)
    # Printed even when quiet: silently continuing an old run would surprise.
    print(f"Resuming from the backup in {backup_dir}: epoch {point.epoch + 1}, step {point.step + 1} "
          "(--no-resume starts over)", file=sys.stderr, flush=True)
    return point


def _check_same_run(backup_dir: Path, fingerprint: dict | None, resume: bool | None) -> None:
    if fingerprint is None:
        return
    try:
        saved = json.loads((backup_dir / FINGERPRINT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        saved = {}
    differing = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
    if not differing:
        return
    if resume is True:
        print(f"--resume: continuing the backup in {backup_dir} although its {', '.join(differing)} differ "
              "from this run's", file=sys.stderr, flush=True)
        return
    raise ConfigError(
        f"{backup_dir} holds the backup of a different run (its {', '.join(differing)} differ from this one's). "
        "Pass --no-resume to discard it and start this run, --resume to continue that backup anyway, or "
        "choose another --name."
    )


class HistoryLog(tf_keras.callbacks.Callback):
    """Keeps each epoch's logs in the backup directory, so a resumed run reports its whole history."""

    def __init__(self, backup_dir: str | Path, write: bool = True):
        super().__init__()
        self.path = Path(backup_dir) / HISTORY
        self.write = write
        self.epochs: dict[int, dict] = {}

    def on_train_begin(self, logs=None):
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            self.epochs = {int(k): v for k, v in saved.items()}
        except (OSError, ValueError):
            self.epochs = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        if self.write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps(self.epochs).encode("utf-8")
            replace_file(self.path, lambda handle: handle.write(text))

    def merged(self) -> dict[str, list[float]]:
        """Every epoch's logs, before and after a resume, as Keras' History.history."""
        keys = sorted({k for logs in self.epochs.values() for k in logs})
        ordered = [self.epochs[e] for e in sorted(self.epochs)]
        return {k: [logs[k] for logs in ordered if k in logs] for k in keys}


def weights_are_finite(model: tf_keras.Model) -> bool:
    return all(bool(tf.reduce_all(tf.math.is_finite(w))) for w in model.weights
               if w.dtype.is_floating)


class ResumableBackup(tf_keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` every N steps that never backs up a diverged model and stops on NaN loss.

    A non-finite loss (or non-finite weights at a backup) raises `TrainingDiverged`;
    the newest backup, taken while everything was finite, stays on disk for `--resume`.
    With `keep=True` the backup is not deleted when training ends: a last one holds the
    finished state (a later run resumes it as done; `--no-resume` starts over).
    """

    def __init__(self, backup_dir: str | Path, every_steps: int, learning_rate: float | None = None,
                 keep: bool = False):
        super().__init__(str(backup_dir), save_freq=every_steps, delete_checkpoint=not keep)
        self.learning_rate = learning_rate
        self.keep = keep
        self.last_saved: tuple[int, int] | None = None
        self.last_batch: int | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged(f"the loss became {float(loss)}", batch)
        self.last_batch = batch
        super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        if self.keep and self.last_batch is not None and self.last_saved != (self._current_epoch, self.last_batch):
            self._backup(self._current_epoch, self.last_batch)  # the finished state, not the last periodic one
        super().on_train_end(logs)

    def _backup(self, epoch, batch=0):
        if not weights_are_finite(self.model):
            self._diverged("the weights stopped being finite", batch)
        try:
            super()._backup(epoch, batch)
        except (OSError, tf.errors.OpError) as err:
            if getattr(err, "errno", None) == errno.ENOSPC or "No space left" in str(err):
                raise disk_full_error(Path(self.backup_dir)) from None
            raise
        self.last_saved = (epoch, batch)

    def _diverged(self, what: str, batch: int) -> None:
        self.model.stop_training = True
        kept = (f"the last good backup (epoch {self.last_saved[0] + 1}, step {self.last_saved[1] + 1}) "
                f"is kept in {self.backup_dir}" if self.last_saved else
                f"no backup had been written yet in {self.backup_dir}")
        rate = f" (peak was {self.learning_rate:g})" if self.learning_rate else ""
        raise TrainingDiverged(
            f"training stopped: {what} at epoch {self._current_epoch + 1}, step {batch + 1}; {kept}. "
            f"Lower the learning rate{rate} or check the inputs and labels for extreme values, then "
            "run again: the same output directory resumes from the backup (--no-resume starts over)."
        )


class DivergenceGuard(tf_keras.callbacks.Callback):
    """Stops on a non-finite loss when no backups are taken (`ResumableBackup` does it otherwise)."""

    def __init__(self, learning_rate: float | None = None):
        super().__init__()
        self.learning_rate = learning_rate
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            rate = f" (peak was {self.learning_rate:g})" if self.learning_rate else ""
            raise TrainingDiverged(
                f"training stopped: the loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}. "
                f"Lower the learning rate{rate} or check the inputs and labels for extreme values.")
