"""tfhub_transfer: transfer learning on text with TensorFlow Hub encoders in Keras (tf_keras).

The data's path, one module per step:
data -> preprocessing -> encoders (hub.KerasLayer) -> layer mix / pooling -> heads -> training -> export.

The public names below are imported lazily, so `import tfhub_transfer` (and the CLI's
start-up) does not load TensorFlow until one of them is used.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "LabelVocabulary": "data", "load_labelled": "data", "read_table": "data",
    "EncoderSpec": "encoders.handles", "resolve_encoder": "encoders.handles",
    "ConfigError": "errors", "DataError": "errors", "EncoderError": "errors", "TransferError": "errors",
    "ExportedClassifier": "export", "export_classifier": "export",
    "ClassifierConfig": "model", "build_classifier": "model",
    "TextPreprocessor": "preprocessing", "make_dataset": "preprocessing",
    "TrainConfig": "training", "TrainResult": "training", "train": "training",
    "build_rnn_classifier": "rnn_classifier", "PretrainConfig": "pretraining", "pretrain": "pretraining",
    "TaggerTrainConfig": "token_classification", "train_tagger": "token_classification",
    "compare_modes": "comparison", "study_layers": "layer_study",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"tfhub_transfer.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'tfhub_transfer' has no attribute {name!r}")
