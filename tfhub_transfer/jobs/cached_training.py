"""Training a head on the feature cache at its best: to convergence, and optionally tuned.

Epochs of a linear head on cached features cost seconds, so with the default `--epochs` it trains for
up to `CACHED_HEAD_EPOCHS` epochs with early stopping (`CACHED_HEAD_PATIENCE`) instead of
a fine-tuning budget, and at `CACHED_HEAD_LEARNING_RATE` unless a rate is given: slower than
the 1e-3 of a short budget, it reaches a better head on held-out data (benchmarks/RESULTS.md).
`--tune-head` sweeps the head's learning rate and L2 penalty and keeps
the head with the best validation score (selected on the validation set, as SentEval's
probes select their L2 on the dev set), reporting every trial and the choice.
"""

from __future__ import annotations

import dataclasses

import tf_keras

from tfhub_transfer.config import (
    CACHED_HEAD_EPOCHS,
    CACHED_HEAD_LEARNING_RATE,
    CACHED_HEAD_PATIENCE,
    TrainConfig,
    field_default,
)
from tfhub_transfer.models.cached_heads import CachedExamples, CachedHead, CachedSequenceHead
from tfhub_transfer.training.loop import FitOutcome, fit_task

TUNING_LEARNING_RATES = (3e-4, 1e-3, 3e-3)
TUNING_L2 = (0.0, 1e-3, 1e-2, 1e-1)


def cached_optimization(config: TrainConfig):
    """The optimisation options for a cached head: the user's, with a longer, early-stopped default budget
    at a lower default rate for the linear head. A BiLSTM head's epochs take minutes, not seconds, and it
    peaks within the ordinary budget (benchmarks/RESULTS.md), so it keeps that."""
    optimization = config.optimization
    if optimization.epochs == field_default("epochs") and config.head == "dense":
        optimization = dataclasses.replace(optimization, epochs=CACHED_HEAD_EPOCHS)
        if optimization.learning_rate is None and optimization.head_learning_rate is None:
            optimization = dataclasses.replace(optimization, head_learning_rate=CACHED_HEAD_LEARNING_RATE)
        if not optimization.early_stopping and config.restore_best:
            optimization = dataclasses.replace(optimization, early_stopping=CACHED_HEAD_PATIENCE)
    return optimization


def best_score(head, outcome: FitOutcome) -> float:
    """The best validation score of a fit (higher is better whatever the monitor's direction)."""
    values = outcome.history.get(head.objective.monitor) or [float("-inf")]
    return max(values) if head.objective.monitor_mode == "max" else -min(values)


def tune_cached_head(model, head: CachedHead | CachedSequenceHead, train: CachedExamples, valid: CachedExamples,
                     config: TrainConfig, **fit_options) -> tuple[CachedHead | CachedSequenceHead, FitOutcome, dict]:
    """Fits one head per (learning rate, L2) pair on the cache; returns the best head, its fit and the sweep."""
    optimization = cached_optimization(config)
    quiet = dataclasses.replace(config.runtime, verbose=0)
    trials, best = [], None
    for rate in TUNING_LEARNING_RATES:
        for l2 in TUNING_L2:
            tf_keras.utils.set_random_seed(config.seed)
            with model.distribute_strategy.scope():
                candidate = head.with_l2(model, l2)
            trial = dataclasses.replace(optimization, head_learning_rate=rate, learning_rate=None)
            outcome = fit_task(candidate, train, valid, trial, quiet, None, job="--tune-head", **fit_options)
            score = best_score(candidate, outcome)
            trials.append({"head_learning_rate": rate, "l2": l2, "score": round(abs(score), 6),
                           "epochs": len(next(iter(outcome.history.values()), []))})
            if config.verbose:
                print(f"tune-head: lr {rate:g}, l2 {l2:g}: {candidate.objective.monitor} {abs(score):.4f} "
                      f"({trials[-1]['epochs']} epochs)", flush=True)
            if best is None or score > best[0]:
                best = (score, candidate, outcome, rate, l2)
    _, chosen, outcome, rate, l2 = best
    tuning = {"chosen": {"head_learning_rate": rate, "l2": l2}, "monitor": chosen.objective.monitor,
              "trials": trials}
    if config.verbose:
        print(f"tune-head: chose lr {rate:g}, l2 {l2:g} (best {chosen.objective.monitor} "
              f"{abs(best[0]):.4f} of {len(trials)} trials)", flush=True)
    return chosen, outcome, tuning
