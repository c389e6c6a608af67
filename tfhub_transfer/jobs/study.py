"""`study_layers`: every layer mix on one dataset (frozen encoder) plus fine-tuning, as in BERT's Table 7."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.files import refuse_url
from tfhub_transfer.jobs.train import train
from tfhub_transfer.layers.layer_mix import LAYER_MIXES
from tfhub_transfer.training.plots import bar_chart_png
from tfhub_transfer.training.tasks import task_spec

BERT_TABLE7 = {  # BERT-base on CoNLL-2003 dev F1 (Devlin et al., 2019, Table 7)
    "finetune": 96.4, "embeddings": 91.0, "second_to_last": 95.6, "last": 94.9,
    "sum_last4": 95.9, "concat_last4": 96.1, "scalar_mix": 95.5,  # all 12 layers (weighted sum)
}


@dataclasses.dataclass
class MixResult:
    setting: str
    score: float
    metric: str


def run_setting(base: TrainConfig, mix: str | None, finetune_lr: float | None,
                finetune_epochs: int | None) -> tuple[float, str]:
    """One row: a frozen encoder with `mix` trained from the feature cache, or (mix None) fine-tuning."""
    if mix is None:
        config = base.replace(mode="finetune", layer_mix=None, feature_cache=False, export=False,
                              head="dense", learning_rate=finetune_lr or base.learning_rate,
                              epochs=finetune_epochs or base.epochs)
    else:
        config = base.replace(mode="freeze", layer_mix=mix, feature_cache=True, export=False)
    task = task_spec(base.task)  # its headline score names the row's metric
    return train(config).metrics[task.headline], task.study_metric


def study_layers(base: TrainConfig, out_dir: str | Path, mixes=LAYER_MIXES, finetune: bool = True,
                 finetune_learning_rate: float | None = None,
                 finetune_epochs: int | None = None) -> list[MixResult]:
    """Runs each mix with a frozen encoder (and, if asked, full fine-tuning); writes study.{md,csv,png}.

    `base` is a `TrainConfig` for a sentence task or `--task tokens` (e.g. CoNLL-2003 NER).
    Frozen runs use `base.learning_rate` and `base.epochs`; the fine-tuned row uses
    `finetune_learning_rate` and `finetune_epochs` when given.

    Args:
      base: the data, encoder, seed and budget of every row.
      out_dir: where study.md, study.csv and study.png are written (created if missing).
      mixes: frozen layer mixes to compare (see `--layer-mix`).
      finetune: add the fully fine-tuned reference row first.
      finetune_learning_rate: the fine-tuned row's rate (None: `base.learning_rate` or the default).
      finetune_epochs: the fine-tuned row's epochs (None: `base.epochs`).

    Returns:
      One `MixResult(setting, score, metric)` per row: the task's headline score on validation.

    Example:
      >>> from tfhub_transfer import study_layers
      >>> from tfhub_transfer.jobs.demo import demo_config
      >>> base = demo_config()
      >>> rows = study_layers(base, "study_out", mixes=["last"], finetune=False)
      Training all-MiniLM-L6-v2 (encoder, mode freeze) on 64 examples, validating on 40; ...
      ...
      >>> rows[0].setting, rows[0].metric
      ('last', 'accuracy')
    """
    refuse_url(out_dir, "--out", "its report, table and plot are written on this machine; give a local --out")
    results = []
    for mix in ([None] if finetune else []) + list(mixes):
        score, metric = run_setting(base, mix, finetune_learning_rate, finetune_epochs)
        results.append(MixResult("finetune" if mix is None else mix, score, metric))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.md").write_text(study_markdown(results), encoding="utf-8")
    (out / "study.csv").write_text(study_csv(results), encoding="utf-8")
    (out / "study.png").write_bytes(study_png(results))
    return results


def study_markdown(results: list[MixResult]) -> str:
    lines = [f"| features | {results[0].metric} | BERT-base CoNLL-2003 dev F1 (Table 7) |", "|---|---|---|"]
    for r in results:
        label = "fine-tune (all layers)" if r.setting == "finetune" else f"frozen: {r.setting}"
        lines.append(f"| {label} | {r.score:.4f} | {BERT_TABLE7.get(r.setting, '')} |")
    return "\n".join(lines) + "\n"


def study_csv(results: list[MixResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["setting", "metric", "score"])
    for r in results:
        writer.writerow([r.setting, r.metric, r.score])
    return buffer.getvalue()


def study_png(results: list[MixResult]) -> bytes:
    return bar_chart_png([r.setting for r in results], [r.score for r in results], results[0].metric,
                         "Layer mixes (frozen encoder) vs fine-tuning")
