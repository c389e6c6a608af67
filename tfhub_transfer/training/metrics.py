"""Classification metrics: a streaming macro-F1 for Keras and numpy reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras


class MacroF1(tf_keras.metrics.Metric):
    """Macro-averaged F1 over classes, from logits/probabilities and integer labels."""

    def __init__(self, num_classes: int, name: str = "macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_weight(
            "confusion", shape=[num_classes, num_classes], initializer="zeros", dtype=tf.float32
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.reshape(tf.cast(y_true, tf.int32), [-1])
        y_pred = tf.argmax(y_pred, axis=-1, output_type=tf.int32)
        batch = tf.math.confusion_matrix(y_true, y_pred, self.num_classes, dtype=tf.float32)
        self.confusion.assign_add(batch)

    def result(self):
        return macro_f1_from_confusion(self.confusion)

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


def macro_f1_from_confusion(confusion):
    """Works on numpy arrays and tensors: rows are true classes, columns predictions."""
    diag = tf.linalg.diag_part(confusion)
    precision = tf.math.divide_no_nan(diag, tf.reduce_sum(confusion, axis=0))
    recall = tf.math.divide_no_nan(diag, tf.reduce_sum(confusion, axis=1))
    f1 = tf.math.divide_no_nan(2 * precision * recall, precision + recall)
    return tf.reduce_mean(f1)


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows: true, columns: predicted)."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(confusion, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return {
        "accuracy": float(np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "macro_f1": float(macro_f1_from_confusion(confusion.astype(np.float64)).numpy()),
        "confusion_matrix": confusion.tolist(),
        "examples": int(len(y_true)),
    }


class MultiLabelF1(tf_keras.metrics.Metric):
    """Micro-averaged F1 of multi-label predictions at a fixed threshold, from logits."""

    def __init__(self, num_labels: int, threshold: float = 0.5, name: str = "micro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_labels = num_labels
        self.threshold = threshold
        self.counts = self.add_weight("counts", shape=[3], initializer="zeros")  # tp, fp, fn

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = tf.cast(y_true, tf.bool)
        predicted = tf.sigmoid(tf.cast(y_pred, tf.float32)) >= self.threshold
        tp = tf.reduce_sum(tf.cast(truth & predicted, tf.float32))
        fp = tf.reduce_sum(tf.cast(~truth & predicted, tf.float32))
        fn = tf.reduce_sum(tf.cast(truth & ~predicted, tf.float32))
        self.counts.assign_add(tf.stack([tp, fp, fn]))

    def result(self):
        tp, fp, fn = self.counts[0], self.counts[1], self.counts[2]
        return tf.math.divide_no_nan(2 * tp, 2 * tp + fp + fn)

    def reset_state(self):
        self.counts.assign(tf.zeros_like(self.counts))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_labels": self.num_labels, "threshold": self.threshold}


def _f1(tp, fp, fn):
    return np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1e-12), 0.0)


def multilabel_scores(y_true: np.ndarray, predicted: np.ndarray) -> dict:
    truth, predicted = y_true.astype(bool), predicted.astype(bool)
    tp = (truth & predicted).sum(0).astype(float)
    fp = (~truth & predicted).sum(0).astype(float)
    fn = (truth & ~predicted).sum(0).astype(float)
    return {"micro_f1": float(_f1(tp.sum(), fp.sum(), fn.sum())), "macro_f1": float(_f1(tp, fp, fn).mean()),
            "per_label_f1": _f1(tp, fp, fn).tolist()}


def tune_thresholds(y_true: np.ndarray, probabilities: np.ndarray,
                    grid: np.ndarray | None = None) -> np.ndarray:
    """Per-label thresholds that maximise each label's F1 on the given (validation) data."""
    grid = np.linspace(0.05, 0.95, 19) if grid is None else grid
    thresholds = np.full(y_true.shape[1], 0.5)
    for label in range(y_true.shape[1]):
        truth = y_true[:, label].astype(bool)
        best = -1.0
        for t in grid:
            predicted = probabilities[:, label] >= t
            tp, fp = (truth & predicted).sum(), (~truth & predicted).sum()
            score = float(_f1(tp, fp, (truth & ~predicted).sum()))
            if score > best:
                best, thresholds[label] = score, t
    return thresholds


def multilabel_report(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """Micro/macro F1 at 0.5 and with per-label thresholds tuned on this data."""
    thresholds = tune_thresholds(y_true, probabilities)
    at_half = multilabel_scores(y_true, probabilities >= 0.5)
    tuned = multilabel_scores(y_true, probabilities >= thresholds)
    return {"micro_f1": at_half["micro_f1"], "macro_f1": at_half["macro_f1"],
            "tuned_micro_f1": tuned["micro_f1"], "tuned_macro_f1": tuned["macro_f1"],
            "thresholds": thresholds.tolist(), "examples": int(len(y_true))}


def _ranks(values: np.ndarray) -> np.ndarray:
    import pandas as pd

    return pd.Series(values).rank(method="average").to_numpy()


def regression_report(y_true: np.ndarray, predicted: np.ndarray) -> dict:
    """MSE, Pearson and Spearman correlations."""
    y_true, predicted = np.asarray(y_true, float).ravel(), np.asarray(predicted, float).ravel()

    def pearson(a, b):
        a, b = a - a.mean(), b - b.mean()
        denominator = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / denominator) if denominator > 0 else 0.0

    return {"mse": float(np.mean((y_true - predicted) ** 2)), "pearson": pearson(y_true, predicted),
            "spearman": pearson(_ranks(y_true), _ranks(predicted)), "examples": int(len(y_true))}


def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) spans of an IOB2 sequence; a stray I- starts a new span, as seqeval does."""
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        if kind is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.add((kind, start, i))
            kind = None
        if tag.startswith("B-") or (tag.startswith("I-") and kind is None):
            kind, start = tag[2:], i
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision / recall / F1 (CoNLL evaluation)."""
    tp = fp = fn = 0
    for g, p in zip(gold, predicted):
        gs, ps = entity_spans(g), entity_spans(p)
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "entities": tp + fn}
