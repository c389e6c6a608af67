"""PNG reports: confusion matrices and training / validation curves, written next to an export or a report."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _epoch_axis(ax) -> None:
    """Whole epochs only on the x axis (no 1.2, 1.4 ... ticks)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")


def confusion_matrix_png(confusion: Sequence[Sequence[int]], label_names: Sequence[str],
                         split: str = "validation") -> bytes:
    """Counts by true (rows) and predicted (columns) label, named on both axes; the title names `split`
    (e.g. "validation" or "test.tsv") and its size."""
    counts = np.asarray(confusion)
    n = len(label_names)
    size = max(4.5, 0.55 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="examples")
    ticks = range(n)
    ax.set_xticks(ticks, label_names, rotation=45 if max(map(len, label_names), default=0) > 3 else 0,
                  ha="right" if max(map(len, label_names), default=0) > 3 else "center")
    ax.set_yticks(ticks, label_names)
    dark = counts.max() / 2 if counts.size and counts.max() > 0 else 0
    font = 12 if n <= 6 else 9 if n <= 15 else 7
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=font,
                    color="white" if count > dark else "black")  # white on dark cells
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    total = int(counts.sum())
    ax.set_title(f"Confusion matrix: {split} ({total:,} examples, accuracy "
                 f"{np.trace(counts) / max(total, 1):.3f})")
    return _png(fig)


def training_curves_png(history: dict[str, list[float]]) -> bytes:
    """One panel per metric: training and validation by epoch."""
    metrics = sorted({k.removeprefix("val_") for k in history if k not in ("lr", "learning_rate")})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key, style, split in ((metric, "-o", "training"), (f"val_{metric}", "--s", "validation")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=split)
        _epoch_axis(ax)
        ax.set_title(metric)
        ax.legend()
    fig.suptitle("Training and validation by epoch", y=1.02)
    return _png(fig)


def validation_curves_png(curves: dict[str, list[float]], metric: str = "validation accuracy") -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, "-o", label=name)
    _epoch_axis(ax)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by transfer mode")
    ax.legend()
    return _png(fig)


def bar_chart_png(names: list[str], values: list[float], ylabel: str, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bars = ax.bar(names, values, color="#4c78a8")
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)


def lr_finder_png(learning_rates: Sequence[float], losses: Sequence[float], smoothed: Sequence[float],
                  points: dict[str, tuple[float, float]]) -> bytes:
    """The learning-rate range test: loss against the (log-scale) rate, with the suggested rates marked."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(learning_rates, losses, color="#9ecae1", linewidth=1, label="loss per step")
    ax.plot(learning_rates, smoothed, color="#08519c", linewidth=2, label="smoothed loss")
    for (name, (rate, loss)), color in zip(points.items(), ("#d62728", "#2ca02c", "#ff7f0e")):
        ax.plot([rate], [loss], "o", color=color, markersize=8, label=f"{name}: {rate:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    finite = [v for v in [*losses, *smoothed] if np.isfinite(v)]
    if finite:  # the diverging tail would flatten the interesting part
        low, start = min(finite), smoothed[0] if np.isfinite(smoothed[0]) else max(finite)
        ax.set_ylim(low - 0.05 * abs(low), max(start, low) + 0.3 * abs(max(start, low)) + 1e-6)
    ax.set_title("Learning-rate range test")
    ax.legend()
    return _png(fig)
