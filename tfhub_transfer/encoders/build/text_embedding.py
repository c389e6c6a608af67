"""TF Hub text-embedding modules (string -> vector SavedModels, like nnlm or Wiki-words).

`write_text_embedding_module` builds one offline from word vectors: lower-cased,
punctuation-stripped, whitespace-split words are looked up (one OOV bucket) and
averaged. It exposes `variables` / `trainable_variables`, so
`hub.KerasLayer(path, input_shape=[], dtype=tf.string, trainable=True)` fine-tunes it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer.data.vectors import WordVectors
from tfhub_transfer.files import atomic_directory

PUNCTUATION = r"[^\w\s]"


def normalize_text(sentences: tf.Tensor) -> tf.Tensor:
    return tf.strings.regex_replace(tf.strings.lower(sentences), PUNCTUATION, " ")


class TextEmbeddingModule(tf.train.Checkpoint):
    """The root object of a text-embedding SavedModel: `__call__(strings[batch]) -> [batch, dim]`."""

    def __init__(self, vocab_path: str, matrix: np.ndarray):
        super().__init__()
        initializer = tf.lookup.TextFileInitializer(
            vocab_path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self._table = tf.lookup.StaticVocabularyTable(initializer, num_oov_buckets=1)
        oov = np.zeros((1, matrix.shape[1]), np.float32)
        self.embeddings = tf.Variable(np.concatenate([matrix, oov]).astype(np.float32), name="embeddings")
        self.variables = [self.embeddings]
        self.trainable_variables = [self.embeddings]
        self.regularization_losses = []

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def embed(sentences):
            words = tf.strings.split(normalize_text(sentences))
            vectors = tf.gather(self.embeddings, self._table.lookup(words))
            total = tf.reduce_sum(vectors, axis=1)
            count = tf.cast(words.row_lengths(), tf.float32)[:, tf.newaxis]
            return total / tf.maximum(count, 1.0)

        self.__call__ = embed


def write_text_embedding_module(vectors: WordVectors, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Saves a mean-of-word-vectors text-embedding SavedModel to `out_dir` (atomically; an existing
    directory only with `overwrite`, and only one this package wrote)."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp, atomic_directory(out_dir, overwrite) as target:
        vocab_path = Path(tmp) / "tokens.txt"
        vocab_path.write_text("\n".join(vectors.words) + "\n", encoding="utf-8")
        tf.saved_model.save(TextEmbeddingModule(str(vocab_path), vectors.vectors), str(target))
    return out_dir
