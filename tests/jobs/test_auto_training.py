"""`--mode auto` end to end, no validation (`--validation-fraction 0`), and the step budgets on every task."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.train import train
from tfhub_transfer.transfer.modes.auto import SMALL_DATA_PER_CLASS

ROOT = Path(__file__).resolve().parents[2]
WORDS = {"pos": ["wonderful", "loved", "great", "superb"], "neg": ["awful", "rude", "dull", "broken"]}


def reviews(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = ["pos", "neg"] * (rows // 2)
    texts = [f"the film was {rng.choice(WORDS[y])} and {rng.choice(WORDS[y])}" for y in labels]
    return pd.DataFrame({"text": texts, "label": labels, "text_b": texts[::-1],
                         "score": [1.0 if y == "pos" else 0.0 for y in labels],
                         "tags": [y if i % 3 else f"{y},extra" for i, y in enumerate(labels)]})


def options(tiny_encoder, tmp_path, **fields):
    return dict(encoder=str(tiny_encoder), output_dir=str(tmp_path), tensorboard=False, verbose=0, **fields)


def test_auto_trains_on_every_label_below_the_threshold_and_says_why(tiny_encoder, tmp_path, capsys):
    result = train(TrainConfig.of(train=reviews(20), name="auto", max_steps=12, **options(tiny_encoder, tmp_path)))
    printed = capsys.readouterr().out
    assert "auto: 20 examples, 2 classes, 10 in the rarest ->" in printed and "no labels held out" in printed
    record = json.loads((tmp_path / "auto" / "run" / "metrics.json").read_text())
    assert record["validation"]["auto"]["validation_fraction"] == 0.0
    assert record["validation"]["auto"]["mode"] == str(result.model.mode)
    assert (result.export_path / "saved_model.pb").exists()


def test_auto_holds_out_validation_when_there_are_enough_labels(tiny_encoder, tmp_path, capsys):
    per_class = SMALL_DATA_PER_CLASS + 22  # past the small-data range
    result = train(TrainConfig.of(train=reviews(2 * per_class), name="many", max_steps=4,
                                  **options(tiny_encoder, tmp_path)))
    assert f"{per_class // 5} held out for validation" in capsys.readouterr().out  # a tenth of 2 x per_class
    assert result.metrics["auto"]["mode"] == "gradual" and "accuracy" in result.metrics


def test_validation_fraction_zero_means_no_validation(tiny_encoder, tmp_path):
    result = train(TrainConfig.of(train=reviews(20), name="none", mode="finetune", epochs=2, validation_fraction=0,
                                  **options(tiny_encoder, tmp_path)))
    assert "accuracy" not in result.metrics and not any(k.startswith("val_") for k in result.history)
    assert int(result.model.optimizer.iterations.numpy()) == 2  # every one of the 20 examples, 1 batch x 2 epochs
    assert (result.export_path / "saved_model.pb").exists()


def test_time_budget_stops_cleanly_keeps_the_best_and_exports(tiny_encoder, tmp_path):
    result = train(TrainConfig.of(train=reviews(80), name="timed", mode="finetune", epochs=5, batch_size=8,
                                  time_budget=0.0, **options(tiny_encoder, tmp_path)))
    assert int(result.model.optimizer.iterations.numpy()) == 1
    assert "--time-budget" in result.metrics["stopped"]
    assert (result.export_path / "saved_model.pb").exists()


@pytest.mark.parametrize("task, extra", [
    ("single_label", {}), ("multi_label", {"label_column": "tags"}),
    pytest.param("regression", {"label_column": "score"}, marks=pytest.mark.integration),
    pytest.param("single_label", {"text_b_column": "text_b"}, marks=pytest.mark.integration)])
def test_max_steps_is_honoured_by_every_sentence_task(tiny_encoder, tmp_path, task, extra):
    result = train(TrainConfig.of(train=reviews(80), name="steps", task=task, mode="finetune", epochs=4, batch_size=8,
                                  max_steps=3,
                                  export=False, **extra, **options(tiny_encoder, tmp_path)))
    assert int(result.model.optimizer.iterations.numpy()) == 3


def test_max_steps_is_honoured_by_the_tagger(tiny_encoder, tmp_path):
    conll = tmp_path / "train.txt"
    sentence = "\n".join(f"{w} X X {t}" for w, t in [("the", "O"), ("film", "B-ITEM"), ("was", "O"), ("good", "O")])
    conll.write_text("-DOCSTART- -X- O O\n\n" + "\n\n".join([sentence] * 40) + "\n")
    result = train(TrainConfig.of(train=str(conll), task="tokens", name="tags", epochs=4, batch_size=8, max_steps=3,
                                  export=False, **options(tiny_encoder, tmp_path)))
    assert int(result.model.optimizer.iterations.numpy()) == 3
    assert str(result.model.mode) == "finetune"  # auto's choice for token labels


@pytest.mark.integration  # about a minute: the script's own process, TensorFlow's import included
def test_learning_curve_script_runs_end_to_end(tiny_encoder, tmp_path, shared_data):
    out = tmp_path / "curve"
    subprocess.run([sys.executable, "learning_curve.py", "--datasets", "sst2", "--per-class", "4", "--seeds", "1",
                    "--max-eval", "16", "--arms", "default,finetune", "--encoder", str(tiny_encoder), "--out",
                    str(out)], cwd=ROOT / "benchmarks", check=True, timeout=600)
    rows = (out / "rows.csv").read_text().splitlines()
    assert len(rows) == 3 and (out / "learning_curve.png").stat().st_size > 1000
    assert "| sst2 | 4 | default |" in (out / "summary.md").read_text()
