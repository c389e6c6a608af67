"""Word-vector transfer: readers, coverage, RNN embedding modes, TF Hub text-embedding modules."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.data.vectors import (
    WordVectors,
    embedding_matrix,
    read_word_vectors,
    write_glove,
    write_word2vec_binary,
    write_word2vec_text,
)
from tfhub_transfer.encoders.build.text_embedding import write_text_embedding_module
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import train
from tfhub_transfer.models.rnn_classifier import (
    RnnClassifier,
    RnnClassifierConfig,
    embedding_values,
)

POSITIVE = {"wonderful", "excellent", "delightful", "brilliant", "superb", "charming", "great",
            "fantastic", "lovely", "impressive", "moving", "reliable", "loved", "recommend", "happily"}
NEGATIVE = {"terrible", "awful", "boring", "dreadful", "disappointing", "poor", "weak", "clumsy",
            "tedious", "broken", "useless", "annoying", "regret", "waste", "money"}


def sentiment_vectors(words, dim=16, seed=0) -> WordVectors:
    """'Pretrained' vectors with a sentiment direction, standing in for word2vec output."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(0, 0.3, (len(words), dim)).astype(np.float32)
    for i, w in enumerate(words):
        rows[i, 0] += 1.0 if w in POSITIVE else -1.0 if w in NEGATIVE else 0.0
    return WordVectors(list(words), rows)


@pytest.fixture(scope="module")
def demo_words(demo_data):
    import re

    return sorted({w for t in read_table(demo_data).texts for w in re.findall(r"[a-z]+", t.lower())})


@pytest.fixture(scope="module")
def vectors_file(tmp_path_factory, demo_words):
    path = tmp_path_factory.mktemp("vec") / "vectors.txt"
    write_word2vec_text(sentiment_vectors(demo_words[:-5] + ["zebra", "quasar"]), path)
    return path


@pytest.mark.parametrize("writer, name", [(write_word2vec_text, "v.txt"), (write_glove, "v.glove"),
                                          (write_word2vec_binary, "v.bin")])
def test_readers_round_trip_every_format(tmp_path, writer, name):
    vectors = sentiment_vectors(["the", "good", "bad", "naïve"], dim=5)
    writer(vectors, tmp_path / name)
    back = read_word_vectors(tmp_path / name)
    assert back.words == vectors.words
    np.testing.assert_allclose(back.vectors, vectors.vectors, atol=1e-6)
    kept = read_word_vectors(tmp_path / name, keep={"bad", "absent"})
    assert kept.words == ["bad"]


def test_malformed_lines_name_their_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("3 2\nthe 0.1 0.2\ngood 0.3\nbad 0.5 0.6\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 3 has 1 values for 'good', expected 2"):
        read_word_vectors(path)
    path.write_text("the 0.1 0.2\ngood 0.3 x\n")
    with pytest.raises(DataError, match="line 2 has a value that is not a number"):
        read_word_vectors(path)
    truncated = tmp_path / "t.bin"
    write_word2vec_binary(sentiment_vectors(["a", "b"], dim=4), truncated)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    with pytest.raises(DataError, match="record 2"):
        read_word_vectors(truncated)
    with pytest.raises(DataError, match="does not exist"):
        read_word_vectors(tmp_path / "missing.txt")


def test_embedding_matrix_coverage_and_oov_scale():
    vectors = sentiment_vectors([f"w{i}" for i in range(400)], dim=8)
    vocabulary = ["", "[UNK]", "w1", "w2", "unseen", "w3"]
    counts = {"w1": 5, "w2": 3, "unseen": 2, "w3": 10}
    matrix, coverage = embedding_matrix(vocabulary, vectors, counts)
    assert (coverage.types_found, coverage.types_total) == (3, 4)
    assert coverage.token_share == pytest.approx(18 / 20)
    np.testing.assert_array_equal(matrix[0], 0.0)
    np.testing.assert_array_equal(matrix[2], vectors.vectors[1])
    big, _ = embedding_matrix(["", "[UNK]"] + [f"x{i}" for i in range(3000)], vectors)
    np.testing.assert_allclose(big[2:].std(axis=0), vectors.vectors.std(axis=0), rtol=0.1)


def test_init_mode_copies_vectors_into_the_embedding(vectors_file, demo_data):
    texts = read_table(demo_data).texts
    model = RnnClassifier(RnnClassifierConfig(2, str(vectors_file)), train_texts=texts)
    vectors = read_word_vectors(vectors_file)
    index = vectors.index()
    table = embedding_values(model)
    for row, word in enumerate(model.vocabulary):
        if word in index:
            np.testing.assert_array_equal(table[row], vectors.vectors[index[word]])
    assert 0.9 < model.coverage.type_share < 1.0
    with pytest.raises(ConfigError, match="needs word vectors"):
        RnnClassifier(RnnClassifierConfig(2, None, "freeze"), train_texts=texts)


def one_step(mode, vectors_file, texts, labels, slow_factor=0.01):
    tf_keras.utils.set_random_seed(0)
    # A small one-way GRU: what the embedding update does is the same under any RNN, and it traces fastest.
    config = RnnClassifierConfig(2, str(vectors_file), mode, rnn="gru", units=8, sequence_length=24,
                                 slow_factor=slow_factor, dropout=0.0)
    model = RnnClassifier(config, train_texts=texts)
    before = embedding_values(model).copy()
    model.compile("sgd", learning_rate=100.0, schedule="constant")
    model.fit(texts, labels, batch_size=len(texts), epochs=1, verbose=0, shuffle=False)
    return embedding_values(model) - before


@pytest.mark.slow
def test_freeze_keeps_embeddings_and_slow_moves_them_by_the_factor(vectors_file, demo_data):
    table = read_table(demo_data)
    texts, labels = table.texts[:64], np.array([t == "positive" for t in table.labels[:64]], np.int32)
    init = one_step("init", vectors_file, texts, labels)
    frozen = one_step("freeze", vectors_file, texts, labels)
    slow = one_step("slow", vectors_file, texts, labels, slow_factor=0.01)
    assert not frozen.any(), "freeze must leave the embedding matrix bit-identical"
    assert np.abs(init).max() > 0
    moved = np.abs(init) > 1e-2 * np.abs(init).max()
    assert np.median(slow[moved] / init[moved]) == pytest.approx(0.01, rel=1e-3)


def test_rnn_learns_and_exports_raw_strings(vectors_file, demo_data, tmp_path):
    result = train(TrainConfig.of(train=demo_data, word_vectors=str(vectors_file), embedding_mode="init",
                               rnn="gru", rnn_units=16, epochs=5, batch_size=16, seq_length=24,
                               learning_rate=1e-2,
                               output_dir=tmp_path, name="rnn", verbose=0, validation_fraction=0.25))
    assert result.metrics["accuracy"] > 0.8
    predictions = ExportedClassifier(result.export_path).predict(
        ["The film was wonderful, and I loved every minute.", "The plot was dreadful and a waste of time."])
    assert predictions["labels"] == ["positive", "negative"]
    from tfhub_transfer.jobs.train import load_run

    rebuilt, _ = load_run(result.run_dir)
    probe = tf.constant(["I found the staff charming."])
    np.testing.assert_allclose(rebuilt(probe).numpy(), result.model(probe).numpy(), atol=1e-6)


def test_hub_text_embedding_module_loads_and_trains(vectors_file, demo_data, tmp_path):
    module = write_text_embedding_module(read_word_vectors(vectors_file), tmp_path / "embed")
    layer = hub.KerasLayer(str(module), input_shape=[], dtype=tf.string, trainable=True)
    vectors = read_word_vectors(vectors_file)
    index = vectors.index()
    got = layer(tf.constant(["Superb, FILM!", ""])).numpy()
    expected = (vectors.vectors[index["superb"]] + vectors.vectors[index["film"]]) / 2
    np.testing.assert_allclose(got[0], expected, atol=1e-6)
    np.testing.assert_array_equal(got[1], 0.0)
    assert len(layer.trainable_weights) == 1

    result = train(TrainConfig.of(train=demo_data, text_embedding=str(module), mode="finetune", epochs=6,
                               batch_size=16, learning_rate=1e-2, output_dir=tmp_path, name="emb",
                               verbose=0, validation_fraction=0.25))
    assert result.metrics["accuracy"] > 0.8
    trained = result.model.get_layer("encoder").weights[0].numpy()
    assert not np.array_equal(trained[:-1], vectors.vectors)
    served = ExportedClassifier(result.export_path).predict(["The food was superb."])
    assert served["labels"] == ["positive"]


def test_one_call_builder_with_a_vectors_file(vectors_file, demo_data):
    from tfhub_transfer.models.rnn_classifier import build_rnn_classifier

    texts = read_table(demo_data).texts
    model = build_rnn_classifier(texts, 2, vectors=str(vectors_file), embedding_mode="freeze", rnn="gru",
                                 units=8)
    assert model.frozen_groups == ("embeddings",)  # embedding mode freeze is transfer mode partial:0
    assert str(model.mode) == "partial:0"
    assert model(tf.constant(["a wonderful film"])).shape == (1, 2)
