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

from tfhub_transfer.data.vectors import WordVectors, embedding_matrix, read_word_vectors
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.models.registry import register
from tfhub_transfer.models.string_input import StringInputModel
from tfhub_transfer.transfer.layer_groups import LayerGroups
from tfhub_transfer.transfer.modes import TransferMode

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


EMBEDDING_MODE_AS_TRANSFER = {"init": "finetune", "freeze": "partial:0", "random": "reinit"}
FIXED_LENGTH = "the RNN pads every text to its sequence_length (TextVectorization), so there is nothing to bucket"


def transfer_mode_of(config: RnnClassifierConfig) -> TransferMode:
    """The embedding mode in the transfer-mode vocabulary: init = finetune, freeze = partial:0
    (the embeddings group frozen), slow = slow_embeddings:FACTOR, random = reinit."""
    if config.embedding_mode == "slow":
        return TransferMode.parse(f"slow_embeddings:{config.slow_factor}")
    return TransferMode.parse(EMBEDDING_MODE_AS_TRANSFER[config.embedding_mode])


@register
class RnnClassifier(StringInputModel):
    """An RNN text classifier whose embedding layer starts from pretrained word vectors; takes raw strings.

    Its one layer group is `embeddings`, so `freeze()` / `unfreeze()` and per-group rates work as
    on encoder models; `model.coverage` says how much of the training text the vectors cover.

    Args:
      config: an `RnnClassifierConfig` (or its dict); `from_word_vectors` builds one.
      vocabulary: the TextVectorization vocabulary (None: adapted to `train_texts`).
      train_texts: the texts the vocabulary (and the vectors' coverage) is read from.
      vectors: word vectors already read (None: read from `config.word_vectors`).
      embedding_dim: the embedding width when rebuilding without vectors.
      label_names: the class names.
    Example:
      >>> from tfhub_transfer import RnnClassifier
      >>> model = RnnClassifier.from_word_vectors(["a good film", "a bad film"], 2, embedding_mode="random",
      ...                                         units=4)
      >>> model.predict(["a good film"], verbose=0).shape
      (1, 2)
    """

    unsupported = {"bucket": FIXED_LENGTH}

    def __init__(self, config: RnnClassifierConfig | dict, vocabulary: Sequence[str] | None = None,
                 train_texts: Sequence[str] | None = None, vectors: WordVectors | None = None,
                 embedding_dim: int | None = None, label_names: Sequence[str] | None = None, **kwargs):
        config = RnnClassifierConfig(**config) if isinstance(config, dict) else config
        _check(config)
        vectorizer = tf_keras.layers.TextVectorization(
            max_tokens=config.max_tokens, output_sequence_length=config.sequence_length, name="vectorize",
            vocabulary=list(vocabulary) if vocabulary is not None else None,
        )
        if vocabulary is None:
            if not train_texts:
                raise ConfigError("an RNN classifier needs train_texts or a vocabulary")
            vectorizer.adapt(tf.data.Dataset.from_tensor_slices(list(train_texts)).batch(1024))
        words = vectorizer.get_vocabulary()
        matrix, coverage = None, None
        if config.embedding_mode != "random" and embedding_dim is None:
            vectors = vectors or read_word_vectors(config.word_vectors, keep=words)
            counts = token_counts(vectorizer, train_texts) if train_texts else None
            matrix, coverage = embedding_matrix(words, vectors, counts, config.seed)
        dim = matrix.shape[1] if matrix is not None else (embedding_dim or config.embedding_dim)
        embedding = tf_keras.layers.Embedding(
            len(words), dim, mask_zero=True, name="embeddings",
            embeddings_initializer=(tf_keras.initializers.Constant(matrix) if matrix is not None
                                    else tf_keras.initializers.RandomUniform(-0.05, 0.05, seed=config.seed)),
        )
        text = tf_keras.Input(shape=(), dtype=tf.string, name="text")
        hidden = _recurrent(config)(embedding(vectorizer(text)))
        hidden = tf_keras.layers.Dropout(config.dropout, seed=config.seed)(hidden)
        logits = tf_keras.layers.Dense(config.num_classes, name="logits")(hidden)
        super().__init__(inputs=text, outputs=logits, name=kwargs.pop("name", "rnn_classifier"), **kwargs)
        mode = transfer_mode_of(config)
        self._setup(config, mode, None, None, label_names)
        self.coverage, self.vocabulary, self.embedding_dim = coverage, words, dim
        self.layer_groups = LayerGroups(["embeddings"], {"embeddings": [embedding.embeddings]})
        self.lr_multipliers = mode.learning_rate_multipliers(self.layer_groups)
        self.set_frozen_groups(mode.initially_frozen(self.layer_groups))

    @classmethod
    def from_word_vectors(cls, train_texts: Sequence[str], num_classes: int,
                          vectors: str | WordVectors | None = None, embedding_mode: str = "init",
                          rnn: str = "bilstm", labels: Sequence[str] | None = None, **options) -> RnnClassifier:
        """An RNN classifier on pretrained word vectors, in one call.

        `vectors` is a word2vec/GloVe file or a WordVectors; `embedding_mode` is `init`,
        `freeze`, `slow` or `random`; other RnnClassifierConfig fields (units, max_tokens,
        sequence_length, slow_factor, dropout, seed, ...) go in `options`.
        """
        loaded = vectors if isinstance(vectors, WordVectors) else None
        path = None if loaded is not None or vectors is None else str(vectors)
        if loaded is not None and embedding_mode != "random":
            path = loaded.source or "<in memory>"
        config = RnnClassifierConfig(num_classes, path, embedding_mode, rnn, **options)
        return cls(config, train_texts=train_texts, vectors=loaded, label_names=labels)

    def get_config(self) -> dict:
        # The vocabulary and width rebuild the embedding without reading the vectors again.
        return {**super().get_config(), "vocabulary": self.vocabulary, "embedding_dim": self.embedding_dim}


def build_rnn_classifier(train_texts: Sequence[str], num_classes: int, vectors=None, embedding_mode: str = "init",
                         rnn: str = "bilstm", **options) -> RnnClassifier:
    """Shorthand for `RnnClassifier.from_word_vectors`."""
    return RnnClassifier.from_word_vectors(train_texts, num_classes, vectors, embedding_mode, rnn, **options)


def embedding_values(model: RnnClassifier) -> np.ndarray:
    return model.get_layer("embeddings").embeddings.numpy()
