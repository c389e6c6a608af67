"""Few-shot `--mode contrastive` (SetFit): balanced, reproducible pairs; the pair loss falls; the head fitted on
the tuned embeddings beats chance with 8 examples per class; the export serves raw strings."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from conftest import run_python

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.models.contrastive import PairEncoderModel, embed
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.transfer.contrastive import PairExamples, build_pairs, pair_dataset
from tfhub_transfer.transfer.modes import TransferMode


def test_pairs_are_balanced_correctly_labelled_and_reproducible():
    targets = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3])  # imbalanced; class 3 has one example
    pairs = build_pairs(targets, iterations=4, seed=7)
    assert len(pairs) == 2 * 4 * len(targets)
    assert (pairs.similarity == 1).sum() == (pairs.similarity == 0).sum()
    same = targets[pairs.first] == targets[pairs.second]
    np.testing.assert_array_equal(same, pairs.similarity == 1)  # every pair's label is right
    alone = targets[pairs.first] == 3
    assert (pairs.first[~alone & same] != pairs.second[~alone & same]).all()  # a positive is another example
    assert np.bincount(pairs.first, minlength=len(targets)).tolist() == [8] * len(targets)  # each anchors 4 + 4
    again = build_pairs(targets, iterations=4, seed=7)
    other = build_pairs(targets, iterations=4, seed=8)
    np.testing.assert_array_equal(pairs.second, again.second)
    assert not np.array_equal(pairs.second, other.second)


def test_default_pairs_are_every_unique_pair_once_balanced_and_within_the_budget():
    targets = np.array([0] * 8 + [1] * 8)  # 56 same-class pairs, 64 across: the 56 repeated up to 64
    pairs = build_pairs(targets, seed=3)
    same = targets[pairs.first] == targets[pairs.second]
    np.testing.assert_array_equal(same, pairs.similarity == 1)
    assert (pairs.similarity == 1).sum() == (pairs.similarity == 0).sum() == 64
    assert (pairs.first < pairs.second).all()  # no self-pair, each pair listed one way
    unique = set(zip(pairs.first.tolist(), pairs.second.tolist()))
    assert len(unique) == 120  # every unique pair of the 16 examples occurs
    np.testing.assert_array_equal(build_pairs(targets, seed=3).second, pairs.second)  # reproducible
    many = np.repeat(np.arange(4), 30)  # 7,140 unique pairs: a balanced sample of the budget, no pair twice
    sampled = build_pairs(many, seed=0, budget=1280)
    assert len(sampled) == 1280 and (sampled.similarity == 1).sum() == 640
    assert len(set(zip(sampled.first.tolist(), sampled.second.tolist()))) == 1280
    huge = np.repeat(np.arange(2), 2000)  # too many pairs to list: the per-example draw, within the budget
    assert len(build_pairs(huge, seed=0, budget=8000)) == 8000
    singletons = build_pairs(np.arange(3), seed=0)  # one example per class: positives pair each with itself
    assert ((singletons.first == singletons.second) == (singletons.similarity == 1)).all()


def test_multi_label_pairs_share_a_label_or_none():
    rows = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]], np.float32)
    pairs = build_pairs(rows, iterations=3, seed=0)
    shared = (rows[pairs.first] * rows[pairs.second]).sum(-1) > 0
    np.testing.assert_array_equal(shared, pairs.similarity == 1)
    assert (pairs.similarity == 1).sum() == (pairs.similarity == 0).sum()


def test_pairs_need_two_classes_and_modes_parse_iterations():
    with pytest.raises(ConfigError, match="two classes"):
        build_pairs(np.zeros(5, np.int32))
    assert TransferMode.parse("contrastive").pair_iterations is None  # every unique pair
    assert str(TransferMode.parse("contrastive")) == "contrastive"
    mode = TransferMode.parse("contrastive:5")
    assert (mode.pair_iterations, str(mode), mode.encoder_trainable) == (5, "contrastive:5", True)
    for bad in ("contrastive:0", "contrastive:2.5"):
        with pytest.raises(ConfigError, match="contrastive:N"):
            TransferMode.parse(bad)


@pytest.mark.parametrize("options, match", [({"task": "regression"}, "--task regression"),
                                            ({"task": "tokens"}, "--task tokens"),
                                            ({"text_b_column": "b"}, "--text-b-column")])
def test_refused_where_it_does_not_apply(options, match):
    with pytest.raises(ConfigError, match=match):
        check_options(TrainConfig.of(train="x.tsv", mode="contrastive", **options))


def test_the_model_refuses_regression_and_pairs():
    check_applies = TransferMode.parse("contrastive").check_applies  # the mode declares where it applies
    with pytest.raises(ConfigError, match="regression"):
        check_applies("regression")
    with pytest.raises(ConfigError, match="sentence pairs"):
        check_applies("single_label", pair=True)
    check_applies("multi_label")
    assert set(PairEncoderModel.unsupported) == {"resume", "backup_every_steps"}


@pytest.fixture(scope="module")
def few_shot(tiny_encoder, demo_data):
    """8 reviews per class (seeded draw) -> contrastive fit on the tiny encoder; the other reviews held out."""
    table = read_table(demo_data)
    texts, labels = table.texts, [str(y) for y in table.labels]
    rng = np.random.default_rng(0)
    chosen = [int(i) for name in sorted(set(labels))
              for i in rng.choice([i for i, y in enumerate(labels) if y == name], 8, replace=False)]
    rest = sorted(set(range(len(texts))) - set(chosen))
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=sorted(set(labels)), mode="contrastive:10",
                                        seq_length=32, seed=0)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").trainable_weights]
    model.compile(learning_rate=1e-3)  # a random tiny encoder needs more than the 2e-5 a pretrained one takes
    history = model.fit([texts[i] for i in chosen], [labels[i] for i in chosen], batch_size=16, epochs=3,
                        verbose=0)
    held_out = ([texts[i] for i in rest], [labels[i] for i in rest])
    return model, encoder_before, history.history, held_out


def test_contrastive_loss_falls_and_tunes_the_classifiers_own_encoder(few_shot):
    model, encoder_before, history, _ = few_shot
    losses = history["contrastive_loss"]
    assert len(losses) == 3 and losses[-1] < 0.5 * losses[0]
    after = [w.numpy() for w in model.get_layer("encoder").trainable_weights]
    assert sum(not np.allclose(a, b) for a, b in zip(encoder_before, after)) > 10
    assert history["accuracy"][-1] == 1.0  # the head separates the 16 tuned embeddings
    with pytest.raises(ConfigError, match="at least two classes"):  # a dataset is read into texts and labels
        model.fit(tf.data.Dataset.from_tensor_slices((["a"], [0])).batch(1))


def test_few_shot_classifier_beats_chance_and_its_export_serves_raw_strings(few_shot, tmp_path):
    model, _, _, (texts, labels) = few_shot
    predicted = model.predict_labels(texts)
    accuracy = np.mean([p == y for p, y in zip(predicted, labels)])
    assert accuracy > 0.58, accuracy  # 384 held-out reviews, balanced: chance is 0.5
    served = ExportedClassifier(model.export(tmp_path, "few_shot")).predict(texts[:24])
    assert served["labels"] == predicted[:24]


def pair_cosines_against_embeddings(model, texts, pairs, batch_size, drop_remainder=False):
    """(the pair model's output per pair, the cosine of the pair's two texts embedded one by one)."""
    examples = PairExamples(texts, pairs)
    with model.distribute_strategy.scope():
        pair_model = PairEncoderModel(model)
    dataset = pair_dataset(examples, model.preprocessor, batch_size, model.seq_length, shuffle=False,
                           drop_remainder=drop_remainder).map(lambda inputs, target: inputs)
    rows = pair_model.predict(dataset, verbose=0)[:, 0]
    np.testing.assert_array_equal(rows[0::2], rows[1::2])  # both rows of a pair carry its cosine
    unit = embed(model, texts) / np.linalg.norm(embed(model, texts), axis=1, keepdims=True)
    expected = (unit[pairs.first] * unit[pairs.second]).sum(1)
    return rows[0::2], expected[: len(rows) // 2]


def test_each_pair_is_scored_by_the_cosine_of_its_own_two_texts(few_shot):
    model, _, _, (texts, _) = few_shot
    pairs = build_pairs(np.arange(12) % 3, iterations=2, seed=1)  # 48 pairs of 12 texts of mixed lengths
    scored, expected = pair_cosines_against_embeddings(model, texts[:12], pairs, batch_size=5)
    assert len(scored) == len(pairs) and np.ptp(expected) > 0.01  # the pairs differ, so a mix-up would show
    np.testing.assert_allclose(scored, expected, atol=1e-4)


MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from tfhub_transfer.models.text_classifier import TextClassifier
    from tfhub_transfer.transfer.contrastive import build_pairs
    sys.path[:0] = [sys.argv[2], sys.argv[3]]  # this test's folder and tests/ (its conftest)
    from test_contrastive import pair_cosines_against_embeddings

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = TextClassifier.from_encoder(sys.argv[1], labels=["neg", "pos"], mode="contrastive:4", seq_length=16)
        model.compile(learning_rate=1e-3)
    texts = ["the film was wonderful", "a great plot", "lovely acting", "superb",
             "the plot was awful", "boring film", "terrible acting", "bad"] * 2
    labels = (["pos"] * 4 + ["neg"] * 4) * 2
    before = model.get_layer("encoder").weights[0].numpy().copy()
    history = model.fit(texts, labels, batch_size=4, epochs=2, verbose=0)
    moved = bool((model.get_layer("encoder").weights[0].numpy() != before).any())
    pairs = build_pairs(np.arange(8) % 2, iterations=3, seed=0)
    scored, expected = pair_cosines_against_embeddings(model, texts[:8], pairs, 4, drop_remainder=True)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "moved": moved,
                      "pair_error": float(np.abs(scored - expected).max()),
                      "contrastive_loss": history.history["contrastive_loss"],
                      "head_accuracy": history.history["accuracy"][-1]}))
""")


@pytest.mark.integration  # a fresh process with two logical devices: about a minute
def test_contrastive_under_a_mirrored_strategy(tiny_encoder):
    here = Path(__file__).parent
    done = run_python(MIRRORED, tiny_encoder, here, here.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["moved"]
    assert result["contrastive_loss"][-1] < result["contrastive_loss"][0]
    assert result["head_accuracy"] > 0.9  # 16 texts, chance 0.5
    assert result["pair_error"] < 1e-4  # each replica's rows are whole pairs
