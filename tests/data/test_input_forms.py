"""Every Keras input form (issue 33 item 1) and integer labels that keep names (item 4), on the tiny encoder.

fit / evaluate / predict take lists, arrays, Series and string tensors with labels; a DataFrame; batched
and unbatched tf.data datasets of (strings, labels) or (strings, labels, weights); for pairs the
((a, b), y) forms. Anything else is one error naming the form received and the forms accepted.
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.models.text_classifier import TextClassifier

TEXTS = ["a good film", "a bad film", "great acting", "dull plot", "loved it", "hated it"] * 2
IDS = [1, 0, 1, 0, 1, 0] * 2


@pytest.fixture(scope="module")
def model(tiny_encoder):
    tf_keras.utils.set_random_seed(0)
    built = TextClassifier.from_encoder(str(tiny_encoder), num_classes=2, seed=0, mode="finetune")  # one Keras fit
    built.compile(learning_rate=1e-3)
    return built


@pytest.fixture(scope="module")
def pair_model(tiny_encoder):
    tf_keras.utils.set_random_seed(0)
    built = TextClassifier.from_encoder(str(tiny_encoder), labels=["different", "same"], pair=True, seed=0,
                                        mode="finetune")
    built.compile(learning_rate=1e-3)
    return built


def _weights(model) -> list[np.ndarray]:
    return [w.numpy().copy() for w in model.trainable_weights]


def _moved(before, model) -> bool:
    return any(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


def test_fit_on_a_batched_dataset_trains_like_the_unbatched_one(model):
    unbatched = tf.data.Dataset.from_tensor_slices((TEXTS, IDS))
    batched = unbatched.batch(4)
    before = _weights(model)
    history = model.fit(batched, epochs=1, verbose=0)
    assert _moved(before, model)
    assert model.optimizer.iterations.numpy() == 3  # 12 examples in the dataset's own batches of 4
    assert np.isfinite(history.history["loss"][0])
    before = _weights(model)
    model.fit(unbatched, epochs=1, verbose=0, batch_size=4)
    assert _moved(before, model)
    from_batched, from_unbatched = model.predict(batched, verbose=0), model.predict(unbatched, verbose=0)
    assert from_batched.shape == from_unbatched.shape == (12, 2)
    np.testing.assert_allclose(from_batched, from_unbatched, atol=1e-5)


def test_datasets_with_weights_and_of_texts_alone(model):
    weighted = tf.data.Dataset.from_tensor_slices((TEXTS, IDS, [1.0, 0.0] * 6)).batch(5)
    before = _weights(model)
    model.fit(weighted, epochs=1, verbose=0)
    assert _moved(before, model)
    texts_only = tf.data.Dataset.from_tensor_slices(TEXTS[:5])
    assert model.predict(texts_only, verbose=0).shape == (5, 2)
    assert model.predict(texts_only.batch(2), verbose=0).shape == (5, 2)


def test_fit_on_a_dataframe_series_and_arrays(model):
    frame = pd.DataFrame({"text": TEXTS, "label": IDS})
    before = _weights(model)
    model.fit(frame, epochs=1, verbose=0, batch_size=6)
    assert _moved(before, model)
    expected = model.predict(TEXTS, verbose=0)
    np.testing.assert_allclose(model.predict(frame, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(model.predict(frame["text"], verbose=0), expected, atol=1e-5)
    loss, accuracy, _ = model.evaluate(np.array(TEXTS), frame["label"], verbose=0)
    assert np.isfinite(loss) and 0 <= accuracy <= 1


def test_a_dataframe_without_the_text_column_names_the_columns(model):
    with pytest.raises(Exception) as caught:
        model.fit(pd.DataFrame({"sentence": TEXTS, "label": IDS}), verbose=0)
    message = str(caught.value)
    assert "'text'" in message and "sentence" in message and "df['my_text']" in message


@pytest.mark.parametrize("x", [{"a": 1}, 42, object(), tf.data.Dataset.from_tensor_slices(TEXTS).repeat()],
                         ids=["dict", "int", "object", "infinite-dataset"])
def test_other_forms_name_the_form_received_and_those_accepted(model, x):
    with pytest.raises(ConfigError) as caught:
        model.predict(x, verbose=0)
    message = str(caught.value)
    assert "x" in message and ("DataFrame" in message or "repeat" in message)


def test_pairs_take_every_pair_form(pair_model):
    a, b = TEXTS[:6], TEXTS[6:]
    labels = ["same", "different"] * 3
    before = _weights(pair_model)
    pair_model.fit(tf.data.Dataset.from_tensor_slices(((a, b), labels)).batch(3), epochs=1, verbose=0)
    assert _moved(before, pair_model)
    expected = pair_model.predict((a, b), verbose=0)
    assert expected.shape == (6, 2)
    for x in ({"text_a": a, "text_b": b}, pd.DataFrame({"text": a, "text_b": b}),
              tf.data.Dataset.from_tensor_slices((a, b)), tf.data.Dataset.from_tensor_slices(((a, b), labels))):
        np.testing.assert_allclose(pair_model.predict(x, verbose=0), expected, atol=1e-5)
    with pytest.raises(ConfigError, match="sentence-pair"):
        pair_model.predict(a, verbose=0)


def test_integer_labels_keep_names(tiny_encoder, model):
    assert model.label_names == ["0", "1"] and type(model.label_names) is list
    assert set(model.predict_labels(TEXTS[:3])) <= {"0", "1"}
    named = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], seed=0)
    assert type(named.label_names) is list and named.label_names == ["neg", "pos"]
    before = _weights(named)
    named.compile(learning_rate=1e-3)
    named.fit(TEXTS, IDS, epochs=1, verbose=0)  # integer ids with named classes
    assert _moved(before, named) and named.label_names == ["neg", "pos"]
    assert set(named.predict_labels(TEXTS)) <= {"neg", "pos"}
    assert named.get_config()["label_names"] == ["neg", "pos"]
    assert model.get_config()["label_names"] is None  # the default names are not stored as given ones


def test_the_pipeline_reads_batched_string_datasets(tiny_encoder):
    from tfhub_transfer.preprocessing.text import TextPreprocessor, make_dataset

    preprocessor = TextPreprocessor(str(tiny_encoder / "preprocessor"))
    unbatched = tf.data.Dataset.from_tensor_slices((TEXTS, IDS))
    outputs = [list(make_dataset(ds, None, preprocessor, batch_size=5, seq_length=16))
               for ds in (unbatched, unbatched.batch(4))]
    assert [len(batches) for batches in outputs] == [3, 3]
    for (inputs_a, labels_a), (inputs_b, labels_b) in zip(*outputs):
        np.testing.assert_array_equal(labels_a, labels_b)
        np.testing.assert_array_equal(inputs_a["input_word_ids"], inputs_b["input_word_ids"])
