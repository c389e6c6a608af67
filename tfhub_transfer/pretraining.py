"""Continued masked-LM pretraining of an encoder on unlabelled in-domain text.

`pretrain` reads raw text lines (or the text column of a labelled file), tokenises
them with the encoder's own preprocessor, packs consecutive lines into sequences
of up to `seq_length` tokens (few pads), masks them dynamically every epoch
(tensorflow-text), trains through the encoder's `mlm` subobject as a trainable
`hub.KerasLayer`, reports held-out masked-token accuracy and perplexity before and
after, and writes the result as a new encoder + preprocessor pair in the same
TF Hub format (a versioned directory that every builder loads by path).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.data import read_table
from tfhub_transfer.distribution import global_batch_size, is_chief, make_distribution
from tfhub_transfer.encoders.handles import EncoderSpec, read_metadata, resolve_encoder
from tfhub_transfer.encoders.hub_writer import ENCODER_DIR, METADATA_FILE, PREPROCESSOR_DIR, atomic_directory
from tfhub_transfer.errors import DataError, EncoderError
from tfhub_transfer.export import next_version
from tfhub_transfer.masking import MaskingConfig, mask_batch
from tfhub_transfer.preprocessing import TextPreprocessor
from tfhub_transfer.schedules import WarmupLinearDecay


@dataclasses.dataclass
class PretrainConfig:
    """Everything `pretrain` needs; `tfhub-transfer pretrain` flags map onto these fields."""

    corpus: Sequence[str | Path]
    out: str | Path
    encoder: str = "default"
    preprocessor: str | None = None
    text_column: str | None = None  # for .csv/.tsv/.jsonl corpora: the column to read
    seq_length: int = 128
    whole_word_masking: bool = False
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    holdout_fraction: float = 0.05
    max_lines: int | None = None
    seed: int = 0
    verbose: int = 1
    distribution: str = "auto"  # see tfhub_transfer.distribution; batch_size is per replica


@dataclasses.dataclass
class PretrainResult:
    before: dict
    after: dict
    path: Path
    history: dict


def read_corpus_lines(paths: Sequence[str | Path], text_column: str | None = None,
                      max_lines: int | None = None) -> list[str]:
    """Non-empty text lines from plain files, or a text column of labelled files (labels ignored)."""
    lines: list[str] = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() in (".csv", ".tsv", ".jsonl") and text_column:
            lines += read_table(path, text_column, None).texts
        else:
            if not path.exists():
                raise DataError(f"corpus file {path} does not exist")
            for line in path.read_text(encoding="utf-8").splitlines():
                stripped = line.strip()
                if stripped and not (stripped.startswith("=") and stripped.endswith("=")):
                    lines.append(stripped)
        if max_lines and len(lines) >= max_lines:
            return lines[:max_lines]
    if not lines:
        raise DataError(f"the corpus {list(map(str, paths))} has no text lines")
    return lines


def pack_words(lines: list[str], preprocessor: TextPreprocessor, budget: int) -> list[list[list[int]]]:
    """Greedily packs consecutive lines' words into sequences of at most `budget` word pieces."""
    sequences, current, used = [], [], 0
    for start in range(0, len(lines), 1024):
        tokens = preprocessor.module.tokenize(tf.constant(lines[start : start + 1024]))
        for line_words in tokens.to_list():
            for word in line_words:
                word = word[:budget]
                if used + len(word) > budget and current:
                    sequences.append(current)
                    current, used = [], 0
                current.append(word)
                used += len(word)
    if current:
        sequences.append(current)
    return sequences


def _ragged(sequences: list[list[list[int]]]) -> tf.RaggedTensor:
    return tf.ragged.constant(sequences, dtype=tf.int32, ragged_rank=2)


def mlm_dataset(sequences, special_ids, masking: MaskingConfig, batch_size: int,
                shuffle: bool, seed: int | None = None) -> tf.data.Dataset:
    """Batches of (inputs, masked_lm_ids, masked_lm_weights), masked anew each epoch."""
    dataset = tf.data.Dataset.from_tensor_slices(_ragged(sequences))
    if shuffle:
        dataset = dataset.shuffle(len(sequences), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.ragged_batch(batch_size)
    dataset = dataset.map(lambda words: mask_batch(words, special_ids, masking, seed),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fixed_heldout(sequences, special_ids, masking: MaskingConfig, batch_size: int, seed: int) -> list:
    """The held-out set masked once and kept, so `before` and `after` see the same masks."""
    tf.random.set_seed(seed)
    return list(mlm_dataset(sequences, special_ids, masking, batch_size, False, seed))


class MaskedLMModel(tf_keras.Model):
    """Wraps the encoder's `mlm` subobject; the loss is the mean over real masked positions."""

    def __init__(self, mlm_layer: hub.KerasLayer, **kwargs):
        super().__init__(**kwargs)
        self.mlm = mlm_layer
        self.loss_tracker = tf_keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker, *super().metrics]

    def call(self, inputs, training=None):
        return self.mlm(inputs, training=training)["mlm_logits"]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        losses = tf_keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        weights = tf.cast(sample_weight, losses.dtype)
        loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        self.loss_tracker.update_state(loss)
        return loss


def evaluate_mlm(model: MaskedLMModel, dataset) -> dict:
    """Masked-token accuracy and perplexity over the real masked positions."""
    total_loss, correct, count = 0.0, 0.0, 0.0
    for inputs, ids, weights in dataset:
        logits = model(inputs, training=False)
        losses = tf_keras.losses.sparse_categorical_crossentropy(ids, logits, from_logits=True)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
        total_loss += float(tf.reduce_sum(losses * weights))
        correct += float(tf.reduce_sum(hits * weights))
        count += float(tf.reduce_sum(weights))
    mean = total_loss / max(count, 1.0)
    return {"masked_accuracy": correct / max(count, 1.0), "loss": mean,
            "perplexity": float(math.exp(min(mean, 50.0))), "masked_tokens": int(count)}


def _load_mlm(spec: EncoderSpec):
    loaded = hub.load(spec.encoder)
    if not hasattr(loaded, "mlm"):
        raise EncoderError(
            f"encoder {spec.encoder} has no `mlm` subobject, so it cannot continue masked-LM "
            f"pretraining. Encoders written by this package (and Model Garden BERT exports) have one."
        )
    return loaded, hub.KerasLayer(loaded.mlm, trainable=True, name="mlm")


def write_pretrained(loaded, spec: EncoderSpec, out_root: str | Path, record: dict) -> Path:
    """Writes OUT/<version>/{encoder, preprocessor, metadata}: the same interface as the input."""
    out_root = Path(out_root)
    target = out_root / str(next_version(out_root))
    with atomic_directory(target) as tmp:
        tf.saved_model.save(loaded, str(tmp / ENCODER_DIR))
        shutil.copytree(spec.preprocessor, tmp / PREPROCESSOR_DIR)
        meta = {**read_metadata(Path(spec.encoder).parent), **record}
        (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return target


def pretrain(config: PretrainConfig, strategy: tf.distribute.Strategy | None = None) -> PretrainResult:
    """Continues MLM pretraining of `config.encoder` on `config.corpus`; see the module docstring.

    Runs under `strategy`, else the one `config.distribution` names (created first).
    """
    strategy = make_distribution(strategy or config.distribution)
    batch = global_batch_size(config.batch_size, strategy)
    tf_keras.utils.set_random_seed(config.seed)
    spec = resolve_encoder(config.encoder, config.preprocessor)
    if spec.preprocessor.startswith(("http://", "https://")) or not Path(spec.preprocessor).is_dir():
        raise EncoderError("continued pretraining writes a local copy of the preprocessor: pass a "
                           f"local preprocessor directory, not {spec.preprocessor}")
    preprocessor = TextPreprocessor(spec.preprocessor)
    masking = MaskingConfig(whole_word=config.whole_word_masking, seq_length=config.seq_length)
    lines = read_corpus_lines(config.corpus, config.text_column, config.max_lines)
    sequences = pack_words(lines, preprocessor, config.seq_length - 2)
    order = np.random.default_rng(config.seed).permutation(len(sequences))
    n_held = max(1, int(len(sequences) * config.holdout_fraction))
    held = [sequences[i] for i in order[:n_held]]
    train_seqs = [sequences[i] for i in order[n_held:]] or held
    special = preprocessor.special_ids
    heldout = fixed_heldout(held, special, masking, batch, config.seed)
    with strategy.scope():
        loaded, layer = _load_mlm(spec)
        model = MaskedLMModel(layer)
        steps = math.ceil(len(train_seqs) / batch) * config.epochs
        optimizer = tf_keras.optimizers.AdamW(
            WarmupLinearDecay(config.learning_rate, steps, int(steps * config.warmup_fraction)),
            weight_decay=config.weight_decay, epsilon=1e-6)
        optimizer.exclude_from_weight_decay(var_names=["layer_norm", "LayerNorm", "bias"])
        model.compile(optimizer=optimizer, weighted_metrics=[
            tf_keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")])
    before = evaluate_mlm(model, heldout)
    if config.verbose:
        print(f"{len(lines)} lines -> {len(sequences)} packed sequences of <= {config.seq_length} tokens "
              f"({n_held} held out). Before: {before}", flush=True)
    train_ds = mlm_dataset(train_seqs, special, masking, batch, True, None)
    history = model.fit(train_ds, epochs=config.epochs, verbose=config.verbose)
    after = evaluate_mlm(model, heldout)
    if config.verbose:
        print(f"After: {after}", flush=True)
    record = {"continued_pretraining": {
        "from": spec.encoder, "corpus": [str(p) for p in config.corpus], "lines": len(lines),
        "sequences": len(sequences), "epochs": config.epochs, "whole_word_masking": config.whole_word_masking,
        "heldout_before": before, "heldout_after": after}}
    if is_chief(strategy):
        path = write_pretrained(loaded, spec, config.out, record)
    else:  # other workers take part in the save (collectives) into a scratch dir
        with tempfile.TemporaryDirectory() as scratch:
            path = write_pretrained(loaded, spec, scratch, record)
        path = Path(config.out)
    return PretrainResult(before, after, path, {k: [float(x) for x in v] for k, v in history.history.items()})

