"""`compare`: several transfer modes on the same data and seed -> a table (markdown + CSV) and a PNG."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from pathlib import Path

import tf_keras

from tfhub_transfer.callbacks import RestoreBestWeights
from tfhub_transfer.data import load_labelled
from tfhub_transfer.metrics import classification_report
from tfhub_transfer.model import build_classifier_from_config
from tfhub_transfer.plots import validation_curves_png
from tfhub_transfer.preprocessing import make_dataset
from tfhub_transfer.schedules import make_schedule
from tfhub_transfer.training import TrainConfig, compile_classifier, predict_ids, transfer_callbacks
from tfhub_transfer.transfer_modes import TransferMode


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
    valid_accuracy: float
    valid_macro_f1: float
    best_epoch: int
    step_seconds: float
    train_seconds: float
    curve: list[float]


def run_mode(base: TrainConfig, mode: str, splits) -> ModeResult:
    """Trains one mode from the same data, seed and budget as the others."""
    tf_keras.utils.set_random_seed(base.seed)
    config = dataclasses.replace(base, mode=mode)
    model = build_classifier_from_config(config.classifier_config(len(splits.labels)))
    pre = model.preprocessor
    train_ds = make_dataset(splits.train.texts, splits.train_ids, pre, base.batch_size,
                            base.seq_length, shuffle=True, seed=base.seed)
    valid_ds = make_dataset(splits.valid.texts, splits.valid_ids, pre, base.batch_size, base.seq_length)
    steps = -(-len(splits.train) // base.batch_size) * base.epochs
    schedule = make_schedule(base.schedule, config.resolved_learning_rate(), steps, base.warmup_fraction)
    compile_classifier(model, schedule, len(splits.labels), base.optimizer, base.weight_decay)
    timer, best = _StepTimer(), RestoreBestWeights("val_accuracy", "max")
    started = time.perf_counter()
    history = model.fit(train_ds, validation_data=valid_ds, epochs=base.epochs,
                        callbacks=[*transfer_callbacks(model), timer, best], verbose=base.verbose)
    seconds = time.perf_counter() - started
    report = classification_report(splits.valid_ids, predict_ids(model, valid_ds), len(splits.labels))
    return ModeResult(str(TransferMode.parse(mode)), report["accuracy"], report["macro_f1"],
                      (best.best_epoch or 0) + 1, timer.mean_step_seconds(), seconds,
                      [float(v) for v in history.history["val_accuracy"]])


def results_markdown(results: list[ModeResult], baseline: str = "finetune") -> str:
    reference = next((r for r in results if r.mode == baseline), results[0])
    lines = ["| transfer mode | valid accuracy | valid macro-F1 | best epoch | s/step | step time vs "
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
    splits = load_labelled(base.train, base.valid, base.text_column, base.label_column,
                           base.validation_fraction, base.max_train_examples, base.seed)
    results = []
    for mode in modes:
        if base.verbose:
            print(f"== {mode}", flush=True)
        results.append(run_mode(base, mode, splits))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(results_markdown(results), encoding="utf-8")
    (out / "compare.csv").write_text(results_csv(results), encoding="utf-8")
    (out / "compare.png").write_bytes(validation_curves_png({r.mode: r.curve for r in results}))
    return results
