"""How much data, which recipe: accuracy against labelled examples per class, for every arm on the same draws.

    cd benchmarks && ../.venv/bin/python learning_curve.py --datasets sst2,ag_news --per-class 8,32,128,512 \
        --seeds 5,5,3,3 --max-eval 1000 --out out/learning_curve
    cd benchmarks && ../.venv/bin/python learning_curve.py --datasets mrpc,goemotions --per-class 16,256 \
        --seeds 3,3 --arms default,freeze,finetune,gradual --out out/learning_curve_tasks

MRPC and RTE are sentence pairs (no `contrastive` arm); GoEmotions is multi-label, drawn by each row's first
label, at most N per label (its rarest labels have 57-105 rows), and scored by macro-F1.

Each (dataset, N, seed) draws N training rows per class (few_shot_draws.draw: the same rows for every arm
and for the peers' scripts) and scores every arm on the same evaluation rows (`--max-eval` of the dev/test
split, seeded). Arms, each through `tfhub_transfer.train` exactly as the CLI runs it:
- `default`: no option at all (`--mode auto`, `--epochs auto`): what a new user gets;
- `keras_default`: the Python API with no option, `TextClassifier.from_encoder(encoder, labels=...)` then
  `.fit(texts, labels)` (`auto` chooses at the fit); not run unless named in `--arms`;
- `freeze`: `--mode freeze --feature-cache --tune-head`;
- `finetune`, `gradual`: those modes with their defaults (`--epochs auto`);
- `contrastive`: `--mode contrastive` (single-label and multi-label only);
- `contrastive_b8`: `--mode contrastive --batch-size 8`, the recipe `auto` picks for few labels, to measure where
  it stops paying (not one of the fixed modes of the goal table);
- `finetune_b8`: `--mode finetune --batch-size 8 --validation-fraction 0`, the recipe `auto` picks for a few more
  labels, run outside its range; `finetune_hf_recipe`: `finetune` with the Hugging Face Trainer's defaults
  (3 epochs, batches of 8, 5e-5, no hold-out), to tell its budget from its batch size; `finetune_b8_cls`:
  `finetune_b8` read through BERT's tanh pooler over [CLS] (`--pooling cls`) as the Trainer's model reads it;
  `gradual_every_label`: `gradual` with no hold-out, what the default did with few sentence pairs before.
`--per-class full` trains on the whole training set (one seed is enough: there is nothing to draw).
Every arm holds out what the default command would (`--validation-fraction` as the arm decides) and is
timed inside one process from reading the draw through model building and training (`train()` as a whole;
the interpreter's start, TensorFlow's import and the scoring after training are not counted; peer_curve.py
times the peers over the same span). Writes `rows.csv` (one row per arm, draw and seed), `summary.md`
(mean ± std, seconds, then the goal table) and `learning_curve.png` (accuracy against N, log scale) to --out.

The peers (SetFit 1.2 and the Hugging Face `Trainer`, each with its defaults) run on the same draws in the
peers' virtualenv (peer_curve.py); `--merge` joins their rows.csv with ours into one summary and one plot,
training nothing:

    ../.venv/bin/python learning_curve.py --merge out/learning_curve/rows.csv,out/peer_curve/rows.csv \
        --out out/learning_curve_merged

The goal table compares, for each dataset and N, the default command on the seeds it shares with each
other arm (the same draws): against the best fixed mode (score points, wall-time ratio; goal: within 1 point
in at most 1.5x the time), against `setfit` (goal at N <= 64: at least its score in at most 1.5x its time)
and against `hf_trainer` (goal at every N: at least its score).

Smoke run (seconds, any encoder): `--datasets sst2 --per-class 4 --seeds 1 --max-eval 32 --encoder PATH
--arms default,finetune`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import gc
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import tf_keras
from common import OUT, cpu_flags, machine, peak_rss_mb, require_shared
from few_shot_draws import draw, evaluation_rows, first_labels, macro_f1

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.jobs.train import train
from tfhub_transfer.models.text_classifier import TextClassifier

ARMS = {  # arm -> the options it sets beyond the data (the default command sets none)
    "default": {},
    "freeze": {"mode": "freeze", "feature_cache": True, "tune_head": True},
    "finetune": {"mode": "finetune"},
    "gradual": {"mode": "gradual"},
    "contrastive": {"mode": "contrastive"},
    # auto's few-shot recipe (contrastive in its batches of 8), run past the few-shot range to place that range's end
    "contrastive_b8": {"mode": "contrastive", "batch_size": 8},
    # the Hugging Face Trainer's recipe in our finetune (3 epochs, batches of 8, 5e-5, no hold-out), and the same
    # batches with `--epochs auto`'s step budget: which of the two sets the Trainer's lead at 128 per class
    "finetune_hf_recipe": {"mode": "finetune", "epochs": 3, "batch_size": 8, "learning_rate": 5e-5,
                           "validation_fraction": 0.0},
    "finetune_b8": {"mode": "finetune", "batch_size": 8, "validation_fraction": 0.0},
    # the same through BERT's tanh pooler over [CLS] (as the Trainer's BertForSequenceClassification reads it)
    # instead of the sentence encoder's mean: what is left of the Trainer's lead at 128 per class on AG News
    "finetune_b8_cls": {"mode": "finetune", "batch_size": 8, "validation_fraction": 0.0, "pooling": "cls"},
    # the default's recipe for sentence pairs below 50 per class before fine-tuning in batches of 8 took them over
    "gradual_every_label": {"mode": "gradual", "validation_fraction": 0.0},
    # sentence pairs read apart (each text encoded alone, the head on |u-v|, u*v and the cosine): the frozen
    # encoder's fixed pair features with the head fitted on every label, or fine-tuned in batches of 8
    "freeze_siamese": {"mode": "freeze", "pairs": "siamese", "feature_cache": True, "validation_fraction": 0.0},
    "finetune_b8_siamese": {"mode": "finetune", "batch_size": 8, "validation_fraction": 0.0, "pairs": "siamese"},
}
# The Python API's default (`TextClassifier.from_encoder(...).fit(texts, labels)`, `auto` chosen at the fit), timed
# over the same span as the CLI's arms: reading the draw, building the model, training.
KERAS_DEFAULT = "keras_default"
FULL = "full"  # --per-class value: the whole training set
FIXED_MODES = ("freeze", "finetune", "gradual", "contrastive")
PEER_ARMS = ("setfit", "hf_trainer")  # peer_curve.py's arms, run in the peers' virtualenv
SETFIT_GOAL_MAX_N = 64  # the goal against SetFit holds at <= 64 examples per class
GOALS = {"fixed": (-1.0, 1.5), "setfit": (0.0, 1.5), "hf_trainer": (0.0, None)}  # (min points, max time ratio)
DATASETS = {  # name -> (folder, evaluation split, multi-label, text_b column)
    "sst2": ("sst2", "dev.tsv", False, None),
    "ag_news": ("ag_news", "test.tsv", False, None),
    "goemotions": ("goemotions", "dev.tsv", True, None),
    "rte": ("rte", "dev.tsv", False, "text_b"),
    "mrpc": ("mrpc", "dev.tsv", False, "text_b"),
}


def read_split(path: Path, pair: str | None) -> tuple[list[str], list[str] | None, list[str]]:
    table = read_table(path, "text_a" if pair else "text", "label", pair)
    return list(table.texts), list(table.texts_b) if pair else None, [str(v) for v in table.labels]


def write_draw(path: Path, rows: list[int], texts, texts_b, labels) -> Path:
    header = ["text_a", "text_b", "label"] if texts_b else ["text", "label"]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(header) + "\n")
        for i in rows:
            cells = [texts[i], texts_b[i], labels[i]] if texts_b else [texts[i], labels[i]]
            handle.write("\t".join(c.replace("\t", " ").replace("\n", " ") for c in cells) + "\n")
    return path


def score(model, texts, texts_b, labels, multi_label: bool) -> float:
    """Accuracy (single-label) or macro-F1 over the classes seen in training (multi-label)."""
    inputs = (texts, texts_b) if texts_b else texts
    if not multi_label:
        predicted = model.predict_labels(inputs)
        return float(np.mean([p == y for p, y in zip(predicted, labels)]))
    names = list(model.label_names)
    truth = np.array([[n in y.split(",") for n in names] for y in labels])
    guess = np.asarray(model.predict(inputs, verbose=0)) > 0.0  # logits: sigmoid above one half
    return macro_f1(truth, guess)


@dataclasses.dataclass
class KerasRun:
    """What the `keras_default` arm leaves: the model, and `auto`'s choice in `train()`'s metrics shape."""

    model: object
    metrics: dict


def run_keras_default(data: Path, pair: str | None, multi: bool, seed: int, encoder: str) -> KerasRun:
    """The Python API with no option: `TextClassifier.from_encoder(encoder, labels=...)` then `fit(texts, labels)`."""
    texts, texts_b, labels = read_split(data, pair)
    names = sorted({n for y in labels for n in y.split(",")} if multi else set(labels))
    tf_keras.utils.set_random_seed(seed)
    model = TextClassifier.from_encoder(encoder, labels=names, pair=bool(pair), seed=seed,
                                        task="multi_label" if multi else "single_label")
    model.fit((texts, texts_b) if pair else texts, labels, seed=seed, verbose=0)
    return KerasRun(model, {"auto": {"mode": model.auto_choice.mode if model.auto_choice else ""}})


def run_arm(arm: str, data: Path, pair: str | None, multi: bool, seed: int, encoder: str, out: Path) -> tuple:
    if arm == KERAS_DEFAULT:
        started = time.perf_counter()
        result = run_keras_default(data, pair, multi, seed, encoder)
        return result, time.perf_counter() - started
    options = {"train": str(data), "encoder": encoder, "seed": seed, "output_dir": str(out), "name": arm,
               "export": False, "tensorboard": False, "verbose": 0, **ARMS[arm]}
    if pair:
        options.update(text_column="text_a", text_b_column=pair)
    if multi:
        options["task"] = "multi_label"
    started = time.perf_counter()
    result = train(TrainConfig.of(**options))
    return result, time.perf_counter() - started


def drawn(labels: list[str], size: int | str, seed: int, multi_label: bool) -> tuple[list[int], int]:
    """The rows of one draw and its N per class: `size` per class, or every row for `full` (N: the rarest
    class's count, so the full set sits where it belongs on the curve's axis). Multi-label rows are drawn by
    their first label, at most `size` each (a label with fewer first-label rows gives all of them)."""
    if size != FULL:
        return draw(labels, size, seed, at_most=multi_label), size
    return list(range(len(labels))), min(Counter(labels).values())


def arms_for(arms: list[str], multi: bool, pair: str | None) -> list[str]:
    return [a for a in arms if not (a.startswith("contrastive") and pair) and not (a.endswith("_siamese") and not pair)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2,ag_news", help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--per-class", default="8,32,128,512",
                        help=f"labelled examples per class, comma-separated; {FULL!r}: the whole training set")
    parser.add_argument("--seeds", default="5,5,3,3", help="seeds per N (one number: the same for every N)")
    parser.add_argument("--first-seed", type=int, default=0, help="draw seeds first-seed, first-seed + 1, ... "
                        "(to add seeds to an earlier run: merge both rows.csv)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)} and "
                        f"{KERAS_DEFAULT} (the Python API's default)")
    parser.add_argument("--max-eval", type=int, default=1000)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--out", default=str(OUT / "learning_curve"))
    parser.add_argument("--merge", default="", help="comma-separated rows.csv files (ours, peer_curve.py's): "
                        "write one summary.md and plot from them to --out, training nothing")
    args = parser.parse_args()
    if args.merge:
        merge([Path(p) for p in args.merge.split(",") if p], Path(args.out))
        return
    sizes = [n if n == FULL else int(n) for n in args.per_class.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds = seeds * len(sizes) if len(seeds) == 1 else seeds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"machine: {machine()}; lscpu flags: {cpu_flags()}", flush=True)
    for name in args.datasets.split(","):
        folder, split, multi, pair = DATASETS[name]
        root = require_shared(folder)
        train_texts, train_b, train_labels = read_split(root / "train.tsv", pair)
        eval_texts, eval_b, eval_labels = read_split(root / split, pair)
        keep = evaluation_rows(len(eval_texts), args.max_eval)
        eval_texts, eval_labels = [eval_texts[i] for i in keep], [eval_labels[i] for i in keep]
        eval_b = [eval_b[i] for i in keep] if eval_b else None
        for size, count in zip(sizes, seeds):
            for seed in range(args.first_seed, args.first_seed + count):
                picked, size = drawn(first_labels(train_labels), size, seed, multi)
                with tempfile.TemporaryDirectory() as scratch:
                    data = write_draw(Path(scratch) / "train.tsv", picked, train_texts, train_b, train_labels)
                    for arm in arms_for(args.arms.split(","), multi, pair):
                        result, seconds = run_arm(arm, data, pair, multi, seed, args.encoder, Path(scratch))
                        value = score(result.model, eval_texts, eval_b, eval_labels, multi)
                        chosen = result.metrics.get("auto", {}).get("mode", ARMS.get(arm, {}).get("mode", ""))
                        rows.append({"dataset": name, "per_class": size, "seed": seed, "arm": arm,
                                     "score": round(value, 4), "seconds": round(seconds, 1), "chose": chosen})
                        print(rows[-1], flush=True)
                        write_rows(rows, out)  # after every row: a run cut short keeps what it measured
                        del result
                        tf_keras.backend.clear_session()  # each arm's graphs go: RSS grew ~0.4 GB per arm without
                        gc.collect()
    write_outputs(rows, out)
    print(f"peak RSS {peak_rss_mb():.0f} MB; wrote {out}/rows.csv, summary.md, learning_curve.png")


def read_rows_csv(path: Path) -> list[dict]:
    """A rows.csv written by this script or peer_curve.py, with numbers read back as numbers."""
    if not path.is_file():
        raise SystemExit(f"--merge: {path} is not a file; give the rows.csv files written by learning_curve.py "
                         "or peer_curve.py, separated by commas")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"dataset", "per_class", "seed", "arm", "score", "seconds"} - set(rows[0] if rows else {})
    if missing:
        raise SystemExit(f"--merge: {path} has no rows or lacks the columns {sorted(missing)}")
    return [{**r, "per_class": int(r["per_class"]), "seed": int(r["seed"]), "score": float(r["score"]),
             "seconds": float(r["seconds"]), "chose": r.get("chose") or ""} for r in rows]


def merge(paths: list[Path], out: Path) -> None:
    """One summary.md and one plot from several rows.csv files; a (dataset, N, seed, arm) given twice is refused."""
    rows = [row for path in paths for row in read_rows_csv(path)]
    keys = [(r["dataset"], r["per_class"], r["seed"], r["arm"]) for r in rows]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SystemExit(f"--merge: these (dataset, N, seed, arm) rows occur more than once: {repeated[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(rows, out)
    print(f"merged {len(rows)} rows from {len(paths)} file(s) into {out}/rows.csv, summary.md, learning_curve.png")


def paired(rows: list[dict], dataset: str, size: int, arm: str) -> tuple[float, float, float, float, int] | None:
    """Default against `arm` on the seeds both ran: (default %, arm %, default s, arm s, seeds), or None."""
    def by_seed(name: str) -> dict:
        return {r["seed"]: r for r in rows if (r["dataset"], r["per_class"], r["arm"]) == (dataset, size, name)}

    ours, theirs = by_seed("default"), by_seed(arm)
    shared = sorted(set(ours) & set(theirs))
    if not shared:
        return None
    return (100 * statistics.mean(ours[s]["score"] for s in shared),
            100 * statistics.mean(theirs[s]["score"] for s in shared),
            statistics.mean(ours[s]["seconds"] for s in shared),
            statistics.mean(theirs[s]["seconds"] for s in shared), len(shared))


def goal_cell(pair: tuple | None, goal: tuple[float, float | None] | None, label: str = "") -> str:
    """`score: Δ points, time ratio` and whether the goal holds (✓/✗; nothing where no goal applies)."""
    if pair is None:
        return "–"
    default, other, default_s, other_s, seeds = pair
    delta, ratio = default - other, default_s / max(other_s, 1e-9)
    mark = ""
    if goal is not None:
        min_points, max_ratio = goal
        mark = " ✓" if delta >= min_points and (max_ratio is None or ratio <= max_ratio) else " ✗"
    return f"{label}{other:.1f}: {delta:+.1f} pts, {ratio:.2f}×{mark} ({seeds} seed{'s' * (seeds > 1)})"


def goal_table(rows: list[dict]) -> str:
    """Per dataset and N, the default against the best fixed mode, SetFit and the HF Trainer (same draws)."""
    lines = ["| dataset | N per class | default (all its seeds) | vs best fixed mode | vs setfit | vs hf_trainer "
             "| default's seeds |",
             "|---|---|---|---|---|---|---|"]
    for dataset, size in sorted({(r["dataset"], r["per_class"]) for r in rows if r["arm"] == "default"}):
        fixed = {arm: paired(rows, dataset, size, arm) for arm in FIXED_MODES}
        fixed = {arm: pair for arm, pair in fixed.items() if pair}
        best = max(fixed, key=lambda arm: fixed[arm][1]) if fixed else None
        setfit_goal = GOALS["setfit"] if size <= SETFIT_GOAL_MAX_N else None
        cells = [goal_cell(fixed.get(best), GOALS["fixed"], f"{best} " if best else ""),
                 goal_cell(paired(rows, dataset, size, "setfit"), setfit_goal),
                 goal_cell(paired(rows, dataset, size, "hf_trainer"), GOALS["hf_trainer"])]
        default = [100 * r["score"] for r in rows if (r["dataset"], r["per_class"], r["arm"]) == (dataset, size,
                                                                                               "default")]
        lines.append(f"| {dataset} | {size} | {statistics.mean(default):.1f} | " + " | ".join(cells)
                     + f" | {len(default)} |")
    note = ("\nEach cell: the other arm's score (%), the default's lead in points and the default's wall time as a "
            "multiple of the arm's, both over the seeds the two share (the same draws). ✓/✗: the issue's goal "
            "(best fixed mode: >= -1 point in <= 1.5×; setfit, N <= 64 only: >= 0 points in <= 1.5×; "
            "hf_trainer: >= 0 points).\n")
    return "\n".join(lines) + "\n" + note


def summary(rows: list[dict]) -> str:
    lines = ["| dataset | N per class | arm | score (mean ± std) | seconds (mean) | seeds | auto chose |",
             "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["dataset"], r["per_class"], r["arm"]) for r in rows}, key=lambda k: (k[0], k[1], k[2]))
    for dataset, size, arm in keys:
        group = [r for r in rows if (r["dataset"], r["per_class"], r["arm"]) == (dataset, size, arm)]
        scores = [100 * r["score"] for r in group]
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        chose = ", ".join(sorted({r["chose"] for r in group if r["chose"]})) if arm == "default" else ""
        lines.append(f"| {dataset} | {size} | {arm} | {statistics.mean(scores):.1f} ± {spread:.1f} | "
                     f"{statistics.mean(r['seconds'] for r in group):.0f} | {len(group)} | {chose} |")
    return "\n".join(lines) + "\n"


def write_rows(rows: list[dict], out: Path) -> None:
    with open(out / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(rows: list[dict], out: Path) -> None:
    write_rows(rows, out)
    (out / "summary.md").write_text(summary(rows) + "\n" + goal_table(rows), encoding="utf-8")
    plot(rows, out / "learning_curve.png")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    arms = sorted({r["arm"] for r in rows})
    colours = {arm: f"C{i}" for i, arm in enumerate(arms)}  # one colour per arm in every panel
    figure, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        for arm in sorted({r["arm"] for r in rows if r["dataset"] == dataset}):
            sizes = sorted({r["per_class"] for r in rows if r["dataset"] == dataset and r["arm"] == arm})
            means = [100 * statistics.mean(r["score"] for r in rows if (r["dataset"], r["arm"], r["per_class"])
                                           == (dataset, arm, n)) for n in sizes]
            axis.plot(sizes, means, marker="o", label=arm, color=colours[arm],
                      linewidth=2.5 if arm == "default" else 1.2, linestyle="--" if arm in PEER_ARMS else "-")
        axis.set_xscale("log", base=2)
        axis.set_title(dataset)
        axis.set_xlabel("labelled examples per class")
        axis.set_ylabel("accuracy (macro-F1 for multi-label), %")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
