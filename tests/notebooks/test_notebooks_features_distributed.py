"""The notebooks in notebooks/ run top to bottom on the tiny encoder with small settings (split over
files so that parallel test workers share them)."""

import pytest
from notebook_helpers import execute, last_output, notebook_env
from shared_encoders import shared_tiny_bert

from tfhub_transfer.encoders.dtypes import bfloat16_fallback


@pytest.mark.slow
def test_feature_based_notebook(tmp_path):
    encoder = shared_tiny_bert(num_layers=4)
    env = notebook_env(tmp_path / "out", encoder=encoder, epochs=2, lr="3e-3",
                       TFHUB_TRANSFER_CACHE=str(tmp_path / "cache"),
                       TFHUB_TRANSFER_NOTEBOOK_MIXES="scalar_mix")  # one of the six keeps it short
    notebook = execute("feature_based.ipynb", env, tmp_path)
    scores = eval(last_output(notebook, "scores = {r.setting"))  # the dict the notebook shows
    assert set(scores) == {"finetune", "scalar_mix"}
    assert scores["finetune"] > 0.7
    assert float(last_output(notebook, "pearson = ")) > 0.5
    assert (tmp_path / "cache" / "features").is_dir()

@pytest.mark.slow
def test_distributed_training_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=2, lr="3e-3")
    notebook = execute("distributed_training.ipynb", env, tmp_path)
    assert last_output(notebook, "replicas = ") == "2"  # two logical CPU devices, mirrored
    assert float(last_output(notebook, "mirrored_accuracy = ")) > 0.7
    bf16 = last_output(notebook, "bf16_accuracy = ")
    if bfloat16_fallback():  # this CPU would emulate bfloat16: the notebook says so instead of a second run
        assert "skipped: this CPU has no bfloat16 instructions" in bf16
    else:
        assert float(bf16) > 0.7
    assert "positive" in last_output(notebook, "served = ")
    assert (tmp_path / "out" / "distributed" / "1" / "saved_model.pb").exists()
    assert not (tmp_path / "out" / "distributed" / "run" / "backup").exists()
