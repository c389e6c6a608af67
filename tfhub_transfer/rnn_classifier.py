"""Word-vector transfer: an RNN text classifier whose embedding layer starts from pretrained vectors.

Embedding modes (seed 003): `init` (vectors as initial values, trained further),
`freeze` (vectors fixed), `slow` (trained with `slow_factor` times the learning rate,
through a separate optimizer) and `random` (no vectors: the no-transfer baseline).
The model takes raw strings: TextVectorization is its first layer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.layer_groups import LayerGroups
from tfhub_transfer.transfer_model import TransferModel
from tfhub_transfer.transfer_modes import TransferMode
from tfhub_transfer.word_vectors import WordVectors, embedding_matrix, read_word_vectors

EMBEDDING_MODES = ("init", "freeze", "slow", "random")
RNNS = ("bilstm", "gru", "bigru", "lstm")


@dataclasses.dataclass(frozen=True)
class RnnClassifierConfig:
    """What `build_rnn_classifier` builds; stored with runs so they can be rebuilt."""

    num_classes: int
    word_vectors: str | None = None
    embedding_mode: str = "init"
    rnn: str = "bilstm"
    units: int = 64
    max_tokens: int = 20_000
    sequence_length: int = 64
    slow_factor: float = 0.01
    embedding_dim: int = 100  # only for `random`
    dropout: float = 0.2
    seed: int = 0


def _check(config: RnnClassifierConfig) -> None:
    if config.embedding_mode not in EMBEDDING_MODES:
        raise ConfigError(f"embedding mode must be one of {EMBEDDING_MODES}, not {config.embedding_mode!r}")
    if config.rnn not in RNNS:
        raise ConfigError(f"rnn must be one of {RNNS}, not {config.rnn!r}")
    if config.embedding_mode != "random" and not config.word_vectors:
        raise ConfigError(
            f"embedding mode {config.embedding_mode!r} needs word vectors (--word-vectors FILE)"
        )


def _recurrent(config: RnnClassifierConfig) -> tf_keras.layers.Layer:
    kind = {"bilstm": tf_keras.layers.LSTM, "lstm": tf_keras.layers.LSTM,
            "gru": tf_keras.layers.GRU, "bigru": tf_keras.layers.GRU}[config.rnn]
    layer = kind(config.units)
    return tf_keras.layers.Bidirectional(layer, name="rnn") if config.rnn.startswith("bi") else layer


def token_counts(vectorizer: tf_keras.layers.TextVectorization, texts: Sequence[str]) -> dict[str, int]:
    vocabulary = vectorizer.get_vocabulary()
    counts: Counter = Counter()
    for start in range(0, len(texts), 4096):
        ids = vectorizer(tf.constant(list(texts[start : start + 4096]))).numpy()
        counts.update(ids[ids > 0].tolist())
    return {vocabulary[i]: c for i, c in counts.items()}


def build_rnn_classifier(
    train_texts: Sequence[str],
    num_classes: int,
    vectors: str | WordVectors | None = None,
    embedding_mode: str = "init",
    rnn: str = "bilstm",
    **options,
) -> TransferModel:
    """An RNN text classifier on pretrained word vectors, in one call.

    `vectors` is a word2vec/GloVe file or a WordVectors; `embedding_mode` is `init`,
    `freeze`, `slow` or `random`; other RnnClassifierConfig fields (units, max_tokens,
    sequence_length, slow_factor, dropout, seed, ...) go in `options`.
    """
    loaded = vectors if isinstance(vectors, WordVectors) else None
    path = None if loaded is not None or vectors is None else str(vectors)
    if loaded is not None and embedding_mode != "random":
        path = loaded.source or "<in memory>"
    config = RnnClassifierConfig(num_classes, path, embedding_mode, rnn, **options)
    return build_rnn_classifier_from_config(config, train_texts, vectors=loaded)


def build_rnn_classifier_from_config(
    config: RnnClassifierConfig,
    train_texts: Sequence[str] | None = None,
    vocabulary: Sequence[str] | None = None,
    vectors: WordVectors | None = None,
    restore_dim: int | None = None,
) -> TransferModel:
    """Builds the classifier; the vocabulary comes from `train_texts` or is given.

    `restore_dim` rebuilds a saved run's architecture without reading the vectors
    again (its trained weights are loaded afterwards).

    Returns a TransferModel that outputs logits and takes a batch of raw strings;
    `model.coverage` says how much of the training text the vectors cover.
    """
    _check(config)
    vectorizer = tf_keras.layers.TextVectorization(
        max_tokens=config.max_tokens, output_sequence_length=config.sequence_length, name="vectorize",
        vocabulary=list(vocabulary) if vocabulary is not None else None,
    )
    if vocabulary is None:
        if not train_texts:
            raise ConfigError("build_rnn_classifier needs train_texts or a vocabulary")
        vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(train_texts)).batch(1024))
    words = vectorizer.get_vocabulary()
    matrix, coverage = None, None
    if config.embedding_mode != "random" and restore_dim is None:
        vectors = vectors or read_word_vectors(config.word_vectors, keep=words)
        counts = token_counts(vectorizer, train_texts) if train_texts else None
        matrix, coverage = embedding_matrix(words, vectors, counts, config.seed)
    dim = matrix.shape[1] if matrix is not None else (restore_dim or config.embedding_dim)
    embedding = tf_keras.layers.Embedding(
        len(words), dim, mask_zero=True, name="embeddings",
        embeddings_initializer=(tf_keras.initializers.Constant(matrix) if matrix is not None
                                else tf_keras.initializers.RandomUniform(-0.05, 0.05, seed=config.seed)),
        trainable=config.embedding_mode != "freeze",
    )
    text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
    hidden = _recurrent(config)(embedding(vectorizer(text)))
    hidden = tf_keras.layers.Dropout(config.dropout, seed=config.seed)(hidden)
    logits = tf_keras.layers.Dense(config.num_classes, name="logits")(hidden)
    model = TransferModel(inputs=text, outputs=logits, name="rnn_classifier")
    model.config, model.coverage, model.vocabulary = config, coverage, words
    model.mode = TransferMode("finetune")
    if config.embedding_mode == "slow":
        model.layer_groups = LayerGroups(["embeddings"], {"embeddings": [embedding.embeddings]})
        model.lr_multipliers = {"embeddings": config.slow_factor}
    return model


def embedding_values(model: TransferModel) -> np.ndarray:
    return model.get_layer("embeddings").embeddings.numpy()
