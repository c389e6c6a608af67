"""Heads trained on the feature cache, then put back on the encoder model they came from.

The head model (per-layer pooled features -> LayerMix -> head) shares layer names with
the full model (encoder -> stack -> LayerMix -> pooling -> head), so after training its
weights are copied across and the full model predicts and exports as usual.

The sentence head standardises its inputs (`FeatureScaling`, from the training features:
each feature centred and divided by its spread, as a logistic-regression probe does), which
makes a linear head train fast and well. The standardisation is affine and every layer mix
is linear, so it folds into the head's kernel and bias when the weights are copied back:
the full model, and its raw-string export, need no extra layer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.layers.heads import ClassificationHead, RecurrentPooling, tagging_head
from tfhub_transfer.layers.layer_mix import LayerMix, top_layers_read
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.models.token_classifier import per_word_outputs
from tfhub_transfer.training.feature_cache import (
    FeatureSpec,
    build_feature_cache,
    build_sequence_feature_cache,
    cached_dataset,
    cached_sequence_dataset,
    cached_token_dataset,
    read_manifest,
)
from tfhub_transfer.training.tasks import task_spec
from tfhub_transfer.transfer.modes import TransferMode

NO_BACKUPS = "training from the feature cache keeps no backups: a re-run reads the cache, it does not encode again"


@dataclasses.dataclass
class CachedExamples:
    """Cached features (a directory of shards) with their targets (class ids, rows, scores or tag ids)."""

    path: Path
    targets: np.ndarray | list
    count: int
    weights: np.ndarray | None = None  # per-example training weights (class weights are applied by the loop)

    def __len__(self) -> int:
        return self.count


class _CachedHead(TaskModel):
    """Shared by both heads: they train only the mix and head, so the head's learning rate applies."""

    new_head = True

    # --no-bucket is accepted: cached features hold no padding, so bucketing or not is the same.
    unsupported = {"resume": NO_BACKUPS, "backup_every_steps": NO_BACKUPS}

    def _take_over(self, model: TaskModel) -> None:
        self._setup(model.config, TransferMode.parse("freeze"), model.spec, None, model.label_names)
        self.task = model.task

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        return self.reader(examples.path, examples.targets, batch_size, shuffle, seed)

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        return self.reader(examples.path, examples.targets, batch_size)

    def _penalise(self, head: ClassificationHead, l2: float) -> None:
        """Adds `l2` x the squared logits kernel to the loss (--tune-head sweeps it)."""
        self.l2 = float(l2)
        if l2:
            self.add_loss(lambda: self.l2 * tf.reduce_sum(tf.square(head.logits.kernel)))

    def copy_weights_to(self, model: TaskModel) -> None:
        names = {layer.name for layer in model.layers}
        for layer in self.layers:
            if layer.weights and layer.name in names:
                model.get_layer(layer.name).set_weights(layer.get_weights())


@dataclasses.dataclass
class FeatureScaling:
    """Standardisation of cached features: `mean` [layers, hidden] of the training features, and `scale`,
    the spread of each mixed feature of the centred training features (its standard deviation)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of_cache(cls, path: str | Path, mix: LayerMix, batch_size: int = 4096) -> FeatureScaling:
        """Reads the training features twice: their mean, then the spread of `mix` of the centred ones."""
        count = read_manifest(path)["examples"]
        batches = cached_dataset(path, np.zeros(count, np.int32), batch_size).map(lambda x, _: x)
        total = sum(np.sum(x.numpy(), axis=0, dtype=np.float64) for x in batches)
        mean = (total / max(count, 1)).astype(np.float32)
        squares = sum(np.sum(np.square(mix(x - mean).numpy()), axis=0, dtype=np.float64) for x in batches)
        spread = np.sqrt(squares / max(count, 1)).astype(np.float32)
        floor = 1e-3 * float(spread.mean()) if spread.size and spread.mean() > 0 else 1.0
        return cls(mean, np.maximum(spread, floor))  # a constant feature is not blown up


class _Centre(tf_keras.layers.Layer):
    def __init__(self, mean: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.mean = tf.constant(mean)

    def call(self, features):
        return features - self.mean


class _Scale(tf_keras.layers.Layer):
    def __init__(self, scale: np.ndarray, **kwargs):
        super().__init__(**kwargs)
        self.inverse = tf.constant(1.0 / scale)

    def call(self, features):
        return features * self.inverse


class CachedHead(_CachedHead):
    """Per-layer pooled features [layers, hidden] -> (centred) -> LayerMix -> (scaled) -> the classifier's head.

    With `scaling` the head trains on standardised features; `copy_weights_to` folds the
    standardisation into the full model's head. `l2` adds that penalty on the head's kernel.
    """

    reader = staticmethod(cached_dataset)

    def __init__(self, model: TaskModel, layers: int, hidden: int, scaling: FeatureScaling | None = None,
                 l2: float = 0.0):
        config = model.config
        features = tf_keras.Input(shape=(layers, hidden), name="features")
        centred = _Centre(scaling.mean, name="feature_centre")(features) if scaling is not None else features
        mixed = mix_layer(model, layers)(centred)
        if scaling is not None:
            mixed = _Scale(scaling.scale, name="feature_scale")(mixed)
        outputs = config.num_classes if task_spec(config.task).target != "number" else 1
        head = ClassificationHead(outputs, config.dropout, config.seed, name="head")
        logits = head(mixed)
        super().__init__(inputs=features, outputs=logits, name="cached_head")
        self._take_over(model)
        self.scaling = scaling
        self._penalise(head, l2)

    @staticmethod
    def encode(model: TaskModel, texts, texts_b=None, verbose: int = 1) -> Path:
        """The cache of `model`'s per-layer pooled features of these texts (encoded now unless already there)."""
        feature = FeatureSpec(model.config.pooling, model.config.seq_length)
        return build_feature_cache(model.get_layer("encoder"), model.preprocessor, model.spec, feature, texts,
                                   texts_b, verbose=verbose)

    @classmethod
    def on_cache(cls, model: TaskModel, path: str | Path, standardize: bool = True, l2: float = 0.0) -> CachedHead:
        """A head for the cache at `path` (the training features), standardising them unless told not to."""
        manifest = read_manifest(path)
        scaling = FeatureScaling.of_cache(path, mix_layer(model, manifest["layers"])) if standardize else None
        return cls(model, manifest["layers"], manifest["hidden"], scaling, l2)

    def with_l2(self, model: TaskModel, l2: float) -> CachedHead:
        """A fresh head like this one (the same features and standardisation) with that L2 penalty."""
        return type(self)(model, self.input_shape[1], self.input_shape[2], self.scaling, l2)

    def copy_weights_to(self, model: TaskModel) -> None:
        """The mix and head weights, the standardisation folded into the head:
        W z + b with z = (mix(x) - mix(mean)) / scale is (W / scale) mix(x) + b - (mix(mean) / scale) W."""
        super().copy_weights_to(model)
        if self.scaling is None:
            return
        mixed_mean = self.get_layer("layer_mix")(self.scaling.mean[np.newaxis]).numpy()[0]
        head = model.get_layer("head")
        kernel, bias = head.get_weights()
        inverse = (1.0 / self.scaling.scale).astype(np.float32)
        head.set_weights([kernel * inverse[:, np.newaxis], bias - (mixed_mean * inverse) @ kernel])


class CachedSequenceHead(_CachedHead):
    """Per-token features of the top layers the mix reads -> LayerMix -> the BiLSTM head (`head="bilstm"`).

    The features go in as cached: the BiLSTM's input kernel learns its own scale, and standardising them
    would not fold back into the full model as it does for a linear head.
    """

    reader = staticmethod(cached_sequence_dataset)

    def __init__(self, model: TaskModel, layers: int, hidden: int, l2: float = 0.0):
        config = model.config
        features = tf_keras.Input(shape=(None, layers, hidden), name="token_features")
        mask = tf_keras.Input(shape=(None,), dtype="bool", name="token_mask")
        by_layer = tf_keras.layers.Permute((2, 1, 3))(features)  # [batch, layers, tokens, hidden]
        states = mix_layer(model, layers, top_only=top_layers_read(config.layer_mix) is not None)(by_layer)
        pooled = RecurrentPooling(dropout=config.dropout, seed=config.seed, name="bilstm_pooling")(states, mask)
        outputs = config.num_classes if task_spec(config.task).target != "number" else 1
        head = ClassificationHead(outputs, config.dropout, config.seed, name="head")
        super().__init__(inputs=[features, mask], outputs=head(pooled), name="cached_sequence_head")
        self._take_over(model)
        self._penalise(head, l2)

    @staticmethod
    def encode(model: TaskModel, texts, texts_b=None, verbose: int = 1) -> Path:
        """The cache of every token's features from the top layers `model`'s mix reads (encoded now unless
        already there)."""
        config = model.config
        return build_sequence_feature_cache(model.get_layer("encoder"), model.preprocessor, model.spec,
                                            config.seq_length, top_layers_read(config.layer_mix), texts, texts_b,
                                            verbose=verbose)

    @classmethod
    def on_cache(cls, model: TaskModel, path: str | Path, standardize: bool = True,
                 l2: float = 0.0) -> CachedSequenceHead:
        """A head for the token cache at `path` (`standardize` does not apply, see the class)."""
        manifest = read_manifest(path)
        return cls(model, manifest["layers"], manifest["hidden"], l2)

    def with_l2(self, model: TaskModel, l2: float) -> CachedSequenceHead:
        """A fresh head like this one (the same token features) with that L2 penalty."""
        return type(self)(model, self.input_shape[0][2], self.input_shape[0][3], l2)


def mix_layer(model: TaskModel, layers: int, top_only: bool = False) -> LayerMix:
    """A fresh layer mix of `model`'s kind over `layers` stacked layers (named as the model's); `top_only`: the
    cache kept only the top layers the mix reads, so the embeddings are not among them."""
    has_embeddings = model.spec.has_embedding_output and not top_only
    return LayerMix(model.config.layer_mix, layers, has_embeddings, name="layer_mix")


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
