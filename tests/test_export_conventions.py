"""Exports and encoders behave as TensorFlow and TF Hub users expect of any SavedModel (issue #33, item 5).

- The export's root object is callable on a string vector, like TF's "Classify text with BERT" model,
  in a process that has only TensorFlow and tensorflow_text (not this package).
- TF Hub's rule, stated in the README: `hub.KerasLayer(handle, signature=..., trainable=True)` is refused
  (signatures are inference-only); fine-tuning calls the default function, optionally with `output_key`.
"""

import json

import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401
from conftest import run_python

from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.models.token_classifier import TokenClassifier

PROBES = ["a good film", "dull and far too long", ""]

# Runs without tfhub_transfer: loads each export, calls its root and its `serving_default` on the same
# texts, and prints both outputs as JSON (the test compares them).
CALL_ROOT = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the exports tokenise with its ops)
results = {}
for path, inputs in json.loads(sys.argv[1]).items():
    loaded = tf.saved_model.load(path)
    texts = {name: tf.constant(values) for name, values in inputs.items()}
    called = loaded(*texts.values())
    signed = loaded.signatures["serving_default"](**texts)
    results[path] = {how: {k: v.numpy().tolist() for k, v in out.items()}
                     for how, out in (("called", called), ("signature", signed))}
assert "tfhub_transfer" not in sys.modules
print(json.dumps(results, default=lambda b: b.decode("utf-8")))
"""


@pytest.fixture(scope="module")
def exports(tiny_encoder, tmp_path_factory) -> dict[str, dict[str, list[str]]]:
    """A sentence classifier, a pair classifier and a tagger on the tiny encoder, exported untrained
    (the call convention does not depend on the weights): {export path: its inputs by name}."""
    out = tmp_path_factory.mktemp("exports")
    single = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], seq_length=16, seed=0)
    pair = TextClassifier.from_encoder(str(tiny_encoder), labels=["no", "yes"], pair=True, seq_length=16, seed=0)
    tagger = TokenClassifier.from_encoder(str(tiny_encoder), tags=["O", "B-X", "I-X"], seq_length=16, seed=0)
    return {str(single.export(out, "single")): {"text": PROBES},
            str(pair.export(out, "pair")): {"text_a": PROBES, "text_b": PROBES[::-1]},
            str(tagger.export(out, "tagger")): {"text": PROBES}}


def test_loaded_export_is_callable_without_the_package(exports):
    done = run_python(CALL_ROOT, json.dumps(exports), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == set(exports)
    for path, outputs in results.items():
        assert outputs["called"] == outputs["signature"], path
        assert all(len(values) == len(PROBES) for values in outputs["called"].values()), path
    single = next(outputs for path, outputs in results.items() if "single" in path)["called"]
    assert sorted(single) == ["label_ids", "labels", "probabilities"]
    assert set(single["labels"]) <= {"neg", "pos"}


def test_root_call_takes_a_string_vector_only(exports):
    loaded = tf.saved_model.load(next(path for path in exports if "single" in path))
    assert loaded(tf.constant(["one", "two"]))["probabilities"].shape == (2, 2)
    with pytest.raises((TypeError, ValueError)):
        loaded(tf.constant([1, 2]))


def test_tf_hub_refuses_trainable_signatures_and_fine_tunes_the_default_function(tiny_encoder):
    """The rule the README states, checked against the installed tensorflow_hub."""
    preprocessor = hub.load(str(tiny_encoder / "preprocessor"))
    inputs = preprocessor(tf.constant(["a good film", "dull"]))
    handle = str(tiny_encoder / "encoder")

    signed = hub.KerasLayer(handle, signature="serving_default", output_key="pooled_output", trainable=True)
    with pytest.raises(ValueError, match="trainable = True is unsupported when calling a SavedModel signature"):
        signed(inputs)
    inference = hub.KerasLayer(handle, signature="serving_default", signature_outputs_as_dict=True)
    assert "pooled_output" in inference(inputs) and not inference.trainable_weights

    whole = hub.KerasLayer(handle, trainable=True)  # the default function: a dict of every output
    assert {"pooled_output", "sequence_output"} <= set(whole(inputs)) and whole.trainable_weights
    pooled = hub.KerasLayer(handle, trainable=True, output_key="pooled_output")
    assert pooled(inputs).shape == (2, 32) and pooled.trainable_weights
    with pytest.raises(ValueError, match="signature_outputs_as_dict is only valid if specifying a signature"):
        hub.KerasLayer(handle, trainable=True, signature_outputs_as_dict=True)
