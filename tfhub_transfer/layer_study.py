"""`study_layers`: every layer mix on one dataset (frozen encoder) plus fine-tuning, as in BERT's Table 7."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from tfhub_transfer.layer_mix import LAYER_MIXES

BERT_TABLE7 = {  # BERT-base on CoNLL-2003 dev F1 (Devlin et al., 2019, Table 7)
    "finetune": 96.4, "embeddings": 91.0, "second_to_last": 95.6, "last": 94.9,
    "sum_last4": 95.9, "concat_last4": 96.1, "scalar_mix": 95.5,  # all 12 layers (weighted sum)
}


@dataclasses.dataclass
class MixResult:
    setting: str
    score: float
    metric: str


def _run_sentence(base, mix: str | None, finetune_lr: float | None, finetune_epochs: int | None):
    from tfhub_transfer.training import train

    if mix is None:
        config = dataclasses.replace(base, mode="finetune", layer_mix=None, feature_cache=False,
                                     export=False, learning_rate=finetune_lr or base.learning_rate,
                                     epochs=finetune_epochs or base.epochs)
    else:
        config = dataclasses.replace(base, mode="freeze", layer_mix=mix, feature_cache=True, export=False)
    result = train(config)
    headline = {"single_label": "accuracy", "multi_label": "micro_f1", "regression": "pearson"}[base.task]
    return result.metrics[headline], headline


def _run_tokens(base, mix: str | None, finetune_lr: float | None, finetune_epochs: int | None):
    from tfhub_transfer.token_classification import train_tagger

    if mix is None:
        config = dataclasses.replace(base, mode="finetune", layer_mix=None, head="dense", export=False,
                                     learning_rate=finetune_lr or base.learning_rate,
                                     epochs=finetune_epochs or base.epochs)
    else:
        config = dataclasses.replace(base, mode="freeze", layer_mix=mix, export=False, feature_cache=True)
    return train_tagger(config).metrics["f1"], "entity_f1"


def study_layers(base, out_dir: str | Path, mixes=LAYER_MIXES, finetune: bool = True,
                 finetune_learning_rate: float | None = None,
                 finetune_epochs: int | None = None) -> list[MixResult]:
    """Runs each mix with a frozen encoder (and, if asked, full fine-tuning); writes study.{md,csv,png}.

    `base` is a `TrainConfig` (sentence tasks; trained from the feature cache) or a
    `TaggerTrainConfig` (token tasks, e.g. CoNLL-2003 NER). Frozen runs use
    `base.learning_rate` and `base.epochs`; the fine-tuned row uses `finetune_learning_rate`
    and `finetune_epochs` when given.
    """
    from tfhub_transfer.token_classification import TaggerTrainConfig

    run = _run_tokens if isinstance(base, TaggerTrainConfig) else _run_sentence
    results = []
    for mix in ([None] if finetune else []) + list(mixes):
        score, metric = run(base, mix, finetune_learning_rate, finetune_epochs)
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
    from tfhub_transfer.plots import _png, plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([r.setting for r in results], [r.score for r in results], color="#4c78a8")
    ax.set_ylabel(results[0].metric)
    ax.set_title("Layer mixes (frozen encoder) vs fine-tuning")
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)
