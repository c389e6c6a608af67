"""tfhub_transfer: transfer learning on text with TensorFlow Hub encoders in Keras (tf_keras).

The data's path, one module per step:
data -> preprocessing -> encoders (hub.KerasLayer) -> pooling -> heads -> training -> export.
"""

from tfhub_transfer.data import LabelVocabulary, load_labelled, read_table
from tfhub_transfer.encoders.handles import EncoderSpec, resolve_encoder
from tfhub_transfer.errors import ConfigError, DataError, EncoderError, TransferError
from tfhub_transfer.export import ExportedClassifier, export_classifier
from tfhub_transfer.model import ClassifierConfig, build_classifier
from tfhub_transfer.preprocessing import TextPreprocessor, make_dataset
from tfhub_transfer.training import TrainConfig, TrainResult, train

__version__ = "0.1.0"

__all__ = [
    "ClassifierConfig", "ConfigError", "DataError", "EncoderError", "EncoderSpec",
    "ExportedClassifier", "LabelVocabulary", "TextPreprocessor", "TrainConfig", "TrainResult",
    "TransferError", "build_classifier", "export_classifier", "load_labelled", "make_dataset",
    "read_table", "resolve_encoder", "train",
]
