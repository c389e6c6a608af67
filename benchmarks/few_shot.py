"""Few-shot accuracy: `contrastive` (SetFit's recipe) against `freeze` and `finetune` on the same samples.

    python benchmarks/few_shot.py                       # SST-2 and AG News, 8/16/64 per class, 5 seeds
    python benchmarks/few_shot.py --datasets sst2 --shots 8 --seeds 1 --max-eval 200   # a quick check

For each dataset, number of labelled examples per class and seed, one seeded draw of that many
training examples per class is given to every mode. `--pool sentences` (the default) draws only rows
that end like a sentence (`.`, `!` or `?`): SST-2's training file also holds 54k sub-sentence phrases
("the", "good"), which a few-shot user would not label, and SetFit's own SST-2 is the sentence-level
split; `--pool all` draws from every row; each is scored on the same evaluation split
(SST-2 dev, AG News test; `--max-eval` takes a seeded subset of it). No validation data is used
for any choice, as a few-shot user would have none.

- `contrastive`: `--mode contrastive:ITERATIONS`; the encoder on pairs (`--contrastive-epochs`, default
  the package's 3, batch 16, 2e-5), then the head fitted on the tuned embeddings (models.contrastive.fit_head).
- `freeze`: the same head fit on the untouched encoder's embeddings (the same mean pooling and
  normalisation): contrastive without its pair fit.
- `finetune`: the encoder and a new head trained end to end at the package's defaults (5e-5, warmup
  and linear decay, batch 16), for as many optimizer steps as the pair fit takes (`--finetune-epochs`).

Prints a markdown table of accuracy mean ± std over the seeds; writes it and the raw scores to --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import tf_keras
from common import OUT, machine, peak_rss_mb, require_shared
from few_shot_draws import draw, eligible, evaluation_rows

from tfhub_transfer.config import OptimizationConfig, RuntimeConfig, field_default
from tfhub_transfer.data.tables import Examples, read_table
from tfhub_transfer.models.contrastive import fit_head
from tfhub_transfer.models.text_classifier import TextClassifier

DATASETS = {  # name -> (folder, training file, evaluation file, table title)
    "sst2": ("sst2", "train.tsv", "dev.tsv", "SST-2 (dev)"),
    "ag_news": ("ag_news", "train.tsv", "test.tsv", "AG News (test)"),
}
MODES = ("contrastive", "freeze", "finetune")
BATCH = 16


def run_mode(mode: str, args, classes: list[str], train: Examples, texts: list[str], seed: int) -> tuple[object, float]:
    """The classifier `mode` trains on `train`, and its training seconds."""
    tf_keras.backend.clear_session()
    gc.collect()
    tf_keras.utils.set_random_seed(seed)
    spec = f"contrastive:{args.iterations}" if mode in ("contrastive", "freeze") else mode
    model = TextClassifier.from_encoder(args.encoder, labels=classes, mode=spec, seq_length=args.seq_length,
                                        seed=seed)
    started = time.perf_counter()
    if mode == "contrastive":
        model.compile(learning_rate=args.contrastive_lr)
        model.fit(texts, [classes[i] for i in train.targets], batch_size=BATCH, epochs=args.contrastive_epochs,
                  seed=seed, verbose=0)
    elif mode == "freeze":
        fit_head(model, train, None, OptimizationConfig(batch_size=BATCH), RuntimeConfig(seed=seed, verbose=0))
    else:
        model.compile()
        model.fit(texts, [classes[i] for i in train.targets], batch_size=BATCH, epochs=args.finetune_epochs,
                  seed=seed, verbose=0)
    return model, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2,ag_news")
    parser.add_argument("--shots", default="8,16,64", help="labelled training examples per class")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds FIRST_SEED .. FIRST_SEED + SEEDS - 1")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=20, help="contrastive pairs of each kind per example")
    parser.add_argument("--contrastive-epochs", type=int, default=field_default("epochs"),
                        help="passes over the pairs (the package's --epochs default; SetFit used 1)")
    parser.add_argument("--contrastive-lr", type=float, help="default: the package's (2e-5)")
    parser.add_argument("--finetune-epochs", type=int,
                        help="default: as many steps as the pair fit (2 x iterations x contrastive epochs)")
    parser.add_argument("--pool", choices=("sentences", "all"), default="sentences",
                        help="draw from rows that end like a sentence (default) or from every row")
    parser.add_argument("--max-eval", type=int, default=0, help="score on a seeded subset of this size (0: all)")
    parser.add_argument("--out", default=str(OUT / "few_shot"))
    args = parser.parse_args()
    args.finetune_epochs = args.finetune_epochs or 2 * args.iterations * args.contrastive_epochs
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise SystemExit(f"unknown modes {unknown}; choose from {MODES}")
    report = {"machine": machine(), "args": vars(args), "scores": {}, "seconds": {}}
    rows = []
    for name in args.datasets.split(","):
        folder, train_file, eval_file, title = DATASETS[name]
        root = require_shared(folder)
        train_table, eval_table = read_table(root / train_file), read_table(root / eval_file)
        train_labels = [str(y) for y in train_table.labels]
        classes = sorted(set(train_labels))
        allowed = eligible(list(train_table.texts), args.pool)
        keep = evaluation_rows(len(eval_table), args.max_eval)
        eval_texts = [eval_table.texts[i] for i in keep]
        eval_labels = [str(eval_table.labels[i]) for i in keep]
        for shots in [int(s) for s in args.shots.split(",")]:
            scores = {mode: [] for mode in modes}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                chosen = draw(train_labels, shots, seed, allowed)
                texts = [train_table.texts[i] for i in chosen]
                train = Examples(texts, np.asarray([classes.index(train_labels[i]) for i in chosen], np.int32))
                for mode in modes:
                    model, seconds = run_mode(mode, args, classes, train, texts, seed)
                    predicted = model.predict_labels(eval_texts, batch_size=64)
                    accuracy = float(np.mean([p == y for p, y in zip(predicted, eval_labels)]))
                    scores[mode].append(accuracy)
                    key = f"{name}/{shots}/{mode}"
                    report["seconds"].setdefault(key, []).append(round(seconds, 1))
                    print(f"{title} {shots}/class seed {seed} {mode}: accuracy {accuracy:.4f} "
                          f"({seconds:.0f} s)", flush=True)
            report["scores"][f"{name}/{shots}"] = scores
            rows.append((title, shots, scores))
    table = markdown(rows, modes, len(eval_texts) if len(args.datasets.split(",")) == 1 else None)
    print("\n" + table, flush=True)
    report["table"], report["peak_rss_mb"] = table, peak_rss_mb()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "few_shot.md").write_text(table)


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def markdown(rows, modes: list[str], evaluated: int | None) -> str:
    """Accuracy (%) mean ± sample std over seeds, one row per dataset and shots."""
    seeds = max((len(v) for _, _, scores in rows for v in scores.values()), default=0)
    lines = [f"| dataset | labelled per class | {' | '.join(modes)} |", "|---|---|" + "---|" * len(modes)]
    for title, shots, scores in rows:
        best = max(statistics.mean(scores[m]) for m in modes)
        cells = [(f"**{mean_std(scores[m])}**" if math.isclose(statistics.mean(scores[m]), best) else
                  mean_std(scores[m])) for m in modes]
        lines.append(f"| {title} | {shots} | {' | '.join(cells)} |")
    note = f"accuracy (%), mean ± std over {seeds} seed(s)"
    if evaluated:
        note += f", on {evaluated} evaluation examples"
    return "\n".join(lines) + f"\n\n{note}\n"


if __name__ == "__main__":
    main()
