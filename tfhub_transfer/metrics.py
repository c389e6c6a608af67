"""Classification metrics: a streaming macro-F1 for Keras and numpy reports."""

from __future__ import annotations

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
