"""The package behaves as TensorFlow, TF Hub and Keras users expect (issue #33, items 5 and 8).

- The export's root object is callable on a string vector, like TF's "Classify text with BERT" model,
  in a process that has only TensorFlow and tensorflow_text (not this package).
- TF Hub's rule, stated in the README: `hub.KerasLayer(handle, signature=..., trainable=True)` is refused
  (signatures are inference-only); fine-tuning calls the default function, optionally with `output_key`.
- Quiet by default: importing the package raises TensorFlow's C++ log level unless the user set one, and
  `fit` / `evaluate` print lines, not `\\r` progress bars, when stdout is a file.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401
from conftest import run_python

from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.models.token_classifier import TokenClassifier
from tfhub_transfer.training.callbacks import LineProgress, fit_progress, summary_verbosity

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


# A small fit and evaluate from Python, as a user's script run with its output sent to a file.
SMALL_FIT = """
import sys
import tfhub_transfer
from tfhub_transfer import TextClassifier
texts, labels = ["good film", "bad film", "great", "awful"] * 8, ["pos", "neg", "pos", "neg"] * 8
model = TextClassifier.from_encoder(sys.argv[1], labels=["neg", "pos"], seq_length=16, seed=0, mode="finetune")
model.fit(texts, labels, batch_size=8, epochs=2, validation_data=(texts[:8], labels[:8]))
model.evaluate(texts, labels)
print("predicted", model.predict(texts[:2]).shape)
"""


def _small_fit(encoder, out_file) -> subprocess.Popen:
    """SMALL_FIT in a fresh interpreter with stdout sent to `out_file`, and no TF_CPP_MIN_LOG_LEVEL (the
    test process sets one)."""
    clean = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    with open(out_file, "w") as stdout:
        return subprocess.Popen([sys.executable, "-c", SMALL_FIT, str(encoder)], stdout=stdout,
                                stderr=subprocess.PIPE, text=True, env=clean)


@pytest.mark.slow
@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_quiet_by_default_and_line_progress_in_a_log_file(tiny_encoder, tmp_path):
    run = _small_fit(tiny_encoder, tmp_path / "quiet.log")
    stderr = run.communicate(timeout=300)[1]
    assert run.returncode == 0, stderr[-3000:]
    for noise in ("cuInit", "Type inference failed", "cpu_feature_guard", "oneDNN"):
        assert noise not in stderr

    log = (tmp_path / "quiet.log").read_text()
    assert "\r" not in log and "\b" not in log, log[:500]
    lines = log.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert any("val_accuracy" in line for line in lines if line.startswith("epoch 2/2"))
    summaries = [line for line in lines if re.match(r"\d+/\d+ - ", line)]  # Keras' verbose=2 lines
    assert len(summaries) == 2 and "accuracy" in summaries[0]  # evaluate, then predict: one line each
    assert "predicted (2, 2)" in lines


LOG_LEVEL_AT_IMPORT = """
import os, sys
import tfhub_transfer
print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"), "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "3"), ("0", "0")])
def test_import_raises_the_log_level_unless_the_user_set_one(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": given} if given is not None else {})
    done = subprocess.run([sys.executable, "-c", LOG_LEVEL_AT_IMPORT], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.stdout.split() == [expected, "False"], done.stderr  # and the import stays TensorFlow-free


def test_progress_choice_keeps_an_explicit_verbose(capsys):
    """Under pytest stdout is captured (not a terminal): "auto" becomes lines; an explicit value is kept."""
    verbose, progress = fit_progress("auto", epochs=3)
    assert verbose == 0 and len(progress) == 1 and isinstance(progress[0], LineProgress)
    assert progress[0].total_epochs == 3
    assert fit_progress(1, epochs=3) == (1, []) and fit_progress(0, epochs=3) == (0, [])
    assert summary_verbosity("auto") == 2 and summary_verbosity(1) == 1 and summary_verbosity(0) == 0


def test_export_hides_tensorflow_info_logs_as_in_a_notebook(tiny_encoder, tmp_path):
    """In a notebook TensorFlow logs INFO to stdout: a save's "Assets written to: <temp dir>" is hidden."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        model = TextClassifier.from_encoder(str(tiny_encoder), labels=["neg", "pos"], seq_length=16, seed=0)
        path = model.export(tmp_path, "quiet")
        assert logger.level == logging.INFO  # put back after the save
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert (path / "saved_model.pb").exists()
    assert not [r for r in records if "Assets written" in r.getMessage()]


INTERACTIVE_LOGGER = """
import sys
sys.ps1 = ">>> "  # as in a notebook kernel or an interactive shell: TensorFlow then logs INFO to stdout
from tfhub_transfer import TextClassifier  # loads TensorFlow
import tensorflow as tf
print(tf.get_logger().level)
"""


def test_notebooks_do_not_get_tensorflow_info_logs():
    done = subprocess.run([sys.executable, "-c", INTERACTIVE_LOGGER], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.split()[-1:] == ["30"], done.stderr[-2000:]  # logging.WARNING, not TF's INFO (20)
