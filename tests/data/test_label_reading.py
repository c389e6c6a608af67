"""Labels read as written (issue 34): no NA-guessing beyond an empty cell, no merging of distinct strings,
a multi-label cell of separators alone refused like an empty one, lone surrogates named by file and line;
and names for integer labels (issue 33 item 4: `label_names` / --label-names), end to end to the export.
"""

import json

import numpy as np
import pytest

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import load_labelled, read_table
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.options import check_options


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["None", "NA", "N/A", "null", "nan", "NaN"])
def test_na_like_labels_are_classes(tmp_path, name):
    path = write(tmp_path / "t.tsv", f"text\tlabel\nbook a flight\t{name}\nhello\tgreet\nfly me\t{name}\n")
    splits = load_labelled(path, path)
    assert set(splits.label_names) == {name, "greet"}
    assert splits.train_ids.tolist() == [splits.label_names.index(name), splits.label_names.index("greet"),
                                         splits.label_names.index(name)]
    jsonl = write(tmp_path / "t.jsonl", f'{{"text": "a", "label": "{name}"}}\n{{"text": "b", "label": "x"}}\n')
    assert read_table(jsonl).labels == [name, "x"]


def test_only_an_empty_cell_is_missing(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,NA\nb,\nc,None\n")
    with pytest.raises(DataError, match=r"t\.csv: column 'label' has no label.*\(line 3\)"):
        read_table(path)


def test_distinct_strings_stay_distinct_classes(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,007\nb,7\nc,1e3\nd,1000\ne,1.0\nf,1\n")
    splits = load_labelled(path, path)
    assert len(splits.labels) == 6 and {"007", "7", "1e3", "1000", "1.0", "1"} == set(splits.label_names)
    assert len(set(splits.train_ids.tolist())) == 6
    scores = load_labelled(path, path, task="regression")  # only a regression task reads numbers
    np.testing.assert_allclose(scores.train_ids, [7, 7, 1000, 1000, 1, 1])


def test_numbers_from_json_match_the_same_integer_written_in_a_csv(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\na,1\nb,0\nc,1\n")
    valid = write(tmp_path / "v.jsonl", '{"text": "d", "label": 1.0}\n{"text": "e", "label": 0}\n')
    assert load_labelled(train, valid).valid_ids.tolist() == [1, 0]


@pytest.mark.parametrize("cell", [",", " , ", ",,"])
def test_multi_label_cell_of_separators_is_refused_like_an_empty_one(tmp_path, cell):
    path = write(tmp_path / "m.tsv", f"text\tlabel\na\tsports,politics\nb\t{cell}\nc\tsports\n")
    with pytest.raises(DataError, match=r"m\.tsv: the label column has no label.*line 3"):
        load_labelled(path, path, task="multi_label")
    empty = write(tmp_path / "e.tsv", "text\tlabel\na\tsports,politics\nb\t\nc\tsports\n")
    with pytest.raises(DataError, match=r"has no label.*line 3"):
        load_labelled(empty, empty, task="multi_label")


@pytest.mark.parametrize("column", ["text", "label"])
def test_lone_surrogate_in_jsonl_names_file_and_line(tmp_path, column):
    rows = [{"text": "fine", "label": "a"}, {"text": "ok", "label": "b"}]
    lines = [json.dumps(r) for r in rows] + [json.dumps({"text": "x", "label": "a"}).replace(
        '"x"' if column == "text" else '"a"', '"bad \\ud800"')]
    path = write(tmp_path / "s.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(DataError) as caught:
        read_table(path)
    message = str(caught.value)
    assert "s.jsonl" in message and "line 3" in message and repr(column) in message and "surrogate" in message
    paired = write(tmp_path / "p.jsonl", '{"text": "emoji \\ud83d\\ude00", "label": "a"}\n')
    assert read_table(paired).texts == ["emoji \U0001F600"]  # a whole pair is fine


def test_label_names_name_integer_ids(tmp_path):
    path = write(tmp_path / "t.csv", "text,label\na,0\nb,1\nc,1\nd,pos\n")
    splits = load_labelled(path, path, label_names=["neg", "pos"])
    assert splits.label_names == ["neg", "pos"] and splits.train_ids.tolist() == [0, 1, 1, 1]
    bad = write(tmp_path / "b.csv", "text,label\na,0\nb,2\nc,1\n")
    with pytest.raises(DataError, match=r"b\.csv: the label '2' at line 3 is not a class id 0\.\.1"):
        load_labelled(bad, bad, label_names=["neg", "pos"])
    multi = write(tmp_path / "m.csv", 'text,label\na,"0,1"\nb,1\n')
    assert load_labelled(multi, multi, task="multi_label", label_names=["x", "y"]).train_ids.tolist() == [
        [1, 1], [0, 1]]
    with pytest.raises(DataError, match="regression"):
        load_labelled(path, path, task="regression", label_names=["neg", "pos"])


@pytest.mark.parametrize("names, words", [(["neg", "neg"], "'neg' twice"), (["only"], "fewer than 2"),
                                          (["a", ""], "non-empty")])
def test_bad_label_names_name_the_flag(names, words):
    with pytest.raises(ConfigError) as caught:
        check_options(TrainConfig.of(train="t.csv", label_names=names))
    assert "--label-names" in str(caught.value) and words in str(caught.value)


def test_integer_labels_come_back_named_from_the_export(tiny_encoder, tmp_path, demo_data):
    from tfhub_transfer.jobs.train import train

    rows = read_table(demo_data)
    ids = {"negative": 0, "positive": 1}
    lines = ["text\tlabel"] + [f"{t}\t{ids[y]}" for t, y in zip(rows.texts[:60], rows.labels[:60])]
    data = write(tmp_path / "ids.tsv", "\n".join(lines) + "\n")
    result = train(TrainConfig.of(mode="finetune",
                                  train=data, encoder=str(tiny_encoder), epochs=1, label_names=["neg", "pos"],
                                  output_dir=tmp_path / "out", name="named", verbose=0, tensorboard=False,
                                  backup_every_steps=0))
    assert result.model.label_names == ["neg", "pos"]
    predicted = ExportedClassifier(result.export_path).predict(["a fine film", "awful"])["labels"]
    assert len(predicted) == 2 and set(predicted) <= {"neg", "pos"}
    info = json.loads((result.export_path / "assets.extra" / "tfhub_transfer_model.json").read_text())
    assert info["labels"] == ["neg", "pos"]
