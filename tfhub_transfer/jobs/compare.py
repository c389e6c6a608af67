"""`compare`: several transfer modes on the same data and seed -> a table (markdown + CSV) and a PNG."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import time
from pathlib import Path

import tf_keras

from tfhub_transfer.cache import honours_cache_dir
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import Examples, LabelledSplits, encode_scores, load_labelled, read_table
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import check_writable, refuse_url
from tfhub_transfer.jobs.options import check_options, fits_pair_features
from tfhub_transfer.jobs.train import build_task_model, num_outputs, resolved_config
from tfhub_transfer.models.contrastive import fit_contrastive, fit_head
from tfhub_transfer.training.distribution import global_batch_size, make_distribution
from tfhub_transfer.training.loop import fit_task
from tfhub_transfer.training.objectives import validation_report
from tfhub_transfer.training.plots import validation_curves_png
from tfhub_transfer.training.tasks import task_spec
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
    valid_accuracy: float  # the task's headline score (its spec's `headline`): accuracy, micro-F1, Pearson r
    valid_macro_f1: float
    best_epoch: int
    step_seconds: float
    train_seconds: float
    curve: list[float]
    examples_per_second: float = 0.0  # steady-state training throughput
    test_score: float | None = None  # with a test file: the headline score on it
    test_macro_f1: float | None = None


def read_test(base: TrainConfig, splits: LabelledSplits, path) -> Examples:
    """A labelled test file, its targets encoded with the training data's labels."""
    table = read_table(path, base.text_column, base.label_column, base.text_b_column)
    targets = splits.labels.encode(table) if splits.labels is not None else encode_scores(table)
    return Examples(table.texts, targets, table.texts_b)


def run_mode(base: TrainConfig, mode: str, splits: LabelledSplits, strategy,
             test: Examples | None = None) -> ModeResult:
    """Trains one mode from the same data, seed and budget as the others (the one loop, no backups)."""
    tf_keras.utils.set_random_seed(base.seed)
    config, choice = resolved_config(base.replace(mode=mode), splits)  # auto: chosen for this data, same splits
    with strategy.scope():
        model = build_task_model(config, splits)
    timer = _StepTimer()
    fit = (fit_contrastive if model.mode.brings_own_fit else
           fit_head if fits_pair_features(config) else  # as train fits it
           functools.partial(fit_task, run_dir=None))
    outcome = fit(model, splits.train_examples, splits.valid_examples, config.optimization, config.runtime,
                  job="compare", extra_callbacks=(timer,))
    report = validation_report(splits.task, splits.valid_ids, outcome.valid_outputs, num_outputs(splits))
    headline = model.objective.headline
    curve_key = model.objective.monitor if model.objective.monitor in outcome.history else "val_loss"
    name = str(TransferMode.parse(mode)) + (f" ({choice.mode})" if choice else "")
    result = ModeResult(name, float(report[headline]), float(report.get("macro_f1", 0.0)),
                        (outcome.best_epoch or 0) + 1, timer.mean_step_seconds(), outcome.seconds,
                        outcome.history[curve_key], (outcome.speed or {}).get("examples_per_second", 0.0))
    if test is not None:
        batch = global_batch_size(config.batch_size, strategy)
        outputs = model.outputs_on(model.evaluation_dataset(test, batch))
        scores = validation_report(splits.task, test.targets, outputs, num_outputs(splits))
        result.test_score, result.test_macro_f1 = float(scores[headline]), float(scores.get("macro_f1", 0.0))
    return result


def results_markdown(results: list[ModeResult], baseline: str = "finetune") -> str:
    reference = next((r for r in results if r.mode == baseline), results[0])
    tested = any(r.test_score is not None for r in results)
    test_head = " test score | test macro-F1 |" if tested else ""
    lines = [f"| transfer mode | valid score | valid macro-F1 |{test_head} best epoch | s/step | step time vs "
             f"{reference.mode} | train s | examples/s |", "|---|---|---|" + "---|" * (6 + 2 * tested)]
    for r in results:
        test_cells = (f" {r.test_score:.4f} | {r.test_macro_f1:.4f} |" if r.test_score is not None else " | |") \
            if tested else ""
        lines.append(f"| {r.mode} | {r.valid_accuracy:.4f} | {r.valid_macro_f1:.4f} |{test_cells} {r.best_epoch} | "
                     f"{r.step_seconds:.4f} | {r.step_seconds / reference.step_seconds:.2f}× | "
                     f"{r.train_seconds:.1f} | {r.examples_per_second:,.0f} |")
    return "\n".join(lines) + "\n"


NOISE = 0.01  # one point: differences below it are within the run-to-run noise of one seed


def recommendation(results: list[ModeResult], noise: float = NOISE) -> str:
    """What to pick, from the measured rows: the best score, the best score per training second, and
    the fastest mode within `noise` of the best (test scores when every row has one, else validation)."""
    if not results:
        return ""
    where = "test" if all(r.test_score is not None for r in results) else "validation"

    def score(r: ModeResult) -> float:
        return r.test_score if where == "test" else r.valid_accuracy

    best = max(results, key=score)
    per_second = max(results, key=lambda r: score(r) / max(r.train_seconds, 1e-9))
    lines = [f"- Best {where} score: **{best.mode}** ({score(best):.4f} in {best.train_seconds:.1f} s)."]
    if per_second is not best:
        speedup = best.train_seconds / max(per_second.train_seconds, 1e-9)
        lines.append(f"- Best {where} score per training second: **{per_second.mode}** ({score(per_second):.4f} in "
                     f"{per_second.train_seconds:.1f} s: {100 * (score(best) - score(per_second)):.1f} points below "
                     f"{best.mode}, {speedup:.1f}× faster).")
    close = [r for r in results if score(best) - score(r) < noise]
    pick = min(close, key=lambda r: r.train_seconds)
    others = ", ".join(r.mode for r in close if r is not best)
    if pick is best:
        within = f"; {others} within noise (< {100 * noise:.0f} point) but no faster" if others else ""
        lines.append(f"- Pick **{best.mode}**{within}.")
    else:
        speedup = best.train_seconds / max(pick.train_seconds, 1e-9)
        lines.append(f"- Pick **{pick.mode}**: {100 * (score(best) - score(pick)):.1f} points from {best.mode}, "
                     f"within noise (< {100 * noise:.0f} point), and {speedup:.1f}× faster to train.")
    if len(results) > 1:
        lines.append(f"  (One seed: gaps under {100 * noise:.0f} point are noise; try other --seed values before "
                     "trusting one.)")
    return "Recommendation:\n" + "\n".join(lines) + "\n"


def results_csv(results: list[ModeResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    fields = [f.name for f in dataclasses.fields(ModeResult) if f.name != "curve"]
    writer.writerow(fields)
    for r in results:
        writer.writerow([getattr(r, f) for f in fields])
    return buffer.getvalue()


@honours_cache_dir
def compare_modes(base: TrainConfig, modes: list[str], out_dir: str | Path,
                  test: str | Path | None = None) -> list[ModeResult]:
    """Runs each transfer mode with `base`'s data, seed and budget; writes compare.{md,csv,png}.

    With `test` (a labelled file), each mode is also scored on it, reported beside validation.
    Every mode is checked before any trains, so a typo fails at once.

    Args:
      base: the data, encoder, seed and budget every mode shares (its `mode` is replaced per row).
      modes: transfer modes as `--mode` spells them, e.g. `["freeze", "partial:3", "finetune"]`.
      out_dir: where compare.md, compare.csv and compare.png are written (created if missing).
      test: a labelled file scored by every mode beside validation (None: validation only).

    Returns:
      One `ModeResult` per mode, in the order given (validation headline score, macro-F1, best
      epoch, seconds, learning curve; test scores when `test` is given).

    Example:
      >>> from tfhub_transfer import compare_modes
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> base = demo_config()
      >>> results = compare_modes(base, ["freeze", "finetune"], "compare_out")
      >>> [r.mode for r in results], all(0 <= r.valid_accuracy <= 1 for r in results)
      (['freeze', 'finetune'], True)
    """
    for mode in modes:  # fail on a typo, or a recipe option a mode does not take, before any training starts
        check_options(base.replace(mode=mode))
    refuse_url(out_dir, "--out", "its report and plot are written on this machine; give a local --out")
    check_writable(out_dir)
    if task_spec(base.task).per_token:
        raise ConfigError(f"compare does not run --task {base.task} yet; compare sentence-level tasks")
    splits = load_labelled(base.train, base.valid, base.text_column, base.label_column,
                           base.validation_fraction, base.max_train_examples, base.seed, base.task,
                           base.text_b_column, base.label_separator, base.weight_column)
    test_examples = read_test(base, splits, test) if test is not None else None
    strategy = make_distribution(base.distribution)
    results = []
    for mode in modes:
        if base.verbose:
            print(f"== {mode}", flush=True)
        results.append(run_mode(base, mode, splits, strategy, test_examples))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(results_markdown(results) + "\n" + recommendation(results), encoding="utf-8")
    (out / "compare.csv").write_text(results_csv(results), encoding="utf-8")
    (out / "compare.png").write_bytes(validation_curves_png({r.mode: r.curve for r in results}))
    return results
