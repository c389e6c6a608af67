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

Only what this package wrote is ever deleted (`discard_backup`): a backup directory that
holds anyone else's file is refused, not emptied. `interruptible` turns SIGTERM (as SIGINT
already is) into one message saying that rerunning the same command resumes from the backup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import re
import shutil
import signal
import sys
import threading
from pathlib import Path, PurePath, PurePosixPath

import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError, TrainingDiverged
from tfhub_transfer.files import disk_full_error, is_temporary, replace_file

BACKUP_DIR = "backup"
FINGERPRINT = "run_fingerprint.json"
HISTORY = "history.json"
_EPOCH_KEY = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
_BATCH_KEY = "ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE"
BEST_WEIGHTS = "best_weights.npz"  # training.callbacks.RestoreBestWeights
# Keras' BackupAndRestore writes the chief's checkpoints in `chief/`, other workers' in `workertemp_N/`.
_CHECKPOINT_DIRS = re.compile(r"^(?:chief|workertemp_\d+)$")


def backup_foreign_files(backup_dir: str | Path) -> list[Path]:
    """The files (and links) under `backup_dir` this package did not write; [] when there is none.

    Args:
        backup_dir: a run's backup directory (`RUN_DIR/backup`).

    Returns:
        The paths of everything that is not a checkpoint, fingerprint, history, best weights
        or one of our temporaries, in sorted order.

    Example:
        >>> backup_foreign_files("saved_models/classifier/run/backup")
        []
    """
    if storage.is_url(backup_dir):  # an object store has no links: only the names tell
        if storage.isfile(backup_dir):
            return [backup_dir]
        names = storage.walk_files(backup_dir) if storage.isdir(backup_dir) else []
        return [storage.join(backup_dir, *name.split("/")) for name in names
                if not _ours_in_backup(PurePosixPath(name), None)]
    backup_dir = Path(backup_dir)
    if backup_dir.is_symlink() or (backup_dir.exists() and not backup_dir.is_dir()):
        return [backup_dir]
    foreign = []
    for root, dirs, files in os.walk(backup_dir):
        relative = Path(root).relative_to(backup_dir)
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            if not _ours_in_backup(relative / name, Path(root, name)):
                foreign.append(Path(root, name))
    return sorted(foreign)


def _ours_in_backup(relative: PurePath, path: Path | None) -> bool:
    if path is not None and path.is_symlink():
        return False  # never written by us; deleting through it could reach anything
    if is_temporary(relative.name):
        return True
    if len(relative.parts) == 1:
        return relative.name in (FINGERPRINT, HISTORY, BEST_WEIGHTS)
    return bool(_CHECKPOINT_DIRS.match(relative.parts[0]))


def discard_backup(backup_dir: str | Path, what: str = "--name") -> None:
    """Deletes a backup directory, refusing (before deleting anything) when it holds a file that is not ours.

    Args:
        backup_dir: the run's backup directory.
        what: the option a user changes to train elsewhere (`--name` for the CLI).

    Example:
        >>> discard_backup("saved_models/classifier/run/backup")
    """
    backup_dir = storage.location(backup_dir)  # local, or a URL (gs://) kept as its string
    foreign = backup_foreign_files(backup_dir)
    if foreign:
        raise ConfigError(
            f"{backup_dir} holds {_listed(foreign)}, which tfhub_transfer did not write; it deletes only its own "
            f"backups there. Move {'it' if len(foreign) == 1 else 'them'} elsewhere, or choose another {what}."
        )
    if storage.exists(backup_dir):
        if storage.is_url(backup_dir):
            storage.rmtree(backup_dir)
        else:
            shutil.rmtree(backup_dir)


def remove_finished_backup(backup_dir: str | Path) -> list[Path]:
    """After a finished fit: deletes the backup when it holds only our files, else leaves it (a file a user
    put there during training must not be lost, and the trained model must not be either). Returns what
    was left behind because it is not ours ([] when the backup is gone).
    """
    foreign = backup_foreign_files(backup_dir)
    if foreign:
        print(f"kept {backup_dir}: it holds {_listed(foreign)}, which tfhub_transfer did not write",
              file=sys.stderr, flush=True)
        return foreign
    discard_backup(backup_dir)
    return []


def _listed(paths: list[Path], shown: int = 3) -> str:
    names = ", ".join(str(p) for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")


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
    latest = tf.train.latest_checkpoint(str(storage.join(backup_dir, "chief")))
    if latest is None:
        return None
    # The prefix read directly: load_checkpoint first asks isdir(prefix), which ram:// answers yes for ckpt-N.
    reader = tf.compat.v1.train.NewCheckpointReader(latest)
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
    backup_dir = storage.location(backup_dir)  # local, or a URL: tf.train checkpoints write to gs:// natively
    if resume is False and chief and storage.exists(backup_dir):
        discard_backup(backup_dir)
    if chief:
        for stale in storage.glob(storage.join(backup_dir, "chief", "*_temp*")):  # a checkpoint cut short
            storage.rmtree(stale)
    point = read_resume_point(backup_dir, steps_per_epoch)
    if point is None:
        if resume is True:
            raise ConfigError(
                f"--resume: there is no backup to resume from in {backup_dir}; it is written "
                "during training and removed when a run finishes. Run without --resume to start."
            )
        if chief and storage.exists(backup_dir):
            discard_backup(backup_dir)  # leftovers from a run that never saved a checkpoint
        if chief and fingerprint is not None:
            storage.makedirs(backup_dir)
            storage.write_text(storage.join(backup_dir, FINGERPRINT), json.dumps(fingerprint, indent=2))
        return ResumePoint()
    _check_same_run(backup_dir, fingerprint, resume)
    # Printed even when quiet: silently continuing an old run would surprise.
    print(f"Resuming from the backup in {backup_dir}: epoch {point.epoch + 1}, step {point.step + 1} "
          "(--no-resume starts over)", file=sys.stderr, flush=True)
    return point


def _check_same_run(backup_dir: storage.Location, fingerprint: dict | None, resume: bool | None) -> None:
    if fingerprint is None:
        return
    try:
        saved = json.loads(storage.read_text(storage.join(backup_dir, FINGERPRINT)))
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
        self.path = storage.join(backup_dir, HISTORY)  # local, or a URL
        self.write = write
        self.epochs: dict[int, dict] = {}

    def on_train_begin(self, logs=None):
        try:
            saved = json.loads(storage.read_text(self.path))
            self.epochs = {int(k): v for k, v in saved.items()}
        except (OSError, ValueError):
            self.epochs = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epochs[epoch] = {k: float(v) for k, v in (logs or {}).items()}
        if self.write:
            storage.makedirs(storage.parent(self.path))
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
                raise disk_full_error(storage.location(self.backup_dir)) from None
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


class Interrupted(KeyboardInterrupt):
    """Training stopped by SIGINT (Ctrl-C) or SIGTERM, with what a rerun does; `exit_code` is 130 or 143."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the main thread is (as Python raises KeyboardInterrupt for SIGINT)."""


@contextlib.contextmanager
def interruptible(backup_dir: str | Path | None):
    """`with interruptible(backup_dir):` SIGINT or SIGTERM inside ends in one `Interrupted` saying whether
    running the same command again resumes from the backup in `backup_dir`.

    Args:
        backup_dir: the run's backup directory (None when the job keeps no backups).

    Example:
        >>> with interruptible("saved_models/classifier/run/backup"):
        ...     pass
    """
    installed = threading.current_thread() is threading.main_thread()  # handlers live in the main thread only
    if installed:
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    except Interrupted:
        raise
    except KeyboardInterrupt as err:
        terminated = isinstance(err, _Terminated)
        raise Interrupted(interrupted_message(backup_dir, "SIGTERM" if terminated else "SIGINT"),
                          143 if terminated else 130) from None
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def interrupted_message(backup_dir: str | Path | None, signal_name: str) -> str:
    """What an interrupted run left and what running it again does."""
    if backup_dir is not None and tf.train.latest_checkpoint(str(storage.join(backup_dir, "chief"))) is not None:
        return (f"interrupted ({signal_name}); the newest backup is kept in {backup_dir}: run the same command "
                "again to resume from it (--no-resume starts over)")
    return (f"interrupted ({signal_name}); no backup had been written yet (see --backup-every), so running "
            "the same command again starts over")
