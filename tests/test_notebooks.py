"""The notebooks run top to bottom (small settings, tiny encoder) and produce sensible values."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def notebook_env(out: Path, encoder: Path | None = None, epochs: int = 3, lr: str = "3e-3",
                 **extra: str) -> dict[str, str]:
    """The small settings the notebooks read from the environment."""
    env = {"TFHUB_TRANSFER_NOTEBOOK_EPOCHS": str(epochs), "TFHUB_TRANSFER_NOTEBOOK_LR": lr,
           "TFHUB_TRANSFER_NOTEBOOK_OUT": str(out), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(NOTEBOOKS.parent), **extra}
    if encoder is not None:
        env["TFHUB_TRANSFER_NOTEBOOK_ENCODER"] = str(encoder)
    return env


def execute(name: str, env: dict[str, str], tmp_path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def last_output(notebook, marker: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "code" and marker in cell.source:
            outputs = [o for o in cell.outputs if o.output_type == "execute_result"]
            return outputs[-1]["data"]["text/plain"]
    raise AssertionError(f"no cell with {marker!r}")


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
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=2, lr="3e-3")
    notebook = execute("transfer_modes.ipynb", env, tmp_path)
    table = (tmp_path / "out" / "compare_small" / "compare.md").read_text()
    for mode in ("freeze", "partial:1", "gradual", "discriminative:0.5", "finetune", "reinit"):
        assert f"| {mode} |" in table
    assert (tmp_path / "out" / "compare_small" / "compare.png").read_bytes()[:4] == b"\x89PNG"
    multipliers = last_output(notebook, "multipliers = ")
    assert "'pooler': 0.8" in multipliers and "'layer_0'" in multipliers


@pytest.mark.slow
def test_word_vectors_notebook(tmp_path, demo_data):
    import re

    import numpy as np

    from tfhub_transfer.data.tables import read_table
    from tfhub_transfer.data.vectors import WordVectors, write_word2vec_text

    words = sorted({w for t in read_table(demo_data).texts for w in re.findall(r"[a-z]+", t.lower())})
    rng = np.random.default_rng(0)
    write_word2vec_text(WordVectors(words, rng.normal(size=(len(words), 8)).astype(np.float32)),
                        tmp_path / "vectors.txt")
    env = notebook_env(tmp_path / "out", epochs=4,
                       TFHUB_TRANSFER_NOTEBOOK_VECTORS=str(tmp_path / "vectors.txt"))
    notebook = execute("word_vectors.ipynb", env, tmp_path)
    accuracies = eval(last_output(notebook, "accuracies = "))  # a dict repr written by the notebook
    assert set(accuracies) == {"random", "init", "freeze", "slow"}
    assert accuracies["init"] > 0.75
    assert "positive" in last_output(notebook, "served = ")


@pytest.mark.slow
def test_continued_pretraining_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=3, lr="5e-3")
    notebook = execute("continued_pretraining.ipynb", env, tmp_path)
    assert float(last_output(notebook, "loss_drop = ")) > 0.3
    assert "reviews-adapted/1/encoder" in last_output(notebook, "adapted_encoder = ")


@pytest.mark.slow
def test_feature_based_notebook(tmp_path):
    from tfhub_transfer.encoders.build.tiny import write_tiny_bert

    encoder = write_tiny_bert(tmp_path / "tiny4", num_layers=4)
    env = notebook_env(tmp_path / "out", encoder=encoder, epochs=3, lr="3e-3",
                       TFHUB_TRANSFER_CACHE=str(tmp_path / "cache"))
    notebook = execute("feature_based.ipynb", env, tmp_path)
    scores = eval(last_output(notebook, "scores = {r.setting"))  # the dict the notebook shows
    assert set(scores) == {"finetune", "embeddings", "last", "second_to_last", "sum_last4", "concat_last4",
                           "scalar_mix"}
    assert scores["finetune"] > 0.7
    assert float(last_output(notebook, "pearson = ")) > 0.5
    assert (tmp_path / "cache" / "features").is_dir()


@pytest.mark.slow
def test_distributed_training_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=3, lr="3e-3")
    notebook = execute("distributed_training.ipynb", env, tmp_path)
    assert last_output(notebook, "replicas = ") == "2"  # two logical CPU devices, mirrored
    assert float(last_output(notebook, "mirrored_accuracy = ")) > 0.7
    assert float(last_output(notebook, "bf16_accuracy = ")) > 0.7
    assert "positive" in last_output(notebook, "served = ")
    assert (tmp_path / "out" / "distributed" / "1" / "saved_model.pb").exists()
    assert not (tmp_path / "out" / "distributed" / "run" / "backup").exists()
