"""Training the layer mix and head from the feature cache, then putting them back on the encoder.

The head model (per-layer pooled features -> LayerMix -> head) shares layer names
with the full model (encoder -> stack -> LayerMix -> pooling -> head), so after
training its weights are copied across and the full model exports as usual.
"""

from __future__ import annotations

import math

import tf_keras

from tfhub_transfer.callbacks import RestoreBestWeights
from tfhub_transfer.data import LabelledSplits
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.feature_cache import FeatureSpec, build_feature_cache, cached_dataset, read_manifest
from tfhub_transfer.heads import ClassificationHead
from tfhub_transfer.layer_mix import LayerMix
from tfhub_transfer.schedules import make_schedule
from tfhub_transfer.tasks import TASK_SPECS, validation_report
from tfhub_transfer.transfer_model import TransferModel

HEAD_LAYERS = ("layer_mix", "head")


def build_cached_head(model: TransferModel, layers: int, hidden: int) -> TransferModel:
    config = model.config
    features = tf_keras.Input(shape=(layers, hidden), name="features")
    mixed = LayerMix(config.layer_mix, layers, model.spec.has_embedding_output, name="layer_mix")(features)
    outputs = config.num_classes if config.task != "regression" else 1
    logits = ClassificationHead(outputs, config.dropout, config.seed, name="head")(mixed)
    head = TransferModel(inputs=features, outputs=logits, name="cached_head")
    head.config = config
    return head


def copy_head_weights(head: TransferModel, model: TransferModel) -> None:
    for name in HEAD_LAYERS:
        model.get_layer(name).set_weights(head.get_layer(name).get_weights())


def fit_from_cache(model: TransferModel, splits: LabelledSplits, config) -> tuple[dict, dict]:
    """Encodes train and validation once, fits mix + head on the cache, copies them into `model`."""
    from tfhub_transfer.training import compile_classifier, num_outputs, predict_outputs

    if model.mode is None or model.mode.kind != "freeze" or model.preprocessor is None:
        raise ConfigError("the feature cache needs an encoder model in transfer mode `freeze`")
    feature = FeatureSpec(model.config.pooling, model.config.seq_length)
    encoder = model.get_layer("encoder")
    paths = [build_feature_cache(encoder, model.preprocessor, model.spec, feature, table.texts,
                                 table.texts_b, verbose=config.verbose)
             for table in (splits.train, splits.valid)]
    manifest = read_manifest(paths[0])
    head = build_cached_head(model, manifest["layers"], manifest["hidden"])
    train_ds = cached_dataset(paths[0], splits.train_ids, config.batch_size, config.shuffle, config.seed)
    valid_ds = cached_dataset(paths[1], splits.valid_ids, config.batch_size)
    steps = math.ceil(len(splits.train) / config.batch_size) * config.epochs
    schedule = make_schedule(config.schedule, config.resolved_learning_rate(), steps, config.warmup_fraction)
    outputs = num_outputs(splits)
    compile_classifier(head, schedule, outputs, config.optimizer, config.weight_decay, splits.task)
    task = TASK_SPECS[splits.task]
    history = head.fit(train_ds, validation_data=valid_ds, epochs=config.epochs, verbose=config.verbose,
                       callbacks=[RestoreBestWeights(task.monitor, task.monitor_mode)])
    copy_head_weights(head, model)
    report = validation_report(splits.task, splits.valid_ids, predict_outputs(head, valid_ds), outputs)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}, report


def build_cached_tagger_head(model: TransferModel, layers: int, hidden: int) -> TransferModel:
    """Per-word per-layer features -> LayerMix -> the tagger's head, with the tagger's layer names."""
    from tfhub_transfer.token_classification import tagging_head

    config = model.config
    features = tf_keras.Input(shape=(None, layers, hidden), name="word_features")
    mask = tf_keras.Input(shape=(None,), dtype="bool", name="word_mask")
    by_layer = tf_keras.layers.Permute((2, 1, 3))(features)  # [batch, layers, words, hidden]
    mix = config.layer_mix or "last"
    words = LayerMix(mix, layers, model.spec.has_embedding_output, name="layer_mix")(by_layer)
    head = TransferModel(inputs=[features, mask], outputs=tagging_head(words, mask, config),
                         name="cached_tagger_head")
    head.config = config
    return head


def copy_tagger_weights(head: TransferModel, model: TransferModel) -> None:
    for layer in head.layers:
        if layer.weights and layer.name in {lay.name for lay in model.layers}:
            model.get_layer(layer.name).set_weights(layer.get_weights())
