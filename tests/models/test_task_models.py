"""Every registered task model through the shared harness (tests/harness.py), and the contract's streaming hook."""

import re

import numpy as np
import pytest
import tensorflow as tf
from harness import TaskExamples, run_task_model_test

from tfhub_transfer.data.tables import Examples
from tfhub_transfer.data.vectors import WordVectors
from tfhub_transfer.encoders.build.text_embedding import write_text_embedding_module
from tfhub_transfer.models import saving  # noqa: F401  (importing it registers every task model)
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.models.registry import registered_models
from tfhub_transfer.models.rnn_classifier import RnnClassifier
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.models.text_embedding_classifier import TextEmbeddingClassifier, TextEmbeddingClassifierConfig
from tfhub_transfer.models.token_classifier import TokenClassifier
from tfhub_transfer.training.fault_tolerance import ResumePoint

TEXTS = ["a great film", "a dull film", "great fun, truly", "dull and slow", "wonderful acting", "a boring plot",
         "I loved it", "I regret it"]
SENTIMENT = ["pos", "neg", "pos", "neg", "pos", "neg", "pos", "neg"]
TOPICS = ["film", "film", "fun", "slow", "film,fun", "film", "", "slow"]
SCORES = [4.0, 1.0, 4.5, 0.5, 5.0, 1.5, 4.0, 0.0]
SENTENCES = [["John", "lives", "in", "Paris"], ["Mary", "visited", "Rome"], ["It", "rained"], ["Paris", "is", "big"]]
TAGS = [["B-PER", "O", "O", "B-LOC"], ["B-PER", "O", "B-LOC"], ["O", "O"], ["B-LOC", "O", "O"]]
PROBE = TEXTS[:3]

# Each case: (the registered class it covers, a factory of (tiny encoder, text-embedding module), examples).
# mode="finetune": the harness takes one optimizer step through Keras' fit; auto's own path (the choice at the
# first fit, the rebuild) is tests/models/test_keras_auto.py
CASES = {
    "text_single_label": ("TextClassifier", lambda enc, _: TextClassifier.from_encoder(
        str(enc), labels=["neg", "pos"], seq_length=16, mode="finetune"), TaskExamples(TEXTS, SENTIMENT, PROBE)),
    "text_multi_label": ("TextClassifier", lambda enc, _: TextClassifier.from_encoder(
        str(enc), labels=["film", "fun", "slow"], task="multi_label", seq_length=16, mode="finetune"),
        TaskExamples(TEXTS, TOPICS, PROBE)),
    "text_regression": ("TextClassifier", lambda enc, _: TextClassifier.from_encoder(
        str(enc), task="regression", seq_length=16, mode="finetune"), TaskExamples(TEXTS, SCORES, PROBE)),
    "text_pairs": ("TextClassifier", lambda enc, _: TextClassifier.from_encoder(
        str(enc), labels=["neg", "pos"], pair=True, seq_length=24, mode="finetune"),
        TaskExamples((TEXTS, TEXTS[::-1]), SENTIMENT, (PROBE, PROBE[::-1]))),
    "tokens": ("TokenClassifier", lambda enc, _: TokenClassifier.from_encoder(
        str(enc), ["O", "B-PER", "B-LOC"], seq_length=16), TaskExamples(SENTENCES, TAGS, SENTENCES[:2])),
    "rnn": ("RnnClassifier", lambda enc, _: RnnClassifier.from_word_vectors(
        TEXTS, 2, None, "random", rnn="gru", labels=["neg", "pos"], units=4, sequence_length=8, embedding_dim=8),
        TaskExamples(TEXTS, SENTIMENT, PROBE)),
    "text_embedding": ("TextEmbeddingClassifier", lambda enc, module: TextEmbeddingClassifier(
        TextEmbeddingClassifierConfig(2, str(module), mode="finetune"), ["neg", "pos"]),
        TaskExamples(TEXTS, SENTIMENT, PROBE)),
}
FAST = {"text_embedding"}  # the rest are integration (make integration, CI): 20-70 s each on 2 cores


@pytest.fixture(scope="module")
def embedding_module(tmp_path_factory):
    words = sorted({w for t in TEXTS for w in re.findall(r"[a-z]+", t.lower())})
    rows = np.random.default_rng(0).normal(0, 0.3, (len(words), 8)).astype(np.float32)
    return write_text_embedding_module(WordVectors(words, rows), tmp_path_factory.mktemp("embed") / "module")


def test_every_registered_task_model_has_a_harness_case():
    covered = {model_class for model_class, _, _ in CASES.values()}
    missing = sorted(set(registered_models()) - covered)
    assert not missing, f"registered task models without a harness case in CASES: {missing}"


@pytest.mark.parametrize("case", [pytest.param(name, marks=() if name in FAST else pytest.mark.integration)
                                  for name in CASES])
def test_task_model_through_the_harness(case, tiny_encoder, tmp_path, request):
    model_class, build, examples = CASES[case]
    module = request.getfixturevalue("embedding_module") if case == "text_embedding" else None
    run_task_model_test(lambda: build(tiny_encoder, module), examples, tmp_path)


class FakeStream:
    """A streamed source as the streaming reader gives one: (texts, targets) string batches, already batched."""

    streamed = True

    def __init__(self, texts, targets):
        self.texts, self.targets, self.calls = texts, np.asarray(targets), []

    def __len__(self) -> int:
        return len(self.texts)

    def batches(self, batch_size, epochs, seed, start_epoch, start_step, drop_remainder, shuffle):
        self.calls.append(dict(batch_size=batch_size, epochs=epochs, start_epoch=start_epoch, start_step=start_step))
        rows = tf.data.Dataset.from_tensor_slices((self.texts, self.targets))
        return rows.batch(batch_size, drop_remainder=drop_remainder).repeat(epochs - start_epoch).skip(start_step)

    def evaluation_batches(self, batch_size):
        return tf.data.Dataset.from_tensor_slices((self.texts, self.targets)).batch(batch_size)


def test_a_streamed_source_gets_the_models_own_encoding(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], seq_length=16)
    ids = np.array([int(s == "pos") for s in SENTIMENT], np.int64)
    stream = FakeStream(TEXTS, ids)
    streamed = list(model.training_stream(stream, 4, 2, 0, ResumePoint(1, 1), False, False, False))
    assert stream.calls == [dict(batch_size=4, epochs=2, start_epoch=1, start_step=1)]
    assert len(streamed) == 1  # epoch 1 from its second batch
    in_memory = model.evaluation_dataset(Examples(TEXTS, ids), 4)
    for (inputs, targets), (expected, expected_targets) in zip(model.evaluation_dataset(stream, 4), in_memory):
        for name in expected:  # the same encoder inputs as the in-memory pipeline's
            np.testing.assert_array_equal(inputs[name].numpy(), expected[name].numpy())
        np.testing.assert_array_equal(targets.numpy(), expected_targets.numpy())
    inputs, targets = streamed[0]
    np.testing.assert_array_equal(targets.numpy(), ids[4:8])
    assert inputs["input_word_ids"].shape[0] == 4 and inputs["input_word_ids"].dtype == tf.int32


def test_a_string_input_model_reads_a_streamed_source_as_it_comes():
    model = RnnClassifier.from_word_vectors(TEXTS, 2, None, "random", labels=["neg", "pos"], units=4,
                                            sequence_length=8, embedding_dim=8)
    stream = FakeStream(TEXTS, np.arange(8) % 2)
    batches = list(model.training_stream(stream, 8, 1, 0, ResumePoint(), False, False, False))
    assert [b[0].numpy().tolist() for b in batches] == [[t.encode() for t in TEXTS]]
    assert isinstance(model, TaskModel) and len(list(model.evaluation_dataset(stream, 3))) == 3
