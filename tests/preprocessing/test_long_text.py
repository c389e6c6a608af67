"""Long texts: split into overlapping windows, encoded one by one and pooled, in training and in the export."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.preprocessing.text import LongText, split_windows

SEQ_LENGTH = 16  # 14 word pieces per window
FILLER = ["the", "movie", "was", "and", "it", "plot", "food", "staff", "soundtrack", "i", "would", "this", "is",
          "a", "of", "to", "service", "story"]  # one word piece each in the tiny encoder's vocabulary
CUES = [["awful", "terrible", "useless"], ["wonderful", "excellent", "great"]]


def long_reviews(count: int, seed: int) -> tuple[list[str], np.ndarray]:
    """40 neutral words (nearly 3 windows' worth); the label's three cue words only in words 20-39."""
    rng = np.random.default_rng(seed)
    texts, labels = [], np.arange(count, dtype=np.int32) % 2
    for label in labels:
        words = list(rng.choice(FILLER, 40))
        for position in rng.choice(range(20, 40), 3, replace=False):
            words[position] = rng.choice(CUES[label])
        texts.append(" ".join(words))
    return texts, labels


def test_windows_cover_every_piece_with_the_given_stride():
    tokens = tf.ragged.constant([list(range(10)), [], list(range(100, 103))], dtype=tf.int32)
    windows, owner = split_windows(tokens, length=4, stride=3)
    assert windows.to_list() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [], [100, 101, 102]]
    assert owner.numpy().tolist() == [0, 0, 0, 1, 2]


@pytest.mark.parametrize("spec", ["windows", "windows:0", "windows:15", "windows:4:max", "slide:4"])
def test_bad_long_text_specs(spec):
    with pytest.raises(ConfigError, match="--long-text"):
        LongText.parse(spec, SEQ_LENGTH)


def fitted(encoder, long_text: str, train) -> TextClassifier:
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(encoder), mode="finetune", seq_length=SEQ_LENGTH, long_text=long_text,
                                        pooling="mean", seed=0)
    model.compile(learning_rate=1e-2)
    model.fit(*train, batch_size=16, epochs=6, verbose=0)
    return model


@pytest.mark.integration  # a longer end-to-end run: make integration (CI runs it); make test keeps 12 min
@pytest.mark.slow
def test_truncation_misses_the_late_label_and_windows_find_it(tiny_encoder, tmp_path):
    train, (texts, labels) = long_reviews(128, seed=0), long_reviews(96, seed=1)
    truncated = fitted(tiny_encoder, "truncate", train)
    cut = np.mean(np.argmax(truncated.predict(texts, verbose=0), axis=-1) == labels)
    assert cut < 0.7  # the first 14 pieces hold no cue: chance (0.5 +- 0.05 on 96 texts)
    windowed = fitted(tiny_encoder, "windows:14", train)
    logits = windowed.predict(texts, verbose=0)
    assert np.mean(np.argmax(logits, axis=-1) == labels) >= 0.85  # measured: 0.93
    served = ExportedClassifier(windowed.export(tmp_path, "long")).predict(texts)  # raw strings, same windows
    np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)
