"""What a practitioner sees (issue 14, items 4-10): --help defaults, log-file progress, speed in metrics.json,
TensorBoard per-group learning rates, evaluate's report and errors.tsv, compare --test."""

import contextlib
import csv
import io
import json
import re
import types

import pytest

from tfhub_transfer.cli.main import build_parser, main

EPOCHS = 2
TRAIN_EXAMPLES = 96


@pytest.fixture(scope="module")
def trained(tiny_encoder, demo_data, tmp_path_factory):
    """One tiny discriminative fine-tune through the CLI, its stdout captured as a log file would be."""
    out = tmp_path_factory.mktemp("reports")
    stdout = io.StringIO()  # not a terminal, as when stdout goes to a log file
    with contextlib.redirect_stdout(stdout):
        code = main(["train", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--epochs", str(EPOCHS),
                     "--batch-size", "16", "--seq-length", "32", "--max-train-examples", str(TRAIN_EXAMPLES),
                     "--mode", "discriminative", "--frozen-epochs", "0", "--lr", "3e-3", "--out", str(out),
                     "--name", "r"])
    assert code == 0
    return types.SimpleNamespace(out=out, log=stdout.getvalue(), run=out / "r" / "run", export=out / "r" / "1")


def _help(capsys, monkeypatch, command: str) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside "(default: ...)"
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


def _option_help(text: str, flag: str) -> str:
    """The help of one option (`--epochs EPOCHS ...`), its wrapped lines joined."""
    chunks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])
    return " ".join(next(c for c in chunks if c.startswith(flag)).split())


def test_train_help_shows_the_defaults(capsys, monkeypatch):
    text = _help(capsys, monkeypatch, "train")
    for flag, default in (("--epochs EPOCHS", "auto"), ("--batch-size BATCH_SIZE", "32"),
                          ("--seq-length SEQ_LENGTH", "128"), ("--warmup-fraction WARMUP_FRACTION", "0.1"),
                          ("--mode MODE", "auto"), ("--weight-decay", "0.01")):
        assert _option_help(text, flag).endswith(f"(default: {default})"), flag
    lr = _option_help(text, "--lr LR")
    assert "5e-05" in lr and "0.001" in lr  # the encoder's and the head's peak rates
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "--tensorboard, --no-tensorboard" in text or "--tensorboard | --no-tensorboard" in text


def test_options_without_a_default_say_what_leaving_them_out_means():
    commands = ("train", "compare", "pretrain", "study-layers", "evaluate", "predict", "export", "demo")
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    unexplained = [f"{name} {action.option_strings[0]}" for name in commands
                   for action in sub.choices[name]._actions
                   if action.option_strings and action.default is None and not action.required
                   and "default" not in (action.help or "") and "without" not in (action.help or "")]
    assert unexplained == []


def test_log_file_gets_one_line_per_epoch_and_no_redrawn_bars(trained):
    log = trained.log
    assert "\r" not in log and "\b" not in log
    epochs = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == [f"epoch {e}/{EPOCHS}" for e in range(1, EPOCHS + 1)]
    assert all("val_loss" in line and "examples/s" in line for line in epochs)
    assert f"Training tiny (encoder, mode discriminative) on {TRAIN_EXAMPLES} examples" in log


def test_long_epochs_get_a_line_every_n_steps(capsys):
    from tfhub_transfer.training.callbacks import LineProgress

    progress = LineProgress(epochs=1, every_steps=100)
    progress.set_params({"steps": 250, "epochs": 1})
    progress.on_epoch_begin(0)
    for step in range(250):
        progress.on_train_batch_end(step, {"loss": 0.5})
    progress.on_epoch_end(0, {"loss": 0.5, "val_loss": 0.6})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/1 step 100/250", "epoch 1/1 step 200/250", "epoch 1/1"]


def test_long_encoding_in_a_log_file_prints_progress_lines(capsys, monkeypatch):
    from tfhub_transfer.training import callbacks

    clock = iter([0.0, 10.0, 31.0, 40.0, 70.0, 71.0])  # start, then one reading per update
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: next(clock))
    progress = callbacks.progress_bar(1000, "texts", verbose=1)  # pytest's stdout is not a terminal
    for count in (100, 300, 400, 700, 1000):
        progress.update(count)
    out = capsys.readouterr().out
    assert "\r" not in out
    lines = out.splitlines()
    assert lines[0] == "encoding 1,000 texts"
    # every 30 s at most (31 s and 70 s in), and always the end
    assert [line.split(" (")[0].strip() for line in lines[1:]] == ["300/1,000 texts", "700/1,000 texts",
                                                                   "1,000/1,000 texts"]


def test_quiet_still_announces_the_run(capsys):
    import tensorflow as tf

    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.common import announce

    model = types.SimpleNamespace(spec=None, name="clf", mode="finetune")
    announce(TrainConfig.of(train="t.tsv", verbose=0), model, 10, 2, ["a", "b"], tf.distribute.get_strategy())
    assert capsys.readouterr().out.startswith("Training clf (encoder, mode finetune) on 10 examples")


def test_metrics_json_records_speed_and_the_log_prints_it(trained):
    speed = json.loads((trained.run / "metrics.json").read_text())["speed"]
    assert speed["train_seconds"] > 0 and speed["examples_per_second"] > 0 and speed["peak_rss_mb"] > 50
    assert [e["epoch"] for e in speed["epochs"]] == list(range(1, EPOCHS + 1))
    assert all(e["examples"] == TRAIN_EXAMPLES and e["examples_per_second"] > 0 for e in speed["epochs"])
    assert sum(e["train_seconds"] for e in speed["epochs"]) <= speed["train_seconds"]
    exported = json.loads((trained.export / "assets.extra" / "metrics.json").read_text())
    assert exported["speed"] == speed
    assert re.search(r"^trained in [\d.]+ s \(2 epochs\), [\d,]+ train examples/s", trained.log, re.M)


def _scalars(directory) -> dict[str, list[tuple[int, float]]]:
    import tensorflow as tf

    values: dict[str, list] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                values.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    return values


def test_tensorboard_has_per_group_learning_rates_loss_and_speed(trained):
    runs = list((trained.run / "tensorboard").iterdir())
    assert len(runs) == 1  # survived saving the run directory
    train, valid = _scalars(runs[0] / "train"), _scalars(runs[0] / "validation")
    groups = ["embeddings", "layer_0", "layer_1", "pooler"]  # the tiny encoder's layer groups
    assert {t for t in train if t.startswith("learning_rate/")} == {f"learning_rate/{g}" for g in [*groups, "head"]}
    rates = {g: dict(train[f"learning_rate/{g}"]) for g in groups}
    step = next(s for s, v in train["learning_rate/embeddings"] if v > 0)  # all groups training
    assert 0 < rates["embeddings"][step] < rates["layer_0"][step] < rates["layer_1"][step]  # discriminative
    unfrozen = [v for _, v in train["unfrozen_groups"]]
    assert unfrozen == sorted(unfrozen) and unfrozen[-1] == len(groups)
    assert [s for s, _ in train["epoch_loss"]] == [s for s, _ in valid["epoch_loss"]] == [1, 2]
    assert "epoch_accuracy" in valid and all(v > 0 for _, v in train["epoch_examples_per_second"])


def test_evaluate_prints_tables_and_writes_errors_by_loss(trained, demo_data, tmp_path, capsys):
    from tfhub_transfer.jobs.evaluate import write_report

    out = tmp_path / "eval"
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained.export), "--data", str(demo_data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"true \\ predicted\s+negative\s+positive", printed)
    assert re.search(r"^negative\s+\d+\s+\d+$", printed, re.M)
    assert re.search(r"^label\s+precision\s+recall\s+f1\s+support$", printed, re.M)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"] == 400 and set(metrics["per_class"]) >= {"negative", "positive", "macro avg"}
    assert metrics["per_class"]["macro avg"]["f1"] == pytest.approx(metrics["macro_f1"])
    rows = list(csv.DictReader((out / "errors.tsv").open(encoding="utf-8"), delimiter="\t"))
    assert len(rows) == metrics["misclassified"] == round(400 * (1 - metrics["accuracy"])) > 0
    losses = [float(r["loss"]) for r in rows]
    assert losses == sorted(losses, reverse=True)
    assert all(r["true_label"] != r["predicted_label"] and float(r["predicted_probability"]) >= 0.5 for r in rows)
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    # Again into the report it wrote: replaced. Into a directory of the user's: refused, nothing touched.
    write_report(out, {**metrics, "accuracy": 0.25, "errors": []})
    assert json.loads((out / "metrics.json").read_text())["accuracy"] == 0.25
    assert (out / "errors.tsv").read_text().count("\n") == 1  # the header only
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained.export), "--data", str(demo_data), "--out", str(mine)]) == 2
    assert "not written by tfhub_transfer" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_compare_reports_test_scores_and_speed(tiny_encoder, demo_data, tmp_path, capsys):
    out, test = tmp_path / "cmp", tmp_path / "test.tsv"
    test.write_text("".join(demo_data.read_text(encoding="utf-8").splitlines(keepends=True)[:41]), encoding="utf-8")
    code = main(["compare", "--train", str(demo_data), "--test", str(test), "--encoder", str(tiny_encoder),
                 "--epochs", "1", "--modes", "freeze", "--max-train-examples", "32", "--seq-length", "32",
                 "--lr", "3e-3", "--out", str(out), "--quiet"])
    assert code == 0
    table = (out / "compare.md").read_text()
    assert "| test score | test macro-F1 |" in table and "| examples/s |" in table
    row = next(csv.DictReader((out / "compare.csv").open()))
    assert 0 <= float(row["test_score"]) <= 1 and float(row["examples_per_second"]) > 0


def test_only_a_notebook_stdout_counts_as_interactive(monkeypatch):
    """Importing ipykernel (nbclient does) does not make a log file interactive; a kernel's stream does."""
    import sys

    import ipykernel.iostream  # noqa: F401

    from tfhub_transfer.training.callbacks import interactive_output

    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not interactive_output()
    kernel_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    monkeypatch.setattr(sys, "stdout", kernel_stream())
    assert interactive_output()
