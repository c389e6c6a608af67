"""Packing: several examples per row (block-diagonal attention, per-segment positions and pooling) trains
exactly as unpacked batches do, with far less padding."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.build.bert import segment_positions
from tfhub_transfer.encoders.resolve import read_metadata
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.errors import ConfigError, EncoderError
from tfhub_transfer.export.formats import open_export
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.jobs.train import train
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.preprocessing.packing import EXAMPLE_SLOTS, assign_rows, first_fit, pack_batch
from tfhub_transfer.preprocessing.text import TextPreprocessor, make_dataset

WORDS = "the movie was and it plot food staff great awful good bad i would this is a of to story".split()


def reviews(count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Texts of 2-24 words; positive when a cue word is in them (learnable, varied lengths)."""
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, rng.integers(2, 25))) for _ in range(count)]
    return texts, np.array([int("great" in t.split() or "good" in t.split()) for t in texts], np.int32)


@pytest.fixture(scope="module")
def encoder(tiny_encoder_no_dropout, tmp_path_factory):
    """A private copy of the dropout-free tiny encoder: its packed variant is written beside it."""
    target = tmp_path_factory.mktemp("packing") / "tiny"
    shutil.copytree(tiny_encoder_no_dropout, target)
    return str(target)


@pytest.fixture(scope="module")
def preprocessor(encoder):
    return TextPreprocessor(encoder + "/preprocessor")


def test_first_fit_places_every_example_once_within_the_row_length():
    lengths = np.random.default_rng(3).integers(1, 40, 200)
    lengths[7] = 90  # longer than a row: a row of its own
    rows, slots = first_fit(lengths, 64)
    assert rows[7] == rows.max() or np.sum(rows == rows[7]) == 1
    for row in np.unique(rows):
        members = rows == row
        assert sorted(slots[members]) == list(range(members.sum()))  # slots 0..k-1, each once
        assert lengths[members].sum() <= 64 or members.sum() == 1
    assert rows.max() + 1 <= -(-lengths.sum() // 64) + 2  # first-fit decreasing: close to the bound


def test_rows_are_cut_to_leave_the_least_padding():
    rng = np.random.default_rng(5)
    for _ in range(20):
        lengths = rng.integers(5, 30, 32)
        padded = {}
        for name, (rows, slots) in (("plain", first_fit(lengths, 128)), ("assigned", assign_rows(lengths, 128))):
            sums = np.bincount(rows, weights=lengths)
            assert sums.max() <= 128 and len(set(zip(rows, slots))) == len(lengths)
            padded[name] = len(sums) * sums.max()
        assert padded["assigned"] <= padded["plain"]
        assert padded["assigned"] < 1.1 * lengths.sum()  # a short last row no longer pads the batch


def test_a_packed_batch_holds_each_example_in_its_own_segment_with_restarted_positions():
    ids = tf.constant([[101, 5, 6, 102, 0, 0], [101, 7, 102, 0, 0, 0], [101, 8, 9, 10, 11, 102]])
    mask = tf.cast(ids > 0, tf.int32)
    packed = pack_batch({"input_word_ids": ids, "input_mask": mask, "input_type_ids": 0 * ids}, row_length=10)
    assert packed["input_word_ids"].shape[0] == 2  # 6 + 4 pieces in one row, 3 in the other
    segments = packed["input_mask"].numpy()
    positions = segment_positions(packed["input_mask"]).numpy()
    slots = packed[EXAMPLE_SLOTS].numpy()
    width = int(segments.max())
    for example in range(3):
        row, segment = divmod(int(slots[example]), width)
        inside = segments[row] == segment + 1
        real = ids[example].numpy()[mask[example].numpy() > 0]
        assert packed["input_word_ids"].numpy()[row][inside].tolist() == real.tolist()
        assert positions[row][inside].tolist() == list(range(len(real)))


def test_the_packed_encoder_computes_each_example_as_the_unpacked_one(encoder, preprocessor):
    variant = encoder_variant(encoder, packed=True)
    assert variant.endswith("tiny-packed") and read_metadata(Path(variant))["config"]["packed_segments"]
    stamp = (tf.io.gfile.stat(variant + "/encoder/saved_model.pb")).mtime_nsec
    assert encoder_variant(encoder, packed=True) == variant  # written once
    assert tf.io.gfile.stat(variant + "/encoder/saved_model.pb").mtime_nsec == stamp
    texts, _ = reviews(12, seed=1)
    inputs = preprocessor.encode(texts, 32)
    plain = hub.KerasLayer(encoder + "/encoder")(inputs)["sequence_output"].numpy()
    variant_layer = hub.KerasLayer(variant + "/encoder")
    np.testing.assert_allclose(variant_layer(inputs)["sequence_output"].numpy(), plain, atol=1e-5)
    packed = pack_batch(inputs, row_length=64)
    assert packed["input_word_ids"].shape[0] < len(texts)
    out = variant_layer({k: v for k, v in packed.items() if k != EXAMPLE_SLOTS})["sequence_output"].numpy()
    segments, width = packed["input_mask"].numpy(), int(packed["input_mask"].numpy().max())
    for example, slot in enumerate(packed[EXAMPLE_SLOTS].numpy()):
        row, segment = divmod(int(slot), width)
        real = inputs["input_mask"].numpy()[example] > 0
        np.testing.assert_allclose(out[row][segments[row] == segment + 1], plain[example][real], atol=1e-5)


def _fit(encoder: str, packing: int, texts, labels, **fit_options):
    tf.keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(encoder, labels=["neg", "pos"], seq_length=32, dropout=0.0, seed=1,
                                        packing=packing)
    model.compile(learning_rate=3e-3)
    history = model.fit(texts, [["neg", "pos"][i] for i in labels], batch_size=16, epochs=2, shuffle=False,
                        verbose=0, **fit_options)
    return model, history.history


@pytest.mark.slow
def test_a_classifier_trained_packed_equals_one_trained_unpacked(encoder):
    texts, labels = reviews(48)
    valid = reviews(16, seed=9)
    weights = np.linspace(0.5, 1.5, len(texts)).astype(np.float32)
    options = {"class_weight": "balanced", "sample_weight": weights, "validation_data": (valid[0], valid[1])}
    plain, plain_history = _fit(encoder, 0, texts, labels, **options)
    packed, packed_history = _fit(encoder, 64, texts, labels, **options)
    start = TextClassifier.from_encoder(encoder, labels=["neg", "pos"], seq_length=32, seed=1).weight_values()
    moved = [np.abs(a - b).max() for a, b in zip(plain.weight_values(), start)]
    assert max(moved) > 1e-3  # it trained
    for a, b in zip(plain.weight_values(), packed.weight_values()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for name, values in plain_history.items():
        np.testing.assert_allclose(values, packed_history[name], atol=1e-5, err_msg=name)
    assert plain_history["loss"][-1] < plain_history["loss"][0]  # and learnt
    batch = next(iter(packed.packed_for_training(make_dataset(texts[:16], labels[:16], packed.preprocessor, 16,
                                                              32))))
    assert batch[0]["input_word_ids"].shape[0] < 16  # fewer rows than examples: the padding went


@pytest.mark.slow
def test_train_with_pack_goes_through_the_one_loop_and_exports_a_raw_string_model(encoder, demo_data, tmp_path,
                                                                                   monkeypatch):
    rows_and_examples = []
    packed_for_training = TextClassifier.packed_for_training

    def spy(model, x):
        batches = packed_for_training(model, x)
        for inputs, labels, *_ in batches.take(1):
            rows_and_examples.append((inputs["input_word_ids"].shape[0], labels.shape[0]))
        return batches

    monkeypatch.setattr(TextClassifier, "packed_for_training", spy)
    result = train(TrainConfig.of(mode="finetune",
                                  train=demo_data, encoder=encoder, epochs=1, batch_size=16, learning_rate=3e-3,
                                  seq_length=32, dropout=0.0, packing=64, output_dir=tmp_path,
                                  max_train_examples=48, name="pack64", verbose=0))
    rows, examples = rows_and_examples[0]
    assert rows < examples == 16  # the one loop trained on packed batches
    probes = ["a wonderful film", "the plot was terrible and the staff rude", ""]
    served = open_export(result.export_path).predict(probes)
    expected = tf.nn.softmax(result.model.predict(probes, verbose=0)).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"mode": "contrastive"}, "--mode contrastive"),
    ({"long_text": "windows:8"}, "--long-text windows:8"),
    ({"pooling": "cls"}, "mean"),
])
def test_packing_refuses_what_it_cannot_pack(encoder, options, message):
    with pytest.raises(ConfigError, match=message):
        TextClassifier.from_encoder(encoder, num_classes=2, seq_length=32, packing=64, **options)


def test_packing_options_are_checked(demo_data, tiny_encoder):
    base = {"train": demo_data, "encoder": str(tiny_encoder)}
    for options, message in (({"packing": -1}, "--pack -1"),
                             ({"packing": 64, "mode": "freeze", "feature_cache": True}, "--feature-cache"),
                             ({"packing": 64, "task": "tokens"}, "--pack does not apply to --task tokens")):
        with pytest.raises(ConfigError, match=message):
            check_options(TrainConfig.of(**base, **options))


def test_packing_needs_an_encoder_this_package_wrote(tiny_encoder, tmp_path):
    bare = tmp_path / "published_style"
    shutil.copytree(tiny_encoder / "encoder", bare)
    with pytest.raises(EncoderError, match="--pack needs an encoder written by this package"):
        encoder_variant(str(bare), preprocessor=str(tiny_encoder / "preprocessor"), packed=True)


def test_a_packing_model_refuses_arrays_of_encoder_inputs_and_several_replicas(encoder, preprocessor, monkeypatch):
    model = TextClassifier.from_encoder(encoder, num_classes=2, seq_length=32, packing=64)
    inputs = {k: v.numpy() for k, v in preprocessor.encode(["a good film", "bad"], 32).items()}
    with pytest.raises(ConfigError, match="tf.data"):
        model.fit(inputs, np.array([1, 0]), epochs=1, verbose=0)
    two_replicas = type("TwoReplicas", (), {"num_replicas_in_sync": 2})()
    monkeypatch.setattr(TextClassifier, "distribute_strategy", property(lambda self: two_replicas))
    with pytest.raises(ConfigError, match="several replicas"):
        model.packed_for_training(make_dataset(["a good film", "bad"], np.array([1, 0]), preprocessor, 2, 32))


def test_the_cli_names_the_flag_and_what_to_do(demo_data, tiny_encoder, tmp_path, capsys):
    from tfhub_transfer.cli.main import main

    base = ["train", "--mode", "finetune",
                     "--train", str(demo_data), "--encoder", str(tiny_encoder), "--out", str(tmp_path)]
    assert main([*base, "--pack", "-1"]) == 2
    assert "--pack -1: must be a whole number" in capsys.readouterr().err
    assert main([*base, "--pack", "64", "--pooling", "cls"]) == 2
    err = capsys.readouterr().err
    assert "--pack pools each packed example by its mean" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # refused before anything was written
