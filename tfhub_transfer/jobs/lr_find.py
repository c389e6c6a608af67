"""`lr-find`: the learning-rate range test on `train`'s data and model, before training.

The model is built exactly as `train` builds it (encoder, task, transfer mode, feature cache),
its training stream is the one `train` would fit on (batch size, buckets, class and sample
weights), and `TaskModel.lr_find` sweeps the rate. Writes `lr_find.png` (loss vs rate, the
suggestions marked) and `lr_find.csv` (the curve) to the output directory.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from pathlib import Path

import tensorflow as tf
import tf_keras

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.conll import tag_vocabulary
from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import check_writable, refuse_url, replace_file
from tfhub_transfer.jobs.options import check_options, fits_pair_features
from tfhub_transfer.jobs.tagging import read_tagged_splits, tagger_config
from tfhub_transfer.jobs.train import build_task_model, cached_head, resolved_config
from tfhub_transfer.models.token_classifier import TokenClassifier
from tfhub_transfer.training.distribution import global_batch_size, make_distribution
from tfhub_transfer.training.loop import steps_per_epoch, training_batches
from tfhub_transfer.training.lr_finder import LRFinderResult
from tfhub_transfer.training.tasks import task_spec

PLOT_FILE = "lr_find.png"
CURVE_FILE = "lr_find.csv"


@dataclasses.dataclass
class LRFindReport:
    result: LRFinderResult
    plot: Path
    curve: Path


def _model_and_examples(config: TrainConfig, strategy):
    """The task model `train` would fit and its training examples (the cached head's with --feature-cache)."""
    if task_spec(config.task).per_token:
        config, _ = resolved_config(config, None)
        if config.feature_cache:
            raise ConfigError("lr-find --task tokens sweeps the tagger on its encoder; drop --feature-cache")
        train_sents, _ = read_tagged_splits(config)
        with strategy.scope():
            model = TokenClassifier(tagger_config(config, len(tag_vocabulary(train_sents))),
                                    tag_vocabulary(train_sents))
        return model, train_sents
    splits = load_labelled(config.train, config.valid, config.text_column, config.label_column,
                           config.validation_fraction, config.max_train_examples, config.seed, config.task,
                           config.text_b_column, config.label_separator, config.weight_column)
    config, _ = resolved_config(config, splits)
    if str(config.mode).startswith("contrastive"):
        raise ConfigError(f"lr-find: --mode auto chose {config.mode} for this data; it trains on pairs first, so "
                          "give the mode to sweep (--mode finetune, or --mode freeze for its head)")
    with strategy.scope():
        model = build_task_model(config, splits)
    if config.feature_cache and not fits_pair_features(config):  # pairs read apart have no per-layer cache: the model
        head, train_examples, _ = cached_head(model, splits, config.verbose)
        return head, train_examples
    return model, splits.train_examples


def curve_csv(result: LRFinderResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["step", "learning_rate", "loss", "smoothed_loss"])
    for step, row in enumerate(zip(result.learning_rates, result.losses, result.smoothed)):
        writer.writerow([step, *(f"{v:.6g}" for v in row)])
    return buffer.getvalue()


def find_learning_rate(config: TrainConfig, out_dir: str | Path, start_lr: float = 1e-7, end_lr: float = 10.0,
                       num_steps: int = 100, stop_factor: float = 4.0) -> LRFindReport:
    """Runs the range test on the model and training stream `config` describes; writes the plot and curve."""
    check_options(config)
    if str(config.mode).startswith("contrastive"):
        raise ConfigError("lr-find sweeps the classification loss; --mode contrastive first trains on pairs "
                          "(sweep its head with --mode freeze)")
    refuse_url(out_dir, "--out", "its report and plot are written on this machine; give a local --out")
    out = check_writable(out_dir)
    strategy = make_distribution(config.distribution)
    tf_keras.utils.set_random_seed(config.seed)
    model, train = _model_and_examples(config, strategy)
    batch = global_batch_size(config.batch_size, strategy)
    whole = strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.TPUStrategy)
    epochs = math.ceil(num_steps / steps_per_epoch(len(train), batch, whole))
    batches = training_batches(model, train, batch, epochs, config.runtime, config.class_weight,
                               shuffle=config.shuffle)
    result = model.lr_find(batches, start_lr=start_lr, end_lr=end_lr, num_steps=num_steps,
                           stop_factor=stop_factor, seed=config.seed, verbose=config.verbose)
    plot = replace_file(out / PLOT_FILE, lambda handle: handle.write(result.plot_png()))
    curve = replace_file(out / CURVE_FILE, lambda handle: handle.write(curve_csv(result).encode("utf-8")))
    return LRFindReport(result, plot, curve)
