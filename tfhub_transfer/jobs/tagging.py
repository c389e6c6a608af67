"""`--task tokens`: a tagger (NER) trained on CoNLL files through the one loop, scored by entity F1."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.conll import TaggedSentences, read_conll, tag_vocabulary
from tfhub_transfer.errors import DataError
from tfhub_transfer.jobs.common import TrainResult, announce, finish
from tfhub_transfer.models.cached_heads import CachedExamples, CachedTaggerHead
from tfhub_transfer.models.token_classifier import TaggerConfig, TokenClassifier, tags_from_outputs
from tfhub_transfer.training.callbacks import TENSORBOARD_DIR
from tfhub_transfer.training.feature_cache import build_token_feature_cache, read_manifest
from tfhub_transfer.training.loop import FitOutcome, fit_task
from tfhub_transfer.training.metrics import entity_f1


def read_tagged_splits(config: TrainConfig) -> tuple[TaggedSentences, TaggedSentences]:
    """Training and validation sentences; without --valid, a seeded --validation-fraction is held out."""
    train_sents = read_conll(config.train, max_sentences=config.max_train_examples)
    if config.valid:
        return train_sents, read_conll(config.valid)
    order = np.random.default_rng(config.seed).permutation(len(train_sents))
    cut = max(1, int(round(len(order) * config.validation_fraction)))
    return train_sents.subset(order[cut:]), train_sents.subset(order[:cut])


def tagger_config(config: TrainConfig, num_tags: int) -> TaggerConfig:
    """The tagger `config` describes: built from its model and transfer slices (see TaggerConfig.from_slices)."""
    return TaggerConfig.from_slices(config.model, config.transfer, num_tags, config.seed)


def fit_tagger_from_cache(model: TokenClassifier, train_sents: TaggedSentences, valid_sents: TaggedSentences,
                          config: TrainConfig) -> FitOutcome:
    """Per-word features encoded once; the mix + head fit on them (the one loop) and are copied back."""
    encoder = model.get_layer("encoder")
    paths = [build_token_feature_cache(encoder, model.preprocessor, model.spec, config.seq_length, sents.words,
                                       verbose=config.verbose)
             for sents in (train_sents, valid_sents)]
    manifest = read_manifest(paths[0])
    with model.distribute_strategy.scope():
        head = CachedTaggerHead(model, manifest["layers"], manifest["hidden"])
    index = model.tag_index
    tag_ids = [[[index[t] for t in row] for row in sents.tags] for sents in (train_sents, valid_sents)]
    outcome = fit_task(head, CachedExamples(paths[0], tag_ids[0], len(train_sents)),
                       CachedExamples(paths[1], tag_ids[1], len(valid_sents)), config.optimization,
                       config.runtime, None, job="--task tokens --feature-cache", shuffle=config.shuffle,
                       log_dir=storage.join(config.run_dir, TENSORBOARD_DIR))
    head.copy_weights_to(model)
    return outcome


def train_tagger(config: TrainConfig, strategy: tf.distribute.Strategy) -> TrainResult:
    """Fine-tunes (or trains a head on a frozen) encoder for CoNLL-style tagging; entity F1 on validation."""
    tf_keras.utils.set_random_seed(config.seed)
    train_sents, valid_sents = read_tagged_splits(config)
    names = tag_vocabulary(train_sents)
    unseen = sorted({t for row in valid_sents.tags for t in row} - set(names))
    if unseen:
        raise DataError(f"{valid_sents.source}: tags {unseen} never occur in {train_sents.source}")
    with strategy.scope():
        model = TokenClassifier(tagger_config(config, len(names)), names)
    announce(config, model, len(train_sents), len(valid_sents), names, strategy)
    if config.feature_cache:
        outcome = fit_tagger_from_cache(model, train_sents, valid_sents, config)
    else:
        outcome = fit_task(model, train_sents, valid_sents, config.optimization, config.runtime,
                           config.run_dir, job="--task tokens", shuffle=config.shuffle)
    predicted = tags_from_outputs(outcome.valid_outputs, names, valid_sents)
    metrics = {**entity_f1(valid_sents.tags, predicted), "sentences": len(valid_sents)}
    return finish(model, config, names, outcome.history, metrics, strategy, outcome.speed)
