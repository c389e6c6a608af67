"""Builds task models: inputs -> Hub encoder -> pooling -> head."""

from __future__ import annotations

import dataclasses

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.handles import resolve_encoder
from tfhub_transfer.encoders.loading import check_compatible, load_encoder_layer
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.heads import ClassificationHead
from tfhub_transfer.layer_groups import layer_groups
from tfhub_transfer.layer_mix import LayerMix, StackLayers
from tfhub_transfer.pooling import SequencePooling
from tfhub_transfer.preprocessing import TextPreprocessor
from tfhub_transfer.reinit import reinitialize
from tfhub_transfer.transfer_model import TransferModel
from tfhub_transfer.transfer_modes import TransferMode

INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """What `build_classifier` builds; stored with every run so it can be rebuilt."""

    num_classes: int
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"  # a TransferMode spec: freeze, finetune, partial:3, gradual, ...
    embedding_lr_multiplier: float | None = None
    pooling: str | None = None  # None: the encoder's own recommendation (mean with a layer mix)
    dropout: float = 0.1
    seq_length: int = 128
    seed: int | None = None
    task: str = "single_label"  # single_label | multi_label | regression
    layer_mix: str | None = None  # None: the encoder's last layer / pooled output; see layer_mix.py
    pair: bool = False  # two text inputs (text_a, text_b)


def encoder_inputs() -> dict[str, tf_keras.Input]:
    return {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in INPUT_NAMES}


def build_classifier(
    encoder: str = "default",
    num_classes: int = 2,
    mode: str = "finetune",
    pooling: str | None = None,
    dropout: float = 0.1,
    preprocessor: str | None = None,
    seq_length: int = 128,
    seed: int | None = None,
    embedding_lr_multiplier: float | None = None,
) -> TransferModel:
    """A single-label classifier on a TF Hub encoder; outputs logits.

    Args:
      encoder: `default`, a catalogue name, a local encoder directory or a hub handle.
      num_classes: number of classes (>= 2).
      mode: transfer mode: `freeze`, `finetune`, `partial:K`, `gradual[:STEPS]`,
        `discriminative[:DECAY]`, `slow_embeddings:FACTOR` or `reinit` (see transfer_modes).
      pooling: `cls`, `first`, `mean` or `max`; None uses the encoder's recommendation.
      dropout: dropout rate before the output layer.
      preprocessor: the matching preprocessor, when `encoder` is a bare SavedModel.
      seq_length: the longest packed input the pipeline will produce.
      seed: seeds the head's initialiser and dropout (and `reinit`'s weights).
      embedding_lr_multiplier: scales the embeddings' learning rate (slow embeddings).
    """
    config = ClassifierConfig(
        num_classes, encoder, preprocessor, mode, embedding_lr_multiplier, pooling, dropout,
        seq_length, seed,
    )
    return build_classifier_from_config(config)


def build_classifier_from_config(config: ClassifierConfig) -> TransferModel:
    if config.num_classes < 2 and config.task != "regression":
        raise ValueError(f"num_classes must be at least 2, not {config.num_classes}")
    mode = TransferMode.parse(config.mode, config.embedding_lr_multiplier)
    spec = resolve_encoder(config.encoder, config.preprocessor)
    preprocessor = TextPreprocessor(spec.preprocessor)
    layer = load_encoder_layer(spec, trainable=mode.encoder_trainable)
    check_compatible(layer, spec, preprocessor.vocab_size, config.seq_length)
    inputs = encoder_inputs()
    features = encoder_features(layer(inputs), inputs["input_mask"], config, spec)
    outputs = config.num_classes if config.task != "regression" else 1
    logits = ClassificationHead(outputs, config.dropout, config.seed, name="head")(features)
    model = TransferModel(inputs=inputs, outputs=logits, name="classifier")
    model.spec, model.preprocessor, model.config, model.mode = spec, preprocessor, config, mode
    apply_transfer_mode(model, layer, mode, config.seed or 0)
    return model


def encoder_features(outputs: dict, input_mask, config: ClassifierConfig, spec) -> tf.Tensor:
    """Pooled features: the encoder's own outputs, or a layer mix then pooling."""
    if config.layer_mix is None:
        return SequencePooling(config.pooling or spec.pooling, name="pooling")(outputs, input_mask)
    stacked = StackLayers(need_embeddings=config.layer_mix == "embeddings", name="stack_layers")(outputs)
    mixed = LayerMix(config.layer_mix, int(stacked.shape[1]), spec.has_embedding_output,
                     name="layer_mix")(stacked)
    pooling = config.pooling if config.pooling not in (None, "cls") else "mean"
    return SequencePooling(pooling, name="pooling")(mixed, input_mask)


def apply_transfer_mode(model: TransferModel, layer, mode: TransferMode, seed: int = 0) -> None:
    """Sets the model's layer groups, initially frozen groups and LR multipliers."""
    if mode.kind == "reinit":
        reinitialize(layer.weights, seed)
    try:
        groups = layer_groups(layer.weights, model.spec.name)
    except EncoderError:
        if mode.needs_groups:
            raise
        return  # freeze / finetune / reinit work on encoders whose names do not group
    model.layer_groups = groups
    model.lr_multipliers = mode.learning_rate_multipliers(groups)
    model.set_frozen_groups(mode.initially_frozen(groups))
