"""Training, transfer modes freeze/finetune, and the raw-string export."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.export.saved_model import ExportedClassifier, export_classifier
from tfhub_transfer.jobs.train import load_run, train

PROBES = [
    "The film was wonderful, and I loved every minute.",
    "This phone was terrible, and I regret it.",
    "I found the staff charming.",
]


def encoder_weights(model):
    return {w.name: w.numpy().copy() for w in model.get_layer("encoder").weights}


def head_weights(model):
    return [w.numpy().copy() for w in model.get_layer("head").weights]


@pytest.fixture(scope="module")
def finetuned(tiny_encoder, tmp_path_factory, demo_data):
    out = tmp_path_factory.mktemp("saved_models")
    config = TrainConfig.of(
        train=demo_data, encoder=str(tiny_encoder), mode="finetune", epochs=4, learning_rate=3e-3,
        output_dir=out, name="reviews", verbose=0, validation_fraction=0.25,
    )
    return train(config)


def test_finetune_learns_above_chance(finetuned):
    assert finetuned.metrics["accuracy"] > 0.75
    assert finetuned.metrics["examples"] == 100
    assert len(finetuned.history["val_accuracy"]) == 4


def test_best_epoch_is_restored(finetuned):
    assert finetuned.metrics["accuracy"] == pytest.approx(max(finetuned.history["val_accuracy"]))


@pytest.mark.slow
def test_finetune_changes_encoder_and_freeze_does_not(tiny_encoder, tmp_path, demo_data):
    from tfhub_transfer.models.text_classifier import TextClassifier

    pristine = encoder_weights(TextClassifier.from_encoder(str(tiny_encoder)))
    frozen = train(TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="freeze", epochs=1,
                               output_dir=tmp_path, name="f", export=False, verbose=0))
    after = encoder_weights(frozen.model)
    assert after.keys() == pristine.keys()
    for name in pristine:
        np.testing.assert_array_equal(after[name], pristine[name], err_msg=name)
    assert not frozen.model.get_layer("encoder").trainable_weights

    tuned = train(TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="finetune", epochs=1,
                              output_dir=tmp_path, name="t", export=False, verbose=0))
    changed = encoder_weights(tuned.model)
    moved = [n for n in pristine if not np.array_equal(changed[n], pristine[n])]
    assert len(moved) >= len(pristine) - 2  # all but possibly unused type/position rows move


def test_export_layout_and_reports(finetuned):
    path = finetuned.export_path
    assert path.name == "1" and path.parent.name == "reviews"
    extra = path / "assets.extra"
    for name in ("confusion_matrix.png", "training_curves.png", "metrics.json", "tfhub_transfer_model.json"):
        assert (extra / name).stat().st_size > 0
    assert (extra / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    info = json.loads((extra / "tfhub_transfer_model.json").read_text())
    assert info["labels"] == ["negative", "positive"]


def test_export_matches_in_memory_model(finetuned):
    model = finetuned.model
    inputs = model.preprocessor.encode(PROBES, model.config.seq_length)
    expected = tf.nn.softmax(model(inputs, training=False)).numpy()
    got = ExportedClassifier(finetuned.export_path).predict(PROBES)
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5)
    assert got["labels"] == [finetuned.label_names[i] for i in expected.argmax(-1)]


def test_export_serves_in_a_process_without_the_package(finetuned, tmp_path):
    """Loads with only tensorflow + tensorflow_text, as TF Serving-style clients do."""
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        import tensorflow_text  # noqa
        assert "tfhub_transfer" not in sys.modules
        serve = tf.saved_model.load({str(finetuned.export_path)!r}).signatures["serving_default"]
        out = serve(text=tf.constant({PROBES!r}))
        assert "tfhub_transfer" not in sys.modules
        json.dump({{"p": out["probabilities"].numpy().tolist(),
                    "labels": [b.decode() for b in out["labels"].numpy()]}}, sys.stdout)
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout)
    local = ExportedClassifier(finetuned.export_path).predict(PROBES)
    np.testing.assert_allclose(served["p"], local["probabilities"], atol=1e-6)
    assert served["labels"] == local["labels"]


def test_interrupted_export_keeps_previous_version(finetuned, monkeypatch):
    model_dir = finetuned.export_path.parent
    before = sorted(p.name for p in model_dir.iterdir())

    def broken_save(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-export")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        export_classifier(finetuned.model, finetuned.label_names, model_dir.parent, "reviews")
    assert sorted(p.name for p in model_dir.iterdir()) == before  # no new version, no temporary left
    assert ExportedClassifier(finetuned.export_path).predict(PROBES[:1])["labels"]


def test_run_directory_rebuilds_the_same_model(finetuned):
    model, labels = load_run(finetuned.run_dir)
    assert labels == finetuned.label_names
    inputs = model.preprocessor.encode(PROBES, 128)
    np.testing.assert_allclose(
        model(inputs, training=False).numpy(), finetuned.model(inputs, training=False).numpy(), atol=1e-6
    )


def test_unknown_transfer_mode(tiny_encoder, demo_data, tmp_path):
    from tfhub_transfer.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown transfer mode 'thaw'"):
        train(TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="thaw", output_dir=tmp_path))


@pytest.mark.integration
def test_default_encoder_fine_tunes_on_demo_reviews(default_encoder, tmp_path, demo_data):
    result = train(TrainConfig.of(mode="finetune", train=demo_data, encoder="default", epochs=1, seq_length=64,
                               batch_size=16, output_dir=tmp_path, name="demo", verbose=0,
                               validation_fraction=0.25))
    assert result.metrics["accuracy"] > 0.9
    predictions = ExportedClassifier(result.export_path).predict(PROBES[:2])
    assert predictions["labels"] == ["positive", "negative"]
