"""SST-2 dev accuracy and train-step time per transfer mode, default encoder, small training subsets.

    python benchmarks/sst2_transfer_modes.py --subsets 1000,8000 --epochs 2

Every mode sees the same subset, seed, batch size, schedule and epochs
(`tfhub_transfer.jobs.compare.compare_modes`), with each mode's default recipe (issue #12:
`gradual` trains the head alone for half an epoch at the head's rate, counted in the same
`--epochs` budget as `finetune`'s, then thaws the groups top-down; `gradual` and
`discriminative` spread the groups' rates over LR/10 .. LR, centred on 5e-5). `--head-lr`, `--head-lr-multiplier`,
`--frozen-epochs` and `--lr-mult` override the recipes for every mode that takes them.
A `freeze (feature cache)` row trains the head on the standardised cached features to
convergence (early stopping), as the SentEval probes do (`--no-cache-row` skips it).
Step time is the mean of the fastest 90 % of steps (drops tracing); ratios are against
`finetune` in the same run. `before` is the table in benchmarks/RESULTS.md from issue #3.

Smoke run (tiny sizes, any encoder): `--subsets 64 --epochs 2 --encoder PATH --modes gradual,finetune`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import OUT, machine, peak_rss_mb, require_shared

from tfhub_transfer.config import TrainConfig, field_default
from tfhub_transfer.jobs.compare import ModeResult, compare_modes, results_markdown
from tfhub_transfer.jobs.train import train
from tfhub_transfer.transfer.modes import TransferMode

MODES = "freeze,partial:3,gradual,discriminative,finetune,reinit"
BEFORE = {  # dev accuracy with the issue-#3 recipes (benchmarks/RESULTS.md), for the side-by-side column
    1000: {"freeze": 0.6376, "partial:3": 0.7362, "gradual": 0.5745, "discriminative": 0.5700,
           "finetune": 0.7947, "reinit": 0.5092},
    8000: {"freeze": 0.7947, "partial:3": 0.8544, "gradual": 0.6227, "discriminative": 0.7603,
           "finetune": 0.8670, "reinit": 0.7397},
}
RECIPE_FLAGS = {"head_lr": "head_learning_rate", "head_lr_multiplier": "head_lr_multiplier",
                "frozen_epochs": "frozen_epochs", "lr_mult": "lr_mult"}


def cache_row(base: TrainConfig, out: Path) -> ModeResult:
    """`freeze` with the feature cache: standardised features, the head trained to convergence."""
    started = time.perf_counter()
    result = train(base.replace(mode="freeze", feature_cache=True, epochs=field_default("epochs"),
                                output_dir=out, name="freeze_cache"))
    seconds = time.perf_counter() - started  # encoding the cache included (a second run reuses it)
    history = result.history.get("val_accuracy", [])
    best = max(range(len(history)), key=history.__getitem__) + 1 if history else 0
    return ModeResult("freeze (feature cache)", float(result.metrics["accuracy"]),
                      float(result.metrics.get("macro_f1", 0.0)), best, float("nan"), seconds, history)


def with_before(table: str, size: int, modes: list[str], recipe: dict) -> str:
    """The markdown table with a `before` column (the same mode's issue-#3 dev accuracy) and its recipe."""
    before = BEFORE.get(size, {})
    names = {str(TransferMode.parse(m)): m for m in modes}
    rows = table.strip().splitlines()
    header = rows[0] + " before (#3) | recipe |"
    out = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows[2:]:
        mode = row.split("|")[1].strip()
        old = before.get(names.get(mode, mode))
        described = _mode(names[mode], recipe).describe() if mode in names else "standardised, early stopping"
        out.append(row + (f" {old:.4f} |" if old is not None else " |") + f" {described} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subsets", default="1000,8000")
    parser.add_argument("--modes", default=MODES)
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=64)
    parser.add_argument("--head-lr", type=float, help="override: the head's rate while the encoder is frozen")
    parser.add_argument("--head-lr-multiplier", type=float, help="override: head rate / LR while the encoder trains")
    parser.add_argument("--frozen-epochs", type=float, help="override: head-only epochs of gradual/discriminative")
    parser.add_argument("--lr-mult", type=float, help="override: discriminative's top-to-bottom rate ratio")
    parser.add_argument("--no-cache-row", action="store_true", help="skip the freeze (feature cache) row")
    parser.add_argument("--out", default=str(OUT / "transfer_modes"))
    args = parser.parse_args()
    sst2 = require_shared("sst2")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    recipe = {field: getattr(args, flag) for flag, field in RECIPE_FLAGS.items() if getattr(args, flag) is not None}
    report = {"machine": machine(), "args": vars(args), "tables": {}}
    for size in [int(s) for s in args.subsets.split(",")]:
        base = TrainConfig.of(train=sst2 / "train.tsv", valid=sst2 / "dev.tsv", encoder=args.encoder,
                              epochs=args.epochs, batch_size=args.batch_size, seq_length=args.seq_length,
                              max_train_examples=size, verbose=2, export=False, tensorboard=False)
        results = []
        for mode in modes:  # one at a time: recipe overrides apply only to the modes that take them
            options = {k: v for k, v in recipe.items() if _applies(mode, k)}
            results += compare_modes(base.replace(mode=mode, **options), [mode],
                                     Path(args.out) / f"n{size}" / _safe(mode))
        if not args.no_cache_row:
            results.append(cache_row(base, Path(args.out) / f"n{size}"))
        table = with_before(results_markdown(results), size, modes, recipe)
        print(f"\n### {size} training examples\n\n{table}", flush=True)
        report["tables"][size] = table
    report["peak_rss_mb"] = peak_rss_mb()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2))


def _applies(mode: str, field: str) -> bool:
    """Whether a recipe override is for `mode` (lr_mult and frozen_epochs: the phased modes; the head's
    multiplier: modes whose encoder trains; the head's frozen rate: all)."""
    kind = TransferMode.parse(mode).kind
    if field in ("lr_mult", "frozen_epochs"):
        return kind in ("gradual", "discriminative")
    return kind != "freeze" if field == "head_lr_multiplier" else True


def _mode(spec: str, recipe: dict) -> TransferMode:
    """The mode as run: its spec with the recipe overrides that apply to it."""
    options = {k: v for k, v in recipe.items() if _applies(spec, k) and k in ("lr_mult", "frozen_epochs")}
    return TransferMode.parse(spec, **options)


def _safe(mode: str) -> str:
    return mode.replace(":", "_")


if __name__ == "__main__":
    main()
