"""Builds task models: inputs -> Hub encoder -> pooling -> head."""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.handles import EncoderSpec, resolve_encoder
from tfhub_transfer.encoders.loading import check_compatible, load_encoder_layer
from tfhub_transfer.heads import ClassificationHead
from tfhub_transfer.pooling import SequencePooling
from tfhub_transfer.preprocessing import TextPreprocessor
from tfhub_transfer.transfer_modes import encoder_trainable

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """What `build_classifier` builds; stored with every run so it can be rebuilt."""

    num_classes: int
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"
    pooling: str | None = None  # None: the encoder's own recommendation
    dropout: float = 0.1
    seq_length: int = 128
    seed: int | None = None


def encoder_inputs() -> dict[str, tf_keras.Input]:
    return {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in INPUT_NAMES}


class TransferModel(tf_keras.Model):
    """A functional model that also remembers its encoder, preprocessor and config."""

    spec: EncoderSpec
    preprocessor: TextPreprocessor
    config: ClassifierConfig


def build_classifier(
    encoder: str = "default",
    num_classes: int = 2,
    mode: str = "finetune",
    pooling: str | None = None,
    dropout: float = 0.1,
    preprocessor: str | None = None,
    seq_length: int = 128,
    seed: int | None = None,
) -> TransferModel:
    """A single-label classifier on a TF Hub encoder; outputs logits.

    Args:
      encoder: `default`, a catalogue name, a local encoder directory or a hub handle.
      num_classes: number of classes (>= 2).
      mode: transfer mode, `freeze` (feature extraction) or `finetune`.
      pooling: `cls`, `first`, `mean` or `max`; None uses the encoder's recommendation.
      dropout: dropout rate before the output layer.
      preprocessor: the matching preprocessor, when `encoder` is a bare SavedModel.
      seq_length: the longest packed input the pipeline will produce.
      seed: seeds the head's initialiser and dropout.
    """
    config = ClassifierConfig(
        num_classes, encoder, preprocessor, mode, pooling, dropout, seq_length, seed
    )
    return build_classifier_from_config(config)


def build_classifier_from_config(config: ClassifierConfig) -> TransferModel:
    if config.num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, not {config.num_classes}")
    spec = resolve_encoder(config.encoder, config.preprocessor)
    preprocessor = TextPreprocessor(spec.preprocessor)
    layer = load_encoder_layer(spec, trainable=encoder_trainable(config.mode))
    check_compatible(layer, spec, preprocessor.vocab_size, config.seq_length)
    inputs = encoder_inputs()
    outputs = layer(inputs)
    features = SequencePooling(config.pooling or spec.pooling, name="pooling")(
        outputs, inputs["input_mask"]
    )
    logits = ClassificationHead(config.num_classes, config.dropout, config.seed, name="head")(features)
    model = TransferModel(inputs=inputs, outputs=logits, name="classifier")
    model.spec, model.preprocessor, model.config = spec, preprocessor, config
    return model
