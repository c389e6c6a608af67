"""Keras callbacks used by `train`."""

from __future__ import annotations

import datetime
import io
import re
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.files import replace_file


class RestoreBestWeights(tf_keras.callbacks.Callback):
    """Keeps the weights of the best epoch by `monitor` and restores them when training ends.

    With `store`, the best weights are also written there (atomically, by the chief
    only) and read back when a resumed run begins, so a crash loses no best epoch.
    """

    def __init__(self, monitor: str = "val_accuracy", mode: str = "max",
                 store: str | Path | None = None, write: bool = True):
        super().__init__()
        self.monitor = monitor
        self.sign = 1.0 if mode == "max" else -1.0
        self.store = storage.location(store) if store is not None else None  # local, or a URL (gs://)
        self.write = write
        self.best = -np.inf
        self.best_epoch: int | None = None
        self._best_weights = None

    def on_train_begin(self, logs=None):
        if self.store is not None and storage.exists(self.store):
            with np.load(io.BytesIO(storage.read_bytes(self.store))) as saved:
                self.best, self.best_epoch = float(saved["best"]), int(saved["epoch"])
                self._best_weights = [saved[f"w{i}"] for i in range(len(self.model.trainable_weights))]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.sign * value > self.best:
            self.best = self.sign * value
            self.best_epoch = epoch
            self._best_weights = [w.numpy() for w in self.model.trainable_weights]
            if self.store is not None and self.write:
                self._save()

    def _save(self) -> None:
        arrays = {f"w{i}": w for i, w in enumerate(self._best_weights)}
        replace_file(self.store, lambda handle: np.savez(handle, best=self.best, epoch=self.best_epoch, **arrays))

    def on_train_end(self, logs=None):
        if self._best_weights is not None:
            for weight, value in zip(self.model.trainable_weights, self._best_weights):
                weight.assign(value)


TENSORBOARD_DIR = "tensorboard"  # inside a run directory: OUT/NAME/run/tensorboard/<start time>
LINE_EVERY_STEPS = 100  # a progress line every this many steps on long epochs (logs, not terminals)
BOARD_EVERY_STEPS = 10  # TensorBoard step scalars (learning rates, unfrozen groups, examples/s)
SPIKE_FACTOR = 10  # a step this many times slower than the median one is a (re)trace, not training


def interactive_output() -> bool:
    """Whether stdout redraws a progress bar in place: a terminal or a notebook, not a log file or pipe.

    (Keras' own test also counts every POSIX system as interactive, so its bars pile up in log files.)
    """
    isatty = getattr(sys.stdout, "isatty", None)
    # A notebook's stdout is ipykernel's stream; "ipykernel" merely imported (by nbclient, say) is not one.
    return bool(isatty and isatty()) or type(sys.stdout).__module__.startswith("ipykernel")


PROGRESS_LINE_SECONDS = 30.0  # in a log file, long work prints a progress line at most this often


class ProgressLines:
    """Progress of long work written to a log file: a line at most every `every_seconds` (count, share,
    rate) and one when done, instead of a redrawn bar."""

    def __init__(self, total: int, what: str, every_seconds: float = PROGRESS_LINE_SECONDS):
        self.total, self.what, self.every_seconds = total, what, every_seconds
        self.started = self.printed = time.perf_counter()

    def update(self, current: int, values=None) -> None:
        now = time.perf_counter()
        if current < self.total and now - self.printed < self.every_seconds:
            return
        self.printed = now
        rate = current / max(now - self.started, 1e-9)
        print(f"  {current:,}/{self.total:,} {self.what} ({100 * current / max(self.total, 1):.0f} %), "
              f"{rate:,.0f} {self.what}/s", flush=True)


def progress_bar(total: int, what: str, verbose: int = 1) -> tf_keras.utils.Progbar | ProgressLines:
    """A labelled progress bar ("encoding 5,452 texts"); in a log file, a progress line every 30 s."""
    if verbose:
        print(f"encoding {total:,} {what}", flush=True)
        if not interactive_output():
            return ProgressLines(total, what)
    return tf_keras.utils.Progbar(total, verbose=verbose, unit_name=what.rstrip("s") or what)


def _megabytes(kilobytes: float) -> float:
    return round(kilobytes / 1024, 1)


def _peak_rss_kb() -> float:
    """The process's peak resident memory since the last `_reset_peak_rss` (Linux), else since it started."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return float(re.search(r"VmHWM:\s+(\d+)", status.read()).group(1))
    except (OSError, AttributeError):
        import resource  # POSIX only

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


def _reset_peak_rss() -> None:
    try:  # Linux: writing 5 resets the peak-RSS counter (VmHWM), so each epoch gets its own peak
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


def _accelerators() -> list[str]:
    return [device.name for device in tf.config.list_logical_devices() if device.device_type in ("GPU", "TPU")]


class SpeedMeter(tf_keras.callbacks.Callback):
    """Training speed and memory: per epoch the wall time, train examples/s and peak memory.

    Examples per second count training steps only (not validation) in the steady state: the
    first epoch's first steps, where the train function is traced, are left out, and so is any
    step over `SPIKE_FACTOR` times the epoch's median step (a retrace: a new input shape, a
    layer group unfrozen). Peak memory is the process's resident set (RSS, per epoch on Linux)
    and, on GPUs, the peak of TensorFlow's device memory.
    """

    def __init__(self, batch_size: int, examples_per_epoch: int, warmup_steps: int | None = None):
        super().__init__()
        self.batch_size = batch_size
        self.examples_per_epoch = examples_per_epoch
        self.warmup_steps = warmup_steps
        self.epochs: list[dict] = []
        self.seconds = 0.0
        self._steady_seconds = 0.0
        self._steady_examples = 0.0

    def on_train_begin(self, logs=None):
        steps = (self.params or {}).get("steps") or 1
        if self.warmup_steps is None:
            self.warmup_steps = max(1, min(10, steps // 10))
        self._gpus = [d for d in _accelerators() if ":GPU:" in d]
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        _reset_peak_rss()
        for device in self._gpus:
            tf.config.experimental.reset_memory_stats(device)
        self._epoch_start = self._last_step_end = self._step_start = time.perf_counter()
        self._steps = 0
        self._durations: list[float] = []
        self._counts: list[int] = []  # steps per callback: steps_per_execution runs several per call

    def on_train_batch_begin(self, batch, logs=None):
        self._step_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last_step_end = time.perf_counter()
        done = batch + 1  # Keras reports an execution's last step
        self._durations.append(self._last_step_end - self._step_start)
        self._counts.append(max(done - self._steps, 1))
        self._steps = done

    def _steady(self, first_epoch: bool) -> tuple[float, int]:
        """Seconds and steps of this epoch's steady-state steps."""
        durations, counts = np.asarray(self._durations), np.asarray(self._counts)
        keep = np.ones(len(durations), bool)
        if first_epoch:
            keep[np.cumsum(counts) <= self.warmup_steps] = False
        if keep.any():
            per_step = durations / counts
            keep &= per_step <= SPIKE_FACTOR * np.median(per_step[keep])
        return float(durations[keep].sum()), int(counts[keep].sum())

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        train_seconds = self._last_step_end - self._epoch_start
        examples = int(min(self._steps * self.batch_size, self.examples_per_epoch))  # JSON: no numpy ints
        seconds, steps = self._steady(first_epoch=not self.epochs)
        if seconds > 0 and steps:
            steady_examples = examples * steps / self._steps
            self._steady_seconds += seconds
            self._steady_examples += steady_examples
            rate = steady_examples / seconds
        else:
            rate = examples / train_seconds if train_seconds > 0 else 0.0
        record = {"epoch": epoch + 1, "seconds": round(now - self._epoch_start, 3),
                  "train_seconds": round(train_seconds, 3), "examples": examples,
                  "examples_per_second": round(rate, 1), "peak_rss_mb": _megabytes(_peak_rss_kb())}
        if self._gpus:
            peak = max(tf.config.experimental.get_memory_info(d)["peak"] for d in self._gpus)
            record["peak_gpu_mb"] = round(peak / 2**20, 1)
        self.epochs.append(record)

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self._train_start

    def summary(self) -> dict:
        """Wall time of the fit, steady-state train examples/s, peak memory, and the same per epoch."""
        if self._steady_examples:
            rate = self._steady_examples / self._steady_seconds
        else:
            rate = self.epochs[-1]["examples_per_second"] if self.epochs else 0.0
        out = {"train_seconds": round(self.seconds, 3), "examples_per_second": round(rate, 1),
               "peak_rss_mb": max((e["peak_rss_mb"] for e in self.epochs), default=_megabytes(_peak_rss_kb())),
               "epochs": list(self.epochs)}
        if any("peak_gpu_mb" in e for e in self.epochs):
            out["peak_gpu_mb"] = max(e.get("peak_gpu_mb", 0.0) for e in self.epochs)
        return out


def describe_speed(speed: dict) -> str:
    """One line: "trained in 12.3 s (3 epochs), 845 train examples/s (steady), peak RSS 1,234 MB"."""
    epochs = len(speed["epochs"])
    line = (f"trained in {speed['train_seconds']:.1f} s ({epochs} epoch{'' if epochs == 1 else 's'}), "
            f"{speed['examples_per_second']:,.0f} train examples/s (steady), peak RSS {speed['peak_rss_mb']:,.0f} MB")
    if "peak_gpu_mb" in speed:
        line += f", peak GPU memory {speed['peak_gpu_mb']:,.0f} MB"
    return line


def _format_logs(logs: dict) -> str:
    return ", ".join(f"{name} {float(value):.4f}" for name, value in logs.items() if np.ndim(value) == 0)


class LineProgress(tf_keras.callbacks.Callback):
    """Progress for logs that are not a terminal: one line per epoch (and one every `every_steps` steps
    of a longer epoch) instead of Keras' redrawn bar, whose `\\r` updates pile up in a file."""

    def __init__(self, epochs: int, meter: SpeedMeter | None = None, every_steps: int = LINE_EVERY_STEPS,
                 write: bool = True):
        super().__init__()
        self.total_epochs = epochs
        self.meter = meter
        self.every_steps = every_steps
        self.write = write

    def _print(self, line: str) -> None:
        if self.write:
            print(line, file=sys.stdout, flush=True)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        steps = (self.params or {}).get("steps")
        done = batch + 1
        if self.every_steps and steps and steps > self.every_steps and done % self.every_steps == 0 \
                and done < steps:
            self._print(f"epoch {self._epoch + 1}/{self.total_epochs} step {done}/{steps}: "
                        f"{_format_logs(logs or {})} ({time.perf_counter() - self._start:.0f} s)")

    def on_epoch_end(self, epoch, logs=None):
        timing = f"{time.perf_counter() - self._start:.1f} s"
        if self.meter is not None and self.meter.epochs:
            last = self.meter.epochs[-1]
            timing += f", {last['examples_per_second']:,.0f} examples/s, peak RSS {last['peak_rss_mb']:,.0f} MB"
        self._print(f"epoch {epoch + 1}/{self.total_epochs}: {_format_logs(logs or {})} ({timing})")


def fit_progress(verbose: int | str, epochs: int) -> tuple[int | str, list[tf_keras.callbacks.Callback]]:
    """Keras' `verbose` for a `fit` and the progress callbacks to add to it.

    With `verbose="auto"` (Keras' default) and stdout not a terminal or notebook, the fit prints lines
    (`LineProgress`, as the CLI does) instead of a bar whose `\\r` redraws pile up in a log file.
    Any other `verbose` is the caller's choice and is kept.

    Args:
        verbose: the `verbose` passed to `fit`.
        epochs: the fit's number of epochs (shown as "epoch 2/3").

    Returns:
        The `verbose` to give Keras and the callbacks to append to the fit's own.

    Example:
        >>> verbose, progress = fit_progress("auto", epochs=3)  # stdout redirected: (0, [LineProgress])
    """
    if verbose == "auto" and not interactive_output():
        return 0, [LineProgress(epochs)]
    return verbose, []


def summary_verbosity(verbose: int | str) -> int | str:
    """Keras' `verbose` for `evaluate` and `predict`: `"auto"` gives one summary line (2) when stdout is
    not a terminal or notebook, instead of a redrawn bar.

    Args:
        verbose: the `verbose` passed to `evaluate` or `predict`.

    Returns:
        The `verbose` to give Keras.

    Example:
        >>> summary_verbosity("auto")  # 2 in a log file, "auto" (Keras' bar) in a terminal
    """
    return 2 if verbose == "auto" and not interactive_output() else verbose


class TensorBoardLog(tf_keras.callbacks.Callback):
    """TensorBoard event files under `log_dir`: `train/` and `validation/` runs.

    Per epoch: the loss and every metric (train and validation), examples/s and peak RSS.
    Every `every_steps` steps: the batch loss, the learning rate of every layer group
    (`learning_rate/<group>`, 0 while the group is frozen; `learning_rate/head` for the
    variables outside the groups), the number of unfrozen groups (gradual unfreezing)
    and the examples/s since the last write. Steps are the optimizer's global steps.
    """

    def __init__(self, log_dir: str | Path, meter: SpeedMeter | None = None,
                 every_steps: int = BOARD_EVERY_STEPS, batch_size: int | None = None):
        super().__init__()
        self.log_dir = storage.location(log_dir)  # tf.summary writes to gs:// (and ram://) itself
        self.meter = meter
        self.every_steps = max(1, every_steps)
        self.batch_size = batch_size

    @staticmethod
    def fresh_dir(parent: str | Path) -> Path:
        """`parent/<start time>`: each fit is its own TensorBoard run beside the earlier ones."""
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, n = storage.join(parent, stamp), 1
        while storage.exists(path):
            n += 1
            path = storage.join(parent, f"{stamp}-{n}")
        return path

    def on_train_begin(self, logs=None):
        self._train = tf.summary.create_file_writer(str(storage.join(self.log_dir, "train")))
        self._valid = tf.summary.create_file_writer(str(storage.join(self.log_dir, "validation")))
        self._mark = (self._step(), time.perf_counter())

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _write_groups(self, step: int) -> None:
        rates = getattr(self.model, "group_learning_rates", None)
        with self._train.as_default(step=step):
            if rates is not None:
                for group, rate in rates().items():
                    tf.summary.scalar(f"learning_rate/{group}", rate)
            training = getattr(self.model, "training_groups", None)
            if training is not None and getattr(self.model, "layer_groups", None) is not None:
                tf.summary.scalar("unfrozen_groups", len(training()))

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every_steps:
            return
        self._write_groups(step)
        last_step, last_time = self._mark
        now = time.perf_counter()
        with self._train.as_default(step=step):
            if logs and "loss" in logs:
                tf.summary.scalar("batch_loss", float(logs["loss"]))
            if self.batch_size and step > last_step and now > last_time:
                tf.summary.scalar("batch_examples_per_second", (step - last_step) * self.batch_size / (now - last_time))
        self._mark = (step, now)

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        for name, value in (logs or {}).items():
            if np.ndim(value) != 0:
                continue
            writer, tag = (self._valid, name[4:]) if name.startswith("val_") else (self._train, name)
            with writer.as_default(step=step):
                tf.summary.scalar(f"epoch_{tag}", float(value))
        with self._train.as_default(step=step):
            if self.meter is not None and self.meter.epochs:
                tf.summary.scalar("epoch_examples_per_second", self.meter.epochs[-1]["examples_per_second"])
                tf.summary.scalar("epoch_peak_rss_mb", self.meter.epochs[-1]["peak_rss_mb"])
        self._write_groups(self._step())
        self._train.flush()
        self._valid.flush()

    def on_train_end(self, logs=None):
        self._train.close()
        self._valid.close()


class EarlyStopping(RestoreBestWeights):
    """Stops training after `patience` epochs without a better `monitor`, then restores the best epoch's
    weights (as `RestoreBestWeights`, whose store also carries the best epoch over a resumed run)."""

    def __init__(self, patience: int, monitor: str = "val_accuracy", mode: str = "max",
                 store: str | Path | None = None, write: bool = True):
        super().__init__(monitor, mode, store, write)
        self.patience = int(patience)
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.best_epoch is not None and epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
