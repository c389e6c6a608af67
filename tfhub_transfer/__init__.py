"""tfhub_transfer: transfer learning on text with TensorFlow Hub encoders in Keras (tf_keras).

The data's path, one sub-package per step:
data -> preprocessing -> encoders -> layers -> transfer -> training -> export -> models -> jobs -> cli.

The public names below are imported lazily, so `import tfhub_transfer` (and the CLI's
start-up) does not load TensorFlow until one of them is used.
"""

import logging
import os
import sys
from importlib import import_module

# Quiet by default: TensorFlow's C++ start-up logs (the cuInit error on machines without a GPU, oneDNN
# and CPU-feature notes, "Type inference failed" blocks) are noise to a user of this package. Set before
# any submodule imports TensorFlow, which reads it once; a value the user set is kept, and the CLI's
# `--debug` shows them.
_DEBUG_CLI = os.path.basename(sys.argv[0] if sys.argv else "") == "tfhub-transfer" and "--debug" in sys.argv
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _DEBUG_CLI else "3")

__version__ = "0.1.0"

_EXPORTS = {
    # Task models (Keras models) and loading them back
    "TextClassifier": "models.text_classifier", "TokenClassifier": "models.token_classifier",
    "MaskedLM": "models.masked_lm", "RnnClassifier": "models.rnn_classifier",
    "TextEmbeddingClassifier": "models.text_embedding_classifier", "TaskModel": "models.base",
    "load": "models.saving",
    # One-call jobs
    "train": "jobs.train", "TrainResult": "jobs.common", "pretrain": "jobs.pretrain",
    "PretrainConfig": "jobs.pretrain", "compare_modes": "jobs.compare", "study_layers": "jobs.study",
    # Configuration by concern
    "TrainConfig": "config", "DataConfig": "config", "ModelConfig": "config", "TransferConfig": "config",
    "OptimizationConfig": "config", "RuntimeConfig": "config", "OutputConfig": "config",
    "TransferMode": "transfer.modes", "GradualUnfreezing": "transfer.unfreezing",
    # Data, encoders, export
    "LabelVocabulary": "data.tables", "load_labelled": "data.tables", "read_table": "data.tables",
    "EncoderSpec": "encoders.resolve", "resolve_encoder": "encoders.resolve",
    "ExportedClassifier": "export.saved_model", "open_export": "export.formats",
    "TFLiteClassifier": "export.tflite", "OnnxClassifier": "export.onnx",
    # Errors
    "ConfigError": "errors", "DataError": "errors", "EncoderError": "errors", "TransferError": "errors",
    "TrainingDiverged": "errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(f"tfhub_transfer.{_EXPORTS[name]}"), name)
        _quiet_tensorflow_info_in_notebooks()
        return value
    raise AttributeError(f"module 'tfhub_transfer' has no attribute {name!r}")


_tensorflow_logger_checked = False


def _quiet_tensorflow_info_in_notebooks() -> None:
    """In a notebook or an interactive shell TensorFlow sets its Python logger to INFO, so each cell
    printed lines such as "INFO:tensorflow:Collective all_reduce tensors ..." (twice: stdout and stderr).
    Once TensorFlow is loaded, that interactive default goes back to WARNING; a level the user chose
    later is theirs."""
    global _tensorflow_logger_checked
    if _tensorflow_logger_checked or "tensorflow" not in sys.modules:
        return
    _tensorflow_logger_checked = True
    logger = sys.modules["tensorflow"].get_logger()
    if logger.level == logging.INFO:
        logger.setLevel(logging.WARNING)
