"""The `tfhub-transfer` command line calls the same code as the Python API."""

import pytest
from shared_encoders import shared_tiny_bert

from tfhub_transfer.cli.main import main


@pytest.fixture(scope="module")
def trained(tiny_encoder, tmp_path_factory, demo_data):
    out = tmp_path_factory.mktemp("cli")
    code = main(["train", "--mode", "finetune",
                          "--train", str(demo_data), "--encoder", str(tiny_encoder), "--epochs", "3",
                 "--lr", "3e-3", "--out", str(out), "--name", "cli", "--quiet"])
    assert code == 0
    return out


def test_train_then_predict_and_evaluate(trained, demo_data, capsys):
    model = trained / "cli" / "1"
    assert (model / "saved_model.pb").exists()
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "I found the food wonderful.", "The plot was awful."]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("positive", "negative")
    assert main(["evaluate", "--model", str(model), "--data", str(demo_data)]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "on 400 examples" in out


def test_export_from_run_writes_next_version(trained, capsys):
    run = str(trained / "cli" / "run")
    assert main(["export", "--run", run, "--out", str(trained), "--name", "cli"]) == 0
    assert (trained / "cli" / "2" / "saved_model.pb").exists()


def test_bad_input_exits_2_with_message(tmp_path, tiny_encoder, capsys):
    data = tmp_path / "d.tsv"
    data.write_text("sentence\tlabel\nhi\t1\n")
    code = main(["train", "--mode", "finetune",
                          "--train", str(data), "--encoder", str(tiny_encoder), "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "no column 'text'" in err and "Traceback" not in err


def test_encoders_list_and_info(tiny_encoder, capsys):
    assert main(["encoders", "list", "--filter", "small_bert"]) == 0
    assert capsys.readouterr().out.count("small_bert/") >= 24
    assert main(["encoders", "info", str(tiny_encoder), "--variables"]) == 0
    out = capsys.readouterr().out
    assert "transformer/layer_1" in out and "vocab size" in out


@pytest.mark.integration  # a longer end-to-end run: make integration (CI runs it); make test keeps 12 min
@pytest.mark.slow
def test_compare_writes_table_csv_and_png(tiny_encoder, demo_data, tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--epochs", "1",
                 "--modes", "freeze,partial:1,finetune", "--max-train-examples", "64", "--lr", "3e-3",
                 "--out", str(out), "--quiet"])
    assert code == 0
    table = (out / "compare.md").read_text()
    assert all(f"| {m} |" in table for m in ("freeze", "partial:1", "finetune"))
    rows = (out / "compare.csv").read_text().strip().splitlines()
    assert rows[0].startswith("mode,valid_accuracy") and len(rows) == 4
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_rejects_unknown_mode_before_training(demo_data, tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:  # refused while parsing, with compare's usage
        main(["compare", "--train", str(demo_data), "--modes", "freeze,thaw", "--out", str(tmp_path)])
    assert exited.value.code == 2
    assert "unknown transfer mode 'thaw'" in capsys.readouterr().err


def test_train_rnn_from_word_vectors_file(demo_data, tmp_path, capsys):
    vectors = tmp_path / "v.txt"
    words = ["the", "film", "wonderful", "awful", "was", "i"]
    vectors.write_text("".join(f"{w} " + " ".join(str((i + j) % 5 / 5) for j in range(4)) + "\n"
                               for i, w in enumerate(words)))
    code = main(["train", "--train", str(demo_data), "--word-vectors", str(vectors), "--embedding-mode",
                 "freeze", "--rnn", "gru", "--rnn-units", "8", "--epochs", "1", "--out", str(tmp_path),
                 "--name", "rnn", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "vectors cover" in out and "exported to" in out
    module = tmp_path / "embed"
    assert main(["encoders", "text-embedding", str(vectors), str(module)]) == 0
    assert (module / "saved_model.pb").exists()



@pytest.mark.slow
def test_study_layers_writes_table(demo_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "cache"))
    encoder = shared_tiny_bert(num_layers=4)
    out = tmp_path / "study"
    code = main(["study-layers", "--train", str(demo_data), "--encoder", str(encoder), "--epochs", "1",
                 "--lr", "3e-3", "--max-train-examples", "80", "--out", str(out), "--quiet",
                 "--mixes", "scalar_mix"])  # every mix: tests/layers/test_heads_and_mixes.py
    assert code == 0
    table = (out / "study.md").read_text()
    for row in ("fine-tune (all layers)", "frozen: scalar_mix"):
        assert row in table
    assert len((out / "study.csv").read_text().strip().splitlines()) == 3
    assert (out / "study.png").read_bytes()[:4] == b"\x89PNG"


def test_train_token_task_from_conll(tiny_encoder, tmp_path, capsys):
    conll = tmp_path / "ner.txt"
    rows = ["The film was great .", "I loved the food ."] * 20
    conll.write_text("".join("".join(f"{w} {'B-ITEM' if w in ('film', 'food') else 'O'}\n" for w in r.split())
                             + "\n" for r in rows))
    code = main(["train", "--task", "tokens", "--train", str(conll), "--encoder", str(tiny_encoder),
                 "--epochs", "2", "--lr", "5e-3", "--out", str(tmp_path), "--name", "ner", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "entity F1" in out and (tmp_path / "ner" / "1" / "saved_model.pb").exists()


def test_token_task_takes_the_train_flags_and_refuses_sentence_ones(tiny_encoder, tmp_path, capsys):
    conll = tmp_path / "ner.txt"
    conll.write_text("The O\nfilm B-ITEM\n\n" * 20)
    code = main(["train", "--task", "tokens", "--train", str(conll), "--text-b-column", "b", "--out", str(tmp_path)])
    assert code == 2
    assert "--text-b-column does not apply to --task tokens" in capsys.readouterr().err
    code = main(["train", "--task", "tokens", "--train", str(conll), "--encoder", str(tiny_encoder), "--resume",
                 "--out", str(tmp_path)])
    assert code == 2  # taggers keep backups like every task: without one, --resume says so
    assert "no backup to resume from" in capsys.readouterr().err
