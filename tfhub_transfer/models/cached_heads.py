"""Heads trained on the feature cache, then put back on the encoder model they came from.

The head model (per-layer pooled features -> LayerMix -> head) shares layer names with
the full model (encoder -> stack -> LayerMix -> pooling -> head), so after training its
weights are copied across and the full model predicts and exports as usual.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.layers.heads import ClassificationHead, tagging_head
from tfhub_transfer.layers.layer_mix import LayerMix
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.models.token_classifier import per_word_outputs
from tfhub_transfer.training.feature_cache import cached_dataset, cached_token_dataset
from tfhub_transfer.transfer.modes import TransferMode

NO_BACKUPS = "training from the feature cache takes seconds and keeps no backups"


@dataclasses.dataclass
class CachedExamples:
    """Cached features (a directory of shards) with their targets (class ids, rows, scores or tag ids)."""

    path: Path
    targets: np.ndarray | list
    count: int

    def __len__(self) -> int:
        return self.count


class _CachedHead(TaskModel):
    """Shared by both heads: they train only the mix and head, so the head's learning rate applies."""

    # --no-bucket is accepted: cached features hold no padding, so bucketing or not is the same.
    unsupported = {"resume": NO_BACKUPS, "backup_every_steps": NO_BACKUPS}

    def _take_over(self, model: TaskModel) -> None:
        self._setup(model.config, TransferMode("freeze"), model.spec, None, model.label_names)
        self.task = model.task

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        return self.reader(examples.path, examples.targets, batch_size, shuffle, seed)

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        return self.reader(examples.path, examples.targets, batch_size)

    def copy_weights_to(self, model: TaskModel) -> None:
        names = {layer.name for layer in model.layers}
        for layer in self.layers:
            if layer.weights and layer.name in names:
                model.get_layer(layer.name).set_weights(layer.get_weights())


class CachedHead(_CachedHead):
    """Per-layer pooled features [layers, hidden] -> LayerMix -> the classifier's head."""

    reader = staticmethod(cached_dataset)

    def __init__(self, model: TaskModel, layers: int, hidden: int):
        config = model.config
        features = tf_keras.Input(shape=(layers, hidden), name="features")
        mixed = LayerMix(config.layer_mix, layers, model.spec.has_embedding_output, name="layer_mix")(features)
        outputs = config.num_classes if config.task != "regression" else 1
        logits = ClassificationHead(outputs, config.dropout, config.seed, name="head")(mixed)
        super().__init__(inputs=features, outputs=logits, name="cached_head")
        self._take_over(model)


class CachedTaggerHead(_CachedHead):
    """Per-word per-layer features -> LayerMix -> the tagger's head, with the tagger's layer names."""

    reader = staticmethod(cached_token_dataset)

    def __init__(self, model: TaskModel, layers: int, hidden: int):
        config = model.config
        features = tf_keras.Input(shape=(None, layers, hidden), name="word_features")
        mask = tf_keras.Input(shape=(None,), dtype="bool", name="word_mask")
        by_layer = tf_keras.layers.Permute((2, 1, 3))(features)  # [batch, layers, words, hidden]
        words = LayerMix(config.layer_mix or "last", layers, model.spec.has_embedding_output,
                         name="layer_mix")(by_layer)
        logits = tagging_head(words, mask, config.num_tags, config.head, config.dropout, config.seed)
        super().__init__(inputs=[features, mask], outputs=logits, name="cached_tagger_head")
        self._take_over(model)

    def outputs_on(self, dataset: tf.data.Dataset) -> list[np.ndarray]:
        return per_word_outputs(self, dataset)
