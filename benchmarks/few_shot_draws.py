"""The few-shot draws, shared by few_shot.py (ours) and peer_setfit.py (SetFit, in the peers' virtualenv).

Numpy only, so both interpreters draw the very same training rows and score the very same evaluation rows.
"""

from __future__ import annotations

import numpy as np

SENTENCE_END = (".", "!", "?")


def eligible(texts: list[str], pool: str) -> list[bool]:
    """Which rows a draw may take: every row, or those that end like a whole sentence."""
    if pool == "all":
        return [True] * len(texts)
    return [text.rstrip().endswith(SENTENCE_END) for text in texts]


def draw(labels: list[str], per_class: int, seed: int, allowed: list[bool] | None = None,
         at_most: bool = False) -> list[int]:
    """`per_class` row indices of each class (among the `allowed` rows), drawn reproducibly from `seed`;
    `at_most`: a class with fewer rows gives all of them (GoEmotions' rarest labels have 57-105 rows)."""
    rng = np.random.default_rng(seed)
    allowed = allowed or [True] * len(labels)
    rows = []
    for name in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == name and allowed[i]]
        if len(members) < per_class and not at_most:
            raise SystemExit(f"class {name!r} has {len(members)} training examples, fewer than {per_class}")
        rows += [int(i) for i in rng.choice(members, min(per_class, len(members)), replace=False)]
    return rows


def evaluation_rows(size: int, max_eval: int) -> np.ndarray:
    """All `size` evaluation rows, or a seeded subset of `max_eval` of them (the same one for every run)."""
    if max_eval and max_eval < size:
        return np.sort(np.random.default_rng(0).choice(size, max_eval, replace=False))
    return np.arange(size)


def first_labels(labels: list[str]) -> list[str]:
    """Multi-label rows (`a,b`) are drawn by their first label (a row counts once); single labels are unchanged."""
    return [label.split(",")[0] for label in labels]


def macro_f1(truth: np.ndarray, guess: np.ndarray) -> float:
    """Macro-F1 over the columns of two [rows, labels] boolean arrays (a label never predicted right scores 0)."""
    tp, fp, fn = (truth & guess).sum(0), (~truth & guess).sum(0), (truth & ~guess).sum(0)
    return float(np.where(tp > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0).mean())
