"""Reading labelled text, and a clear error (file, column, line) for each kind of bad input."""

import numpy as np
import pandas as pd
import pytest

from tfhub_transfer.data.tables import LabelVocabulary, load_labelled, read_table
from tfhub_transfer.errors import DataError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_reads_tsv_unquoted_csv_and_jsonl(tmp_path):
    tsv = write(tmp_path / "a.tsv", 'text\tlabel\n"quoted start\t1\nplain\t0\n')
    assert read_table(tsv).texts == ['"quoted start', "plain"]
    csv = write(tmp_path / "a.csv", 'sentence,y\n"a, b",pos\nc,neg\n')
    table = read_table(csv, "sentence", "y")
    assert table.texts == ["a, b", "c"] and table.labels == ["pos", "neg"]
    jsonl = write(tmp_path / "a.jsonl", '{"text": "x", "label": 1}\n\n{"text": "y", "label": 0}\n')
    table = read_table(jsonl)
    assert table.labels == [1, 0] and table.locations == ["line 1", "line 3"]


def test_missing_column_lists_the_available_ones(tmp_path):
    path = write(tmp_path / "a.tsv", "sentence\tlabel\nhello\t1\n")
    with pytest.raises(DataError, match=r"a\.tsv: no column 'text'.*\['sentence', 'label'\]"):
        read_table(path)


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read_table(write(tmp_path / "e.tsv", ""))
    with pytest.raises(DataError, match="no data rows"):
        read_table(write(tmp_path / "h.tsv", "text\tlabel\n"))


def test_whitespace_text_rows_are_named_by_line(tmp_path):
    path = write(tmp_path / "a.tsv", "text\tlabel\nfine\t1\n   \t0\nok\t1\n\t0\n")
    with pytest.raises(DataError, match=r"2 row\(s\) \(line 3, line 5\)"):
        read_table(path)


def test_non_utf8_names_the_line(tmp_path):
    path = write(tmp_path / "a.tsv", "text\tlabel\nok\t1\ncaf\xe9\t0\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"a\.tsv: line 3 is not valid UTF-8"):
        read_table(path)


def test_nan_labels_are_named_by_line(tmp_path):
    path = write(tmp_path / "a.csv", "text,label\na,1\nb,\nc,NaN\n")
    with pytest.raises(DataError, match=r"column 'label' has no label.*line 3, line 4"):
        read_table(path)
    frame = pd.DataFrame({"text": ["a", "b"], "label": [1.0, float("nan")]})
    with pytest.raises(DataError, match="row 1"):
        read_table(frame)


def test_bad_jsonl_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "x", "label": 1}\n{"text": oops}\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        read_table(path)


def test_fewer_than_two_classes(tmp_path):
    path = write(tmp_path / "a.tsv", "text\tlabel\na\tpos\nb\tpos\nc\tpos\n")
    with pytest.raises(DataError, match="at least 2"):
        load_labelled(path, path)


def test_validation_label_not_seen_in_training(tmp_path):
    train = write(tmp_path / "t.tsv", "text\tlabel\na\tpos\nb\tneg\n")
    valid = write(tmp_path / "v.tsv", "text\tlabel\na\tpos\nb\tneutral\n")
    with pytest.raises(DataError, match=r"v\.tsv: label\(s\) \['neutral'\] at line 3"):
        load_labelled(train, valid)


def test_labels_sort_numerically_and_match_across_types():
    vocab = LabelVocabulary.from_labels([10, 2, "1"])
    assert vocab.names == ("1", "2", "10")
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": [2.0, 10, "1"]})
    np.testing.assert_array_equal(vocab.encode(read_table(frame)), [1, 2, 0])


def test_validation_split_and_subset_are_seeded(demo_data):
    a = load_labelled(demo_data, validation_fraction=0.2, max_train_examples=100, seed=3)
    b = load_labelled(demo_data, validation_fraction=0.2, max_train_examples=100, seed=3)
    assert len(a.valid) == 80 and len(a.train) == 100
    assert a.train.texts == b.train.texts
    assert not set(a.train.locations) & set(a.valid.locations)
    assert a.labels.names == ("negative", "positive")


def test_shared_sst2_reads_with_quoting_off(shared_data):
    table = read_table(shared_data / "sst2" / "dev.tsv")
    assert len(table) == 872
    assert sorted(set(table.labels)) == ["0", "1"]


def test_tfds_names_fail_clearly_when_not_prepared(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    with pytest.raises(DataError, match=r"TFDS dataset 'glue/sst2' \(split 'validation'\) is not available"):
        read_table("tfds:glue/sst2:validation", "sentence", "label")


def test_tfds_prepared_dataset_reads(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")

    class TinyReviews(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "sentence": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i, (text, label) in enumerate([("good film", 1), ("bad film", 0), ("great", 1)]):
                yield i, {"sentence": text, "label": label}

    TinyReviews(data_dir=str(tmp_path)).download_and_prepare()
    from tfhub_transfer.data.tables import load_tfds

    table, names = load_tfds("tiny_reviews", "train", data_dir=str(tmp_path))
    assert sorted(table.texts) == ["bad film", "good film", "great"] and names == ["neg", "pos"]
    assert sorted(table.labels) == ["neg", "pos", "pos"]
