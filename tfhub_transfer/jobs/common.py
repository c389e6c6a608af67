"""What every training job does around the loop: check where it writes, announce the run, save it, export it.

Before training, `check_output` refuses what would lose or misplace a user's files: an
`OUT/NAME` or `OUT/NAME/run` that is a symbolic link (never followed out of --out) or a file, and a run
directory holding anything this package did not write. A finished run is a model: `keep_finished_run`
moves it to `OUT/NAME/run.N` before a new run takes `OUT/NAME/run`, so it is never replaced.

--out may be a URL (gs://, and s3:// or hdfs:// with tensorflow-io): the run is written there through
`tfhub_transfer.storage` and, having no atomic rename, published with a `_COMPLETE` marker written last.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import tensorflow as tf

from tfhub_transfer import storage
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import MARKER, check_writable, is_temporary, refuse_url, replace_file
from tfhub_transfer.models.base import MODEL_FILE, WEIGHTS_FILE, TaskModel
from tfhub_transfer.models.saving import EXPORT_WEIGHTS_FILE, share_export_weights
from tfhub_transfer.storage import is_url
from tfhub_transfer.training.callbacks import TENSORBOARD_DIR, describe_speed
from tfhub_transfer.training.distribution import describe, global_batch_size, is_chief
from tfhub_transfer.training.fault_tolerance import BACKUP_DIR, backup_foreign_files
from tfhub_transfer.training.plots import confusion_matrix_png, training_curves_png

KEPT_IN_RUN = (TENSORBOARD_DIR, BACKUP_DIR)  # what the fit wrote into the run directory and saving keeps
RUN_FILES = (MARKER, MODEL_FILE, WEIGHTS_FILE, EXPORT_WEIGHTS_FILE, "metrics.json")  # save_run + finish
_EVENTS = "events.out.tfevents."  # TensorBoard's event files


def check_output(config: TrainConfig) -> None:
    """Refuses, before anything is written or trained, an --out or run directory that would lose a user's files.

    Args:
        config: the training config (its `output_dir`, `name` and `run_dir`).

    Example:
        >>> check_output(TrainConfig.of(train="train.tsv", output_dir="saved_models"))
    """
    if is_url(config.output_dir) and isinstance(config.run_dir, Path):
        # The run directory came back through pathlib (gs://b -> gs:/b): training would write a local gs:/.
        refuse_url(config.output_dir, "--out", "this version writes the training run through local paths; train "
                   "into a local --out and copy the export, or export to the URL with model.export(URL, NAME)")
    remote = is_url(config.output_dir)
    if remote:
        check_writable(config.output_dir)  # first: a bucket that cannot be reached is one error naming --out
    check_run_dir(storage.join(config.output_dir, config.name), config.run_dir)
    if not remote:
        check_writable(config.output_dir)


def check_run_dir(model_dir: storage.Location, run_dir: storage.Location) -> None:
    """`model_dir` (OUT/NAME) and `run_dir` (OUT/NAME/run) are real directories or absent, and `run_dir`
    holds only what a run writes (its model, metrics, TensorBoard logs and backup)."""
    for place in (model_dir, run_dir):
        if not is_url(place) and place.is_symlink():
            raise ConfigError(f"{place} is a symbolic link (to {os.readlink(place)}); tfhub_transfer never "
                              "follows a link out of --out: remove the link, or choose another --name")
        if storage.exists(place) and not storage.isdir(place):
            raise ConfigError(f"{place} is a file, where the run's directory goes; move it, or choose another "
                              "--name")
    try:
        foreign = run_foreign_files(run_dir)
    except OSError as err:
        raise ConfigError(f"{run_dir} cannot be read ({err.strerror}); fix its permissions, or choose another "
                          "--name") from None
    if foreign:
        shown = ", ".join(str(p) for p in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ConfigError(
            f"{run_dir} holds {shown}, which tfhub_transfer did not write; it keeps the run's own files there "
            f"and replaces them when a run finishes, so it does not train into it. Move "
            f"{'that' if len(foreign) == 1 else 'those'} elsewhere, or choose another --name.")


def run_foreign_files(run_dir: Path) -> list[Path]:
    """Everything in `run_dir` a run did not write (links included, never followed); [] when absent.

    Args:
        run_dir: a run directory (`OUT/NAME/run`).

    Returns:
        The paths, sorted.

    Example:
        >>> run_foreign_files(Path("saved_models/classifier/run"))
        []
    """
    if is_url(run_dir):
        return _url_run_foreign_files(run_dir)
    if not run_dir.is_dir() or run_dir.is_symlink():
        return []
    foreign = []
    for entry in sorted(run_dir.iterdir()):
        if entry.is_symlink():
            foreign.append(entry)
        elif entry.name == BACKUP_DIR and entry.is_dir():
            foreign += backup_foreign_files(entry)
        elif entry.name == TENSORBOARD_DIR and entry.is_dir():
            foreign += _foreign_logs(entry)
        elif not (is_temporary(entry.name) or (entry.name in RUN_FILES and entry.is_file())):
            foreign.append(entry)
    return foreign


def _url_run_foreign_files(run_dir: str) -> list[str]:
    """`run_foreign_files` on an object store: names only (there are no links)."""
    if not storage.isdir(run_dir):
        return []
    foreign = []
    for name in storage.walk_files(run_dir):
        top, _, rest = name.partition("/")
        if top == BACKUP_DIR and rest:
            continue  # checked as a whole below
        board_file = top == TENSORBOARD_DIR and rest and rest.rsplit("/", 1)[-1].startswith(_EVENTS)
        if not (board_file or is_temporary(top) or (top in (*RUN_FILES, storage.COMPLETE) and not rest)):
            foreign.append(storage.join(run_dir, *name.split("/")))
    if storage.isdir(storage.join(run_dir, BACKUP_DIR)):
        foreign += backup_foreign_files(storage.join(run_dir, BACKUP_DIR))
    return sorted(foreign)


def _foreign_logs(board: Path) -> list[Path]:
    foreign = []
    for root, dirs, files in os.walk(board):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        foreign += [Path(root, name) for name in links + files
                    if not name.startswith(_EVENTS) or os.path.islink(os.path.join(root, name))]
    return sorted(foreign)


def is_finished_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a saved model (what `tfhub_transfer.load` reads); on a URL, a complete one."""
    weights = (WEIGHTS_FILE, EXPORT_WEIGHTS_FILE)
    found = storage.isfile(storage.join(run_dir, MODEL_FILE)) and any(
        storage.isfile(storage.join(run_dir, name)) for name in weights)
    return found and storage.complete_damage(run_dir) is None


def keep_finished_run(config: TrainConfig, chief: bool = True) -> Path | None:
    """Moves a finished run out of the new run's way, to `OUT/NAME/run.N` (the first free N), and says so.

    Not when this run resumes the finished run's kept backup (`--keep-backups`): that is the same run.

    Args:
        config: the new run's config.
        chief: whether this process writes (only the chief moves anything).

    Returns:
        Where the finished run went, or None when nothing was moved.

    Example:
        >>> keep_finished_run(TrainConfig.of(train="train.tsv", output_dir="saved_models"))
    """
    run_dir = config.run_dir
    if not chief or not is_finished_run(run_dir) or config.resume is True:
        return None  # --resume: the backup there is resumed (or the missing one reported)
    if config.resume is None and storage.glob(storage.join(run_dir, BACKUP_DIR, "chief", "ckpt-*.index")):
        return None  # its kept backup: resumed as done, or refused as another run's
    if is_url(run_dir):
        kept = _keep_url_run(run_dir)
    else:
        kept = _claim_run_version(run_dir)
        os.rename(run_dir, kept)  # onto the empty directory just claimed: atomic, nothing replaced
    print(f"The finished run in {run_dir} is kept as {kept} (a finished run is never replaced); "
          f"this run writes {run_dir}.", file=sys.stderr, flush=True)
    return kept


def _keep_url_run(run_dir: str) -> str:
    """An object store cannot rename a directory: the finished run is copied to the first free `run.N`
    (its `_COMPLETE` marker last), then deleted from `run` (its marker first)."""
    number = 1
    while storage.exists(f"{run_dir}.{number}"):
        number += 1
    kept = f"{run_dir}.{number}"
    record = {}
    for name in storage.walk_files(run_dir):
        if name != storage.COMPLETE:
            storage.copy(storage.join(run_dir, *name.split("/")), storage.join(kept, *name.split("/")))
            record[name] = {"bytes": storage.size(storage.join(kept, *name.split("/")))}
    storage.publish_complete(kept, record)
    storage.remove(storage.join(run_dir, storage.COMPLETE))
    storage.rmtree(run_dir)
    return kept


def _claim_run_version(run_dir: Path) -> Path:
    number = 1
    while True:
        candidate = run_dir.with_name(f"{run_dir.name}.{number}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the trained model, its history and validation report, and where it went.

    Args:
      model: the trained task model (a Keras model: `predict`, `evaluate`, `save`, `export`).
      history: Keras' history (loss and metrics per epoch).
      metrics: the validation report (accuracy, macro-F1, ...; `auto`'s choice under `--mode auto`).
      label_names: the class names, in class-id order.
      export_path: OUT/NAME/VERSION of the raw-string export (None with `export=False`).
      run_dir: OUT/NAME/run, loadable with `tfhub_transfer.load`.
      speed: training wall time, steady examples/s and peak memory.

    Example:
      >>> from tfhub_transfer import train
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> result = train(demo_config(mode="freeze", output_dir="models", name="reviews"))
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, ...
      >>> result.label_names, 0.0 <= result.metrics["accuracy"] <= 1.0, str(result.run_dir)
      (['negative', 'positive'], True, 'models/reviews/run')
    """

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
        replace_file(storage.join(config.run_dir, "metrics.json"), lambda handle: handle.write(record))
        if speed:
            print(describe_speed(speed), flush=True)
    export_path = export_run(model, config, history, report, chief, speed) if config.export else None
    if chief and export_path is not None:
        share_export_weights(model, config.run_dir, export_path)  # one copy of the weights on disk, not two
    if chief and is_url(config.run_dir):
        storage.publish_complete(config.run_dir, _url_record(config.run_dir))  # last: the run is complete
    return TrainResult(model, history, report, labels, export_path, config.run_dir, speed)


def save_run(model: TaskModel, run_dir: storage.Location) -> None:
    """Saves the model into `run_dir` (replaced atomically) and keeps the TensorBoard logs written there
    (and the backup, with --keep-backups).

    On a URL the model is saved into a local staging directory and its files uploaded over the run's
    (the TensorBoard logs and backup stay where they are); `finish` then writes the `_COMPLETE` marker.
    """
    if is_url(run_dir):
        _save_url_run(model, run_dir)
        return
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


def _save_url_run(model: TaskModel, run_dir: str) -> None:
    staging = Path(tempfile.mkdtemp(prefix="tfhub_transfer-run-"))
    try:
        model.save(staging / "run", overwrite=True)
        storage.remove(storage.join(run_dir, storage.COMPLETE))  # readers stop reading the old run first
        for name in RUN_FILES:
            if not (staging / "run" / name).is_file():
                storage.remove(storage.join(run_dir, name))  # the old run's file, not rewritten by this one
        storage.upload_tree(staging / "run", run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _url_record(run_dir: str) -> dict[str, dict]:
    """The run's files and sizes for its `_COMPLETE` marker (the backup, still being replaced, is left out)."""
    return {name: {"bytes": storage.size(storage.join(run_dir, *name.split("/")))}
            for name in storage.walk_files(run_dir)
            if name != storage.COMPLETE and not name.startswith(f"{BACKUP_DIR}/")}


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


