"""`compare`: several transfer modes on the same data and seed -> a table (markdown + CSV) and a PNG."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

import tf_keras

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import LabelledSplits, load_labelled
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import check_writable
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.jobs.train import build_task_model, num_outputs
from tfhub_transfer.training.distribution import make_distribution
from tfhub_transfer.training.loop import fit_task
from tfhub_transfer.training.objectives import validation_report
from tfhub_transfer.training.plots import validation_curves_png
from tfhub_transfer.transfer.modes import TransferMode


class _StepTimer(tf_keras.callbacks.Callback):
    """Mean seconds per training step, after the first (traced) step of each train function."""

    def __init__(self):
        super().__init__()
        self.durations: list[float] = []
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.durations.append(time.perf_counter() - self._start)

    def mean_step_seconds(self) -> float:
        steady = sorted(self.durations)[: max(1, int(len(self.durations) * 0.9))]  # drop trace spikes
        return sum(steady) / len(steady)


@dataclasses.dataclass
class ModeResult:
    mode: str
    valid_accuracy: float  # the task's headline score: accuracy, micro-F1 (multi-label) or Pearson r
    valid_macro_f1: float
    best_epoch: int
    step_seconds: float
    train_seconds: float
    curve: list[float]


def run_mode(base: TrainConfig, mode: str, splits: LabelledSplits, strategy) -> ModeResult:
    """Trains one mode from the same data, seed and budget as the others (the one loop, no backups)."""
    tf_keras.utils.set_random_seed(base.seed)
    config = base.replace(mode=mode)
    with strategy.scope():
        model = build_task_model(config, splits)
    timer = _StepTimer()
    outcome = fit_task(model, splits.train_examples, splits.valid_examples, config.optimization,
                       config.runtime, None, job="compare", extra_callbacks=(timer,))
    report = validation_report(splits.task, splits.valid_ids, outcome.valid_outputs, num_outputs(splits))
    headline = model.objective.headline
    curve_key = model.objective.monitor if model.objective.monitor in outcome.history else "val_loss"
    return ModeResult(str(TransferMode.parse(mode)), float(report[headline]), float(report.get("macro_f1", 0.0)),
                      (outcome.best_epoch or 0) + 1, timer.mean_step_seconds(), outcome.seconds,
                      outcome.history[curve_key])


def results_markdown(results: list[ModeResult], baseline: str = "finetune") -> str:
    reference = next((r for r in results if r.mode == baseline), results[0])
    lines = ["| transfer mode | valid score | valid macro-F1 | best epoch | s/step | step time vs "
             f"{reference.mode} | train s |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.mode} | {r.valid_accuracy:.4f} | {r.valid_macro_f1:.4f} | {r.best_epoch} | "
                     f"{r.step_seconds:.4f} | {r.step_seconds / reference.step_seconds:.2f}× | "
                     f"{r.train_seconds:.1f} |")
    return "\n".join(lines) + "\n"


def results_csv(results: list[ModeResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    fields = [f.name for f in dataclasses.fields(ModeResult) if f.name != "curve"]
    writer.writerow(fields)
    for r in results:
        writer.writerow([getattr(r, f) for f in fields])
    return buffer.getvalue()


def compare_modes(base: TrainConfig, modes: list[str], out_dir: str | Path) -> list[ModeResult]:
    """Runs each transfer mode with `base`'s data, seed and budget; writes compare.{md,csv,png}."""
    for mode in modes:
        TransferMode.parse(mode)  # fail on a typo before any training starts
    check_options(base)
    check_writable(out_dir)
    if base.task == "tokens":
        raise ConfigError("compare does not run --task tokens yet; compare sentence-level tasks")
    splits = load_labelled(base.train, base.valid, base.text_column, base.label_column,
                           base.validation_fraction, base.max_train_examples, base.seed, base.task,
                           base.text_b_column, base.label_separator)
    strategy = make_distribution(base.distribution)
    results = []
    for mode in modes:
        if base.verbose:
            print(f"== {mode}", flush=True)
        results.append(run_mode(base, mode, splits, strategy))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(results_markdown(results), encoding="utf-8")
    (out / "compare.csv").write_text(results_csv(results), encoding="utf-8")
    (out / "compare.png").write_bytes(validation_curves_png({r.mode: r.curve for r in results}))
    return results
