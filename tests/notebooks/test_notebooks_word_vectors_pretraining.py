"""The notebooks in notebooks/ run top to bottom on the tiny encoder with small settings (split over
files so that parallel test workers share them)."""

import pytest
from notebook_helpers import execute, last_output, notebook_env


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
                       TFHUB_TRANSFER_NOTEBOOK_VECTORS=str(tmp_path / "vectors.txt"),
                       TFHUB_TRANSFER_NOTEBOOK_MODES="init")  # the others: tests/transfer/test_word_vectors.py
    notebook = execute("word_vectors.ipynb", env, tmp_path)
    accuracies = eval(last_output(notebook, "accuracies = "))  # a dict repr written by the notebook
    assert set(accuracies) == {"init"}
    assert accuracies["init"] > 0.75
    assert "positive" in last_output(notebook, "served = ")

@pytest.mark.slow
def test_continued_pretraining_notebook(tiny_encoder, tmp_path):
    env = notebook_env(tmp_path / "out", encoder=tiny_encoder, epochs=3, lr="5e-3")
    notebook = execute("continued_pretraining.ipynb", env, tmp_path)
    assert float(last_output(notebook, "loss_drop = ")) > 0.3
    assert "reviews-adapted/1/encoder" in last_output(notebook, "adapted_encoder = ")
