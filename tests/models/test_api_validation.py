"""The Python API held to the CLI's standard (issue 34): every public method of the task models, given a bad
argument, raises one `tfhub_transfer` error whose message names the Python argument (never a flag, never a
TensorFlow graph dump); the friendly cases (one string, an empty list, UTF-8 bytes) give the right result.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError, DataError, TransferError
from tfhub_transfer.models.saving import load
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.models.token_classifier import TokenClassifier

TEXTS = ["a good film", "a bad film", "great acting", "dull plot"] * 2
LABELS = ["pos", "neg", "pos", "neg"] * 2


@pytest.fixture(scope="module")
def model(tiny_encoder):
    """One small classifier for the whole table (building one costs seconds)."""
    tf_keras.utils.set_random_seed(0)
    return TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], seed=0)


@pytest.fixture(scope="module")
def encoder(tiny_encoder) -> str:
    return str(tiny_encoder)


def _saved_dir(tmp_path):
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "notes.txt").write_text("mine")
    return tmp_path / "exists"


# (id, call(model, encoder, tmp_path), error type, words the message must hold)
CASES = [
    ("labels-empty", lambda m, e, t: TextClassifier.from_encoder(e, labels=[]), ConfigError, ["labels"]),
    ("labels-duplicate", lambda m, e, t: TextClassifier.from_encoder(e, labels=["pos", "neg", "pos"]),
     ConfigError, ["labels", "'pos'"]),
    ("labels-one-string", lambda m, e, t: TextClassifier.from_encoder(e, labels="neg,pos"), ConfigError, ["labels"]),
    ("labels-not-strings", lambda m, e, t: TextClassifier.from_encoder(e, labels=[0, 1]), ConfigError, ["labels"]),
    ("num_classes-float", lambda m, e, t: TextClassifier.from_encoder(e, num_classes=2.5), ConfigError,
     ["num_classes", "2.5"]),
    ("num_classes-zero", lambda m, e, t: TextClassifier.from_encoder(e, num_classes=0), ConfigError, ["num_classes"]),
    ("num_classes-bool", lambda m, e, t: TextClassifier.from_encoder(e, num_classes=True), ConfigError,
     ["num_classes"]),
    ("num_classes-str", lambda m, e, t: TextClassifier.from_encoder(e, num_classes="2"), ConfigError,
     ["num_classes"]),
    ("labels-vs-num_classes", lambda m, e, t: TextClassifier.from_encoder(e, num_classes=3, labels=["a", "b"]),
     ConfigError, ["labels", "num_classes"]),
    ("encoder-none", lambda m, e, t: TextClassifier.from_encoder(None), ConfigError, ["encoder"]),
    ("option-unknown", lambda m, e, t: TextClassifier.from_encoder(e, num_clases=2), ConfigError, ["num_clases"]),
    ("tagger-tags-duplicate", lambda m, e, t: TokenClassifier.from_encoder(e, tags=["O", "B-X", "O"]), ConfigError,
     ["tags", "'O'"]),
    ("tagger-num_tags-float", lambda m, e, t: TokenClassifier.from_encoder(e, num_tags=2.5), ConfigError,
     ["num_tags"]),
    ("compile-optimizer", lambda m, e, t: m.compile(optimizer="adamx"), ConfigError, ["optimizer", "adamx"]),
    ("compile-learning_rate", lambda m, e, t: m.compile(learning_rate=-1.0), ConfigError, ["learning_rate"]),
    ("compile-schedule", lambda m, e, t: m.compile(schedule="cosine"), ConfigError, ["schedule"]),
    ("compile-warmup", lambda m, e, t: m.compile(warmup_fraction=2), ConfigError, ["warmup_fraction"]),
    ("fit-lengths", lambda m, e, t: m.fit(TEXTS, LABELS[:3], verbose=0), DataError, ["x", "y", "8", "3"]),
    ("fit-class-out-of-range", lambda m, e, t: m.fit(TEXTS, [5] * 8, verbose=0), DataError, ["y[0]", "5", "0..1"]),
    ("fit-float-labels", lambda m, e, t: m.fit(TEXTS, [0.3] * 8, verbose=0), DataError, ["y[0]", "0.3",
                                                                                           "regression"]),
    ("fit-one-string", lambda m, e, t: m.fit("a string", verbose=0), ConfigError, ["x", "one string"]),
    ("fit-empty", lambda m, e, t: m.fit([], [], verbose=0), DataError, ["x", "no texts"]),
    ("fit-none-label", lambda m, e, t: m.fit(TEXTS, ["pos"] * 7 + [None], verbose=0), DataError, ["y[7]", "None"]),
    ("fit-unknown-label", lambda m, e, t: m.fit(TEXTS, ["pos"] * 7 + ["meh"], verbose=0), DataError,
     ["y[7]", "'meh'"]),
    ("fit-no-labels", lambda m, e, t: m.fit(TEXTS, verbose=0), DataError, ["y"]),
    ("fit-none-text", lambda m, e, t: m.fit(TEXTS[:7] + [None], LABELS, verbose=0), DataError, ["x[7]"]),
    ("fit-int-texts", lambda m, e, t: m.fit([1, 2], [0, 1], verbose=0), ConfigError, ["x must be strings"]),
    ("fit-sample_weight", lambda m, e, t: m.fit(TEXTS, LABELS, sample_weight=[1.0] * 3, verbose=0), DataError,
     ["sample_weight"]),
    ("fit-negative-weight", lambda m, e, t: m.fit(TEXTS, LABELS, sample_weight=[-1.0] * 8, verbose=0), DataError,
     ["sample_weight[0]"]),
    ("fit-validation", lambda m, e, t: m.fit(TEXTS, LABELS, validation_data=(TEXTS, LABELS[:2]), verbose=0),
     DataError, ["validation_data", "y"]),
    ("fit-surrogate", lambda m, e, t: m.fit(["\ud800"] + TEXTS[1:], LABELS, verbose=0), DataError,
     ["x[0]", "surrogate"]),
    ("fit-set", lambda m, e, t: m.fit({"a", "b"}, [0, 1], verbose=0), ConfigError, ["x", "set"]),
    ("evaluate-empty", lambda m, e, t: m.evaluate([], [], verbose=0), DataError, ["x", "no texts"]),
    ("evaluate-lengths", lambda m, e, t: m.evaluate(TEXTS, LABELS[:2], verbose=0), DataError, ["y"]),
    ("evaluate-none", lambda m, e, t: m.evaluate(None, verbose=0), ConfigError, ["x=None"]),
    ("predict-none", lambda m, e, t: m.predict(None, verbose=0), ConfigError, ["x=None"]),
    ("predict-ints", lambda m, e, t: m.predict([1, 2], verbose=0), ConfigError, ["x must be strings"]),
    ("predict-bad-bytes", lambda m, e, t: m.predict([b"\xff\xfe"], verbose=0), DataError, ["x[0]", "UTF-8"]),
    ("predict-number", lambda m, e, t: m.predict(3, verbose=0), ConfigError, ["x", "int"]),
    ("predict_labels-none", lambda m, e, t: m.predict_labels(None), ConfigError, ["x=None"]),
    ("predict_labels-ints", lambda m, e, t: m.predict_labels([1]), ConfigError, ["x must be strings"]),
    ("save-existing", lambda m, e, t: m.save(_saved_dir(t)), ConfigError, ["overwrite=True"]),
    ("save-existing-not-ours", lambda m, e, t: m.save(_saved_dir(t), overwrite=True), ConfigError,
     ["overwrite=True"]),
    ("save-none", lambda m, e, t: m.save(None), ConfigError, ["filepath"]),
    ("load-none", lambda m, e, t: load(None), ConfigError, ["path"]),
    ("load-not-a-model", lambda m, e, t: load(t), ConfigError, ["model.save"]),
    ("export-format", lambda m, e, t: m.export(t, format="pb"), ConfigError, ["format", "'pb'"]),
    ("export-quantize", lambda m, e, t: m.export(t, quantize="int8"), ConfigError, ["quantize"]),
    ("export-none", lambda m, e, t: m.export(None), ConfigError, ["out_dir"]),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_one_clear_error(model, encoder, tmp_path, call, error, words):
    with pytest.raises(TransferError) as caught:
        call(model, encoder, tmp_path)
    assert isinstance(caught.value, error), f"{type(caught.value).__name__}: {caught.value}"
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert "--" not in message, f"a Python caller is told about a flag: {message}"
    assert "Traceback" not in message and "Graph" not in message


def test_failed_save_leaves_the_users_files(model, tmp_path):
    target = _saved_dir(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(ConfigError):
            model.save(target, overwrite=overwrite)
    assert (target / "notes.txt").read_text() == "mine" and sorted(p.name for p in target.iterdir()) == ["notes.txt"]


def test_predict_friendly_forms(model):
    assert model.predict([], verbose=0).shape == (0, 2)
    assert model.predict_labels([]) == []
    one = model.predict("a good film", verbose=0)
    np.testing.assert_allclose(one, model.predict(["a good film"], verbose=0), atol=1e-6)
    assert one.shape == (1, 2)
    np.testing.assert_allclose(model.predict([b"caf\xc3\xa9"], verbose=0), model.predict(["café"], verbose=0),
                               atol=1e-6)
    tensor = tf.constant(["a good film", "dull"])
    assert model.predict(tensor, verbose=0).shape == (2, 2)
    assert model.predict_labels(np.array(["a good film", "dull"])) in (
        [a, b] for a in ("neg", "pos") for b in ("neg", "pos"))


def test_integral_float_labels_train_as_class_ids(model):
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(learning_rate=1e-3)
    model.fit(TEXTS, np.array([1.0, 0.0] * 4), epochs=1, verbose=0)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))
