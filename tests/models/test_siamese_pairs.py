"""`--pairs siamese`: each text of a sentence pair encoded on its own row, the head on |u-v|, u*v and the cosine."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from harness import paraphrase_or_not

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.layers.pooling import PairFeatures
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.preprocessing.text import LongText, make_dataset

SEQ_LENGTH = 16
FIRST = ["the movie was great", "a", "the food and the service and the staff were awful to us", "plot"]
SECOND = ["it was a wonderful film", "the story of this soundtrack is useless", "i would", "a plot"]


def siamese(encoder, mode: str = "finetune", **options) -> TextClassifier:
    tf_keras.utils.set_random_seed(0)
    return TextClassifier.from_encoder(str(encoder), labels=["different", "same"], pair=True, pairs="siamese",
                                       mode=mode, seq_length=SEQ_LENGTH, seed=0, **options)


def test_pair_features_are_the_distance_product_and_cosine_of_unit_embeddings():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    rows = np.stack([u, v], axis=1).reshape(6, 5)  # a0, b0, a1, b1, ...
    unit_u, unit_v = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (u, v))
    expected = np.concatenate([np.abs(unit_u - unit_v), unit_u * unit_v,
                               (unit_u * unit_v).sum(1, keepdims=True)], axis=1)
    np.testing.assert_allclose(PairFeatures()(tf.constant(rows)).numpy(), expected, atol=1e-6)
    swapped = np.stack([v, u], axis=1).reshape(6, 5)
    np.testing.assert_allclose(PairFeatures()(tf.constant(swapped)).numpy(), expected, atol=1e-6)


def test_each_text_of_a_pair_is_packed_on_its_own_row_as_it_would_be_alone(tiny_encoder):
    preprocessor = siamese(tiny_encoder).preprocessor
    apart = LongText.parse("truncate", SEQ_LENGTH, pair=True, pairs="siamese")
    inputs = preprocessor.encode(FIRST, SEQ_LENGTH, SECOND, apart)
    assert inputs["input_word_ids"].shape[:2] == (4, 2)
    for i, texts in enumerate(zip(FIRST, SECOND)):
        for row, text in enumerate(texts):
            alone = preprocessor.encode([text], SEQ_LENGTH)["input_word_ids"].numpy()[0]
            got = inputs["input_word_ids"].numpy()[i, row]
            np.testing.assert_array_equal(got[:len(alone)], alone)
            assert not got[len(alone):].any()  # padding only after the text's own [SEP]
    batches = make_dataset(FIRST, np.array([1, 0, 0, 1]), preprocessor, 3, SEQ_LENGTH, texts_b=SECOND,
                           long_text=apart)
    first, labels = next(iter(batches))
    np.testing.assert_array_equal(first["input_word_ids"].numpy(),
                                  inputs["input_word_ids"].numpy()[:3, :, :first["input_word_ids"].shape[-1]])
    assert labels.numpy().tolist() == [1, 0, 0]


def test_a_siamese_pair_scores_the_same_either_way_round_and_whatever_its_batch(tiny_encoder, tmp_path):
    model = siamese(tiny_encoder)
    logits = model.predict((FIRST, SECOND), verbose=0)
    np.testing.assert_allclose(model.predict((SECOND, FIRST), verbose=0), logits, atol=1e-5)
    one_by_one = np.concatenate([model.predict(([a], [b]), verbose=0) for a, b in zip(FIRST, SECOND)])
    np.testing.assert_allclose(one_by_one, logits, atol=1e-5)
    assert model.get_layer("head").input_shape[-1] == 2 * model.get_layer("pooling").output_shape[-1] + 1
    served = ExportedClassifier(model.export(tmp_path, "pairs")).predict(FIRST, texts_b=SECOND)  # raw strings
    np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(logits).numpy(), atol=1e-5)


def test_a_frozen_encoder_read_apart_trains_only_its_head_and_learns_a_pair_task(tiny_encoder):
    model = siamese(tiny_encoder, mode="freeze", dropout=0.0)
    encoder_before = [w.numpy().copy() for w in model.get_layer("encoder").weights]
    first, second, labels = paraphrase_or_not(96, seed=0)
    model.compile(learning_rate=3e-2)
    model.fit((first, second), labels, batch_size=16, epochs=30, verbose=0)
    for before, after in zip(encoder_before, model.get_layer("encoder").weights):
        np.testing.assert_array_equal(before, after.numpy())
    test_first, test_second, test_labels = paraphrase_or_not(64, seed=1)
    guessed = np.argmax(model.predict((test_first, test_second), verbose=0), axis=-1)
    assert np.mean(guessed == test_labels) >= 0.75  # chance 0.5


@pytest.mark.parametrize("options, flag", [
    ({"pair": False, "pairs": "siamese"}, "--text-b-column"),
    ({"pair": True, "pairs": "both"}, "--pairs"),
    ({"pair": True, "pairs": "siamese", "packing": 32}, "--pack"),
    ({"pair": True, "pairs": "siamese", "head": "bilstm"}, "--pairs siamese"),
])
def test_a_siamese_reading_that_cannot_apply_is_one_error_naming_the_option(tiny_encoder, options, flag):
    with pytest.raises(ConfigError, match=flag.replace("-", r"\-")):
        TextClassifier.from_encoder(str(tiny_encoder), seq_length=SEQ_LENGTH, **options)


def write_pairs(path, first, second, labels) -> str:
    rows = ["text_a\ttext_b\tlabel"] + [f"{a}\t{b}\t{'same' if y else 'different'}"
                                        for a, b, y in zip(first, second, labels)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def test_the_train_job_fits_a_head_on_fixed_pair_features_and_exports_what_it_scored(tiny_encoder, tmp_path,
                                                                                       capsys):
    from tfhub_transfer.cli.main import main

    train = write_pairs(tmp_path / "train.tsv", *paraphrase_or_not(64, seed=0))
    code = main(["train", "--train", train, "--text-column", "text_a", "--text-b-column", "text_b",
                 "--encoder", str(tiny_encoder), "--seq-length", str(SEQ_LENGTH), "--mode", "freeze",
                 "--pairs", "siamese", "--feature-cache", "--validation-fraction", "0", "--out", str(tmp_path),
                 "--name", "pairs"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "on 64 examples, validating on 0" in out and "head fitted on the fixed embeddings" in out  # every label
    first, second, labels = paraphrase_or_not(64, seed=1)
    served = ExportedClassifier(max((tmp_path / "pairs").glob("[0-9]*"))).predict(first, texts_b=second)
    names = [label.decode() if isinstance(label, bytes) else label for label in served["labels"]]
    assert np.mean([name == ("same" if y else "different") for name, y in zip(names, labels)]) >= 0.75  # chance 0.5


@pytest.mark.parametrize("flags, named", [
    (["--pairs", "siamese"], "--text-b-column"),
    (["--text-b-column", "text_b", "--pairs", "siamese", "--feature-cache", "--tune-head"], "--tune-head"),
    (["--text-b-column", "text_b", "--pairs", "siamese", "--export-format", "tflite"], "--export-format tflite"),
])
def test_a_siamese_reading_the_job_cannot_train_is_one_error_before_training(tiny_encoder, tmp_path, capsys, flags,
                                                                             named):
    from tfhub_transfer.cli.main import main

    train = write_pairs(tmp_path / "train.tsv", *paraphrase_or_not(16, seed=0))
    code = main(["train", "--train", train, "--text-column", "text_a", "--encoder", str(tiny_encoder),
                 "--mode", "freeze", "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err
    assert code == 2 and named in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.pb"))  # nothing half-written


def test_compare_fits_the_siamese_head_on_fixed_pair_features_as_train_does(tiny_encoder, tmp_path):
    import csv

    from tfhub_transfer.cli.main import main

    train = write_pairs(tmp_path / "train.tsv", *paraphrase_or_not(80, seed=0))
    code = main(["compare", "--train", train, "--text-column", "text_a", "--text-b-column", "text_b",
                 "--encoder", str(tiny_encoder), "--seq-length", str(SEQ_LENGTH), "--modes", "freeze",
                 "--pairs", "siamese", "--feature-cache", "--out", str(tmp_path / "cmp")])
    assert code == 0
    with open(tmp_path / "cmp" / "compare.csv", encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    assert float(row["valid_accuracy"]) >= 0.75  # 8 held-out pairs; chance 0.5
