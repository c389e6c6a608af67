"""The notebooks in notebooks/ run top to bottom on the tiny encoder with small settings (split over
files so that parallel test workers share them)."""

import pytest
from notebook_helpers import execute, last_output, notebook_env


@pytest.mark.slow
def test_quickstart_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "saved_models", encoder=tiny_encoder, epochs=3, lr="3e-3")
    notebook = execute("quickstart.ipynb", env, tmp_path)
    predicted = last_output(notebook, "predicted = ")
    assert "positive" in predicted or "negative" in predicted
    assert (tmp_path / "saved_models" / "quickstart" / "1" / "saved_model.pb").exists()
    assert float(last_output(notebook, "validation_accuracy = ")) > 0.7
    assert float(last_output(notebook, "keras_accuracy")) > 0.7  # the Keras path: compile() + fit(strings)
    assert (tmp_path / "saved_models" / "quickstart_keras" / "1" / "saved_model.pb").exists()

@pytest.mark.slow
def test_transfer_modes_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=2, lr="3e-3",
                       TFHUB_TRANSFER_NOTEBOOK_MODES="freeze,discriminative:0.5")
    notebook = execute("transfer_modes.ipynb", env, tmp_path)
    table = (tmp_path / "out" / "compare_small" / "compare.md").read_text()
    for mode in ("freeze", "discriminative:0.5"):
        assert f"| {mode} |" in table
    assert (tmp_path / "out" / "compare_small" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    multipliers = last_output(notebook, "multipliers = ")
    assert "'pooler': 0.8" in multipliers and "'layer_0'" in multipliers


@pytest.mark.slow
def test_few_shot_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "saved_models", encoder=tiny_encoder, epochs=3, lr="1e-3",
                       TFHUB_TRANSFER_NOTEBOOK_ITERATIONS="10", TFHUB_TRANSFER_NOTEBOOK_BASELINES="")
    notebook = execute("few_shot.ipynb", env, tmp_path)
    losses = [float(v) for v in last_output(notebook, "contrastive_loss = ").strip("[]").split(",")]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert float(last_output(notebook, "contrastive_accuracy = ")) > 0.58  # 8 per class; chance is 0.5
    assert (tmp_path / "saved_models" / "few_shot" / "1" / "saved_model.pb").exists()
    served = last_output(notebook, "served = ")
    assert served.count("positive") + served.count("negative") == 2
