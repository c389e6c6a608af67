"""`evaluate`: scores an exported classifier on labelled data and shows where it goes wrong.

The report holds accuracy, macro-F1, the confusion matrix, precision / recall / F1 per class
and the misclassified examples ordered by their loss (the "top losses" of fastai / ktrain).
`format_report` prints it as tables with the label names; `write_report` writes
`metrics.json`, `confusion_matrix.png` and `errors.tsv` into a directory of their own.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from tfhub_transfer import storage
from tfhub_transfer.data.tables import label_key, read_table
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.export.formats import open_export
from tfhub_transfer.files import MARKER, atomic_directory
from tfhub_transfer.training.metrics import classification_report
from tfhub_transfer.training.plots import confusion_matrix_png

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"
ERRORS_FILE = "errors.tsv"
ERROR_COLUMNS = ("loss", "true_label", "predicted_label", "predicted_probability", "true_probability", "where",
                 "text")


def per_class_scores(confusion: np.ndarray, names: list[str]) -> dict[str, dict]:
    """Precision, recall, F1 and support of each class, then their macro and support-weighted averages."""
    confusion = np.asarray(confusion, np.float64)
    hits = np.diag(confusion)
    predicted, support = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    scores = {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
              for name, p, r, f, s in zip(names, precision, recall, f1, support)}
    weights = support / max(support.sum(), 1)
    for average, w in (("macro avg", np.full(len(names), 1 / max(len(names), 1))), ("weighted avg", weights)):
        scores[average] = {"precision": float(precision @ w), "recall": float(recall @ w), "f1": float(f1 @ w),
                           "support": int(support.sum())}
    return scores


def top_losses(table, truth: np.ndarray, probabilities: np.ndarray, names: list[str]) -> list[dict]:
    """The misclassified examples, highest cross-entropy loss first."""
    predicted = probabilities.argmax(axis=-1)
    true_probability = probabilities[np.arange(len(truth)), truth]
    losses = -np.log(np.clip(true_probability, 1e-12, 1.0))
    wrong = np.flatnonzero(predicted != truth)
    order = wrong[np.argsort(-losses[wrong], kind="stable")]
    return [{"loss": float(losses[i]), "true_label": names[truth[i]], "predicted_label": names[predicted[i]],
             "predicted_probability": float(probabilities[i, predicted[i]]),
             "true_probability": float(true_probability[i]), "where": table.locations[i], "text": table.texts[i]}
            for i in order]


def evaluate_exported(model_path: str | Path, data, text_column: str = "text", label_column: str = "label",
                      out_dir: str | Path | None = None) -> dict:
    """Scores an export on a labelled file or frame; with `out_dir`, writes the report there (`write_report`).

    Returns accuracy, macro_f1, confusion_matrix (rows: true, columns: predicted), examples, labels,
    per_class (precision / recall / F1 / support, with macro and weighted averages), loss (mean
    cross-entropy), misclassified, and errors: the misclassified examples, highest loss first.
    """
    if out_dir is not None:
        check_report_dir(out_dir)  # before the work, not after
    model = open_export(model_path)
    task = model.info.get("task", "single_label")
    if task != "single_label":
        raise ConfigError(f"evaluate scores single-label classifiers; {model_path} is a {task} model "
                          "(its validation report is in its assets.extra/metrics.json)")
    names = model.info.get("labels")
    if not names:
        raise DataError(f"{model_path} has no label list in its assets.extra; re-export it.")
    table = read_table(data, text_column, label_column)
    index = {name: i for i, name in enumerate(names)}
    keys = [label_key(y) for y in table.labels]
    unknown = sorted({k for k in keys if k not in index})
    if unknown:
        raise DataError(f"{table.source}: labels {unknown} are not among the model's {names}.")
    truth = np.array([index[k] for k in keys], np.int64)
    probabilities = np.asarray(model.predict(table.texts)["probabilities"], np.float64)
    report = classification_report(truth, probabilities.argmax(axis=-1), len(names))
    errors = top_losses(table, truth, probabilities, names)
    true_probability = probabilities[np.arange(len(truth)), truth] if len(truth) else np.ones(1)
    report.update(labels=list(names), per_class=per_class_scores(np.array(report["confusion_matrix"]), names),
                  loss=float(np.mean(-np.log(np.clip(true_probability, 1e-12, 1.0)))), misclassified=len(errors),
                  data=str(table.source), model=str(model_path), errors=errors)
    if out_dir is not None:
        write_report(out_dir, report)
    return report


def errors_tsv(errors: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(ERROR_COLUMNS)
    for error in errors:
        writer.writerow([f"{v:.4f}" if isinstance(v, float) else v for v in (error[c] for c in ERROR_COLUMNS)])
    return buffer.getvalue()


def check_report_dir(out_dir: str | Path) -> storage.Location:
    """A report goes into a new (or empty) directory, or replaces one an earlier report wrote; never a user's.

    `out_dir` may be a URL (gs://): the report is then published there with its `_COMPLETE` marker last.
    """
    out = storage.location(out_dir)
    ours = storage.exists(storage.join(out, MARKER))
    if storage.exists(out) and (not storage.isdir(out) or (storage.listdir(out) and not ours)):
        raise ConfigError(f"--out {out} exists and was not written by tfhub_transfer; evaluate writes its "
                          "report into a new directory (or replaces its own earlier one): choose another --out")
    return out


def write_report(out_dir: str | Path, report: dict) -> Path:
    """Writes metrics.json (the report without the examples), confusion_matrix.png and errors.tsv into
    `out_dir`: a new directory, or one an earlier report wrote (never a directory of the user's)."""
    out = check_report_dir(out_dir)
    metrics = {k: v for k, v in report.items() if k != "errors"}
    split = storage.basename(report["data"]) if report.get("data") else "evaluated data"
    with atomic_directory(out, overwrite=True) as tmp:
        (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (tmp / CONFUSION_FILE).write_bytes(confusion_matrix_png(report["confusion_matrix"], report["labels"], split))
        (tmp / ERRORS_FILE).write_text(errors_tsv(report["errors"]), encoding="utf-8")
    return out


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                               enumerate(zip(row, widths))).rstrip() for row in rows)


def format_report(report: dict, shown_errors: int = 5) -> str:
    """The report as text: headline, confusion matrix and per-class table with label names, top losses."""
    names = report["labels"]
    lines = [f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, loss {report['loss']:.4f} "
             f"on {report['examples']:,} examples ({report['misclassified']:,} misclassified)", "",
             "confusion matrix (rows: true label, columns: predicted label)"]
    lines.append(_table([["true \\ predicted", *names]] +
                        [[name, *map(str, row)] for name, row in zip(names, report["confusion_matrix"])]))
    lines.append("")
    rows = [["label", "precision", "recall", "f1", "support"]]
    for name, scores in report["per_class"].items():
        if name == "macro avg":
            rows.append(["", "", "", "", ""])
        rows.append([name, *(f"{scores[k]:.4f}" for k in ("precision", "recall", "f1")), str(scores["support"])])
    lines.append(_table(rows))
    if report["errors"] and shown_errors:
        lines += ["", f"highest-loss errors (of {len(report['errors']):,}):"]
        for error in report["errors"][:shown_errors]:
            text = " ".join(error["text"].split())
            lines.append(f"  loss {error['loss']:.3f}  true {error['true_label']}, predicted "
                         f"{error['predicted_label']} ({error['predicted_probability']:.3f})  "
                         f"{text[:100] + '...' if len(text) > 100 else text}")
    return "\n".join(lines)
