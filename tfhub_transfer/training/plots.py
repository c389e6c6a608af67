"""PNG reports saved next to an export: confusion matrix and training curves."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def confusion_matrix_png(confusion: Sequence[Sequence[int]], label_names: Sequence[str]) -> bytes:
    size = max(4, 0.5 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ticks = range(len(label_names))
    ax.set_xticks(ticks, label_names, rotation=45, ha="right")
    ax.set_yticks(ticks, label_names)
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Validation confusion matrix")
    return _png(fig)


def training_curves_png(history: dict[str, list[float]]) -> bytes:
    metrics = sorted({k.removeprefix("val_") for k in history if k != "lr"})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    return _png(fig)


def validation_curves_png(curves: dict[str, list[float]], metric: str = "validation accuracy") -> bytes:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, "-o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by transfer mode")
    ax.legend()
    return _png(fig)


def bar_chart_png(names: list[str], values: list[float], ylabel: str, title: str) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(names, values, color="#4c78a8")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    return _png(fig)
