"""Reading labelled text, and a clear error (file, column, line) for each kind of bad input."""

import numpy as np
import pandas as pd
import pytest

from tfhub_transfer.data.tables import LabelVocabulary, label_key, load_labelled, read_table
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
    with pytest.raises(DataError, match=r"column 'label' has no label.*\(line 3\)"):  # "NaN" is a label as written
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


# The reliability issue's data cases: each bad input is one DataError naming file, column and/or line.


def test_jsonl_text_must_be_a_string_in_every_row(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "fine", "label": 1}\n{"label": 0}\n'
                 '{"text": ["a", "b"], "label": 1}\n{"text": {"x": 1}, "label": 0}\n{"text": 7, "label": 1}\n')
    with pytest.raises(DataError, match=r"a\.jsonl: column 'text' must hold a string in every row, but 4 row\(s\) "
                                        r"do not \(line 2 has no 'text' key, line 3 has list \['a', 'b'\], "
                                        r"line 4 has dict .*, line 5 has int 7\)"):
        read_table(path)
    null = write(tmp_path / "n.jsonl", '{"text": "fine", "label": 1}\n{"text": null, "label": 0}\n')
    with pytest.raises(DataError, match=r"line 2 has null"):
        read_table(null)


def test_jsonl_label_must_be_present_and_scalar(tmp_path):
    listed = write(tmp_path / "l.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": ["x", "y"]}\n')
    with pytest.raises(DataError, match=r"l\.jsonl: column 'label' must hold one label.*line 2 has list"):
        read_table(listed)
    absent = write(tmp_path / "m.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b"}\n{"text": "c", "label": null}\n')
    with pytest.raises(DataError, match=r"m\.jsonl: column 'label' has no label.*2 row\(s\) \(line 3, line 4\)"):
        read_table(absent)
    assert read_table(absent, label_column=None).texts == ["a", "b", "c"]


def test_dataframe_cells_that_are_not_text(tmp_path):
    frame = pd.DataFrame({"text": ["a", ["b", "c"]], "label": [1, 0]})
    with pytest.raises(DataError, match=r"row 1 has list"):
        read_table(frame)
    assert read_table(pd.DataFrame({"text": ["a", 42], "label": [1, 0]})).texts == ["a", "42"]


def test_csv_unclosed_quote_names_the_line_where_it_starts(tmp_path):
    # pandas read this as 2 rows, the first holding 'broken,0\nnext"' as its text.
    merged = write(tmp_path / "q.csv", 'text,label\nok,1\n"broken,0\n"next",1\nlast,0\n')
    with pytest.raises(DataError, match=r"q\.csv: line 3: the quoted field that starts here .* \(on line 4\)"):
        read_table(merged)
    to_end = write(tmp_path / "e.csv", 'text,label\nok,1\n"multi\nline",1\n"never closed,0\nmore,1\n')
    with pytest.raises(DataError, match=r"e\.csv: line 5: a quoted field starts here and its closing quote is "
                                        r"missing"):
        read_table(to_end)
    inline = write(tmp_path / "i.csv", 'text,label\n"ab"c,1\n')
    with pytest.raises(DataError, match=r"i\.csv: line 2: the quoted field that starts here \('\"ab\"c"):
        read_table(inline)


def test_rows_after_a_multiline_field_are_located_by_their_first_line(tmp_path):
    path = write(tmp_path / "m.csv", 'text,label\n"two\nlines",1\n\nb,0\n"x\r\ny",1\nc,\n')
    with pytest.raises(DataError, match=r"m\.csv: column 'label' has no label.*\(line 8\)"):
        read_table(path)
    table = read_table(write(tmp_path / "ok.csv", 'text,label\n"two\nlines",1\n\nb,0\n"x\r\ny",1\nc,0\n'))
    assert table.texts == ["two\nlines", "b", "x\r\ny", "c"]
    assert table.locations == ["line 2", "line 5", "line 6", "line 8"]


def test_rows_with_the_wrong_number_of_fields(tmp_path):
    # pandas took the extra field for an index and shifted every column of this file by one.
    shifted = write(tmp_path / "s.tsv", "text\tlabel\na\t1\t\nb\t0\t\n")
    with pytest.raises(DataError, match=r"s\.tsv: the header \(line 1\) has 2 field\(s\).*2 row\(s\) do not "
                                        r"\(line 2 has 3, line 3 has 3\).*tab"):
        read_table(shifted)
    short = write(tmp_path / "f.csv", "text,label\na,1\nb 0\n")
    with pytest.raises(DataError, match=r"f\.csv: .*\(line 3 has 1\).*quotes"):
        read_table(short)


def test_repeated_column_names(tmp_path):
    for name, text in [("a.csv", "text,label,text\na,1,b\n"), ("a.tsv", "text\tlabel\tlabel\na\t1\t0\n")]:
        with pytest.raises(DataError, match=rf"{name[2:]}: the header \(line 1\) repeats column\(s\) \['"
                                            rf"{'text' if name == 'a.csv' else 'label'}'\]"):
            read_table(write(tmp_path / name, text))
    with pytest.raises(DataError, match=r"line 2 repeats the key\(s\) \['text'\]"):
        read_table(write(tmp_path / "a.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "text": "c", "label": 0}\n'))
    frame = pd.DataFrame([["a", "b", 1]], columns=["text", "text", "label"])
    with pytest.raises(DataError, match=r"\['text'\] occur more than once"):
        read_table(frame)


def test_numeric_labels_are_one_class_on_every_split(tmp_path):
    train = write(tmp_path / "t.csv", "text,label\na,1\nb,0\nc,1\n")
    valid = write(tmp_path / "v.csv", "text,label\nd,1\ne,0\n")
    splits = load_labelled(train, valid)
    assert splits.labels.names == ("0", "1")
    np.testing.assert_array_equal(splits.valid_ids, [1, 0])
    jsonl = write(tmp_path / "v.jsonl", '{"text": "d", "label": 1.0}\n{"text": "e", "label": 0}\n')
    np.testing.assert_array_equal(load_labelled(train, jsonl).valid_ids, [1, 0])
    assert {label_key(y) for y in (1, "1", " 1 ", 1.0, np.float32(1), np.int64(1))} == {"1"}
    assert [label_key(y) for y in ("0.5", 0.5, "pos", True, "-0.0", "007", "1e3")] == ["0.5", "0.5", "pos", "True",
                                                                                       "-0.0", "007", "1e3"]
    scores = load_labelled(train, write(tmp_path / "r.csv", "text,label\nd,0.25\ne,2\n"), task="regression")
    np.testing.assert_allclose(scores.valid_ids, [0.25, 2.0])
    with pytest.raises(DataError, match=r"r2\.csv: the target at line 3 is 'inf', not a finite number"):
        load_labelled(train, write(tmp_path / "r2.csv", "text,label\nd,0.25\ne,inf\n"), task="regression")


def test_text_of_invisible_characters_counts_as_empty(tmp_path):
    path = write(tmp_path / "z.tsv", "text\tlabel\nfine\t1\n\u200b\u200d\t0\n\x00\x01\t1\n"
                 "\ufeff \u2060\t0\nok\u200b\t1\n")
    with pytest.raises(DataError, match=r"z\.tsv: column 'text' is empty or whitespace in 3 row\(s\) "
                                        r"\(line 3, line 4, line 5\)"):
        read_table(path)
    labels = write(tmp_path / "y.tsv", "text\tlabel\nfine\t1\nalso\t\u200b\n")
    with pytest.raises(DataError, match=r"column 'label' has no label.*\(line 3\)"):
        read_table(labels)


def test_directories_and_missing_files(tmp_path):
    (tmp_path / "x.tsv").mkdir()
    with pytest.raises(DataError, match=r"x\.tsv is a directory, not a file"):
        read_table(tmp_path / "x.tsv")
    with pytest.raises(DataError, match=r"nope\.csv does not exist"):
        load_labelled(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not NoneType"):
        read_table(None)


def test_encodings_and_huge_fields(tmp_path):
    bom = write(tmp_path / "b.csv", "\ufefftext,label\na,1\n")
    assert read_table(bom).texts == ["a"]
    with pytest.raises(DataError, match=r"u\.csv looks like UTF-16"):
        read_table(write(tmp_path / "u.csv", "text,label\na,1\n", encoding="utf-16"))
    big = "word " * 300_000  # 1.5 MB in one quoted field: past csv's default 128 KiB limit
    assert read_table(write(tmp_path / "big.csv", f'text,label\n"{big}",1\n')).texts == [big]
    with pytest.raises(DataError, match=r"line 2 cannot be read as JSON"):
        read_table(write(tmp_path / "n.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": ' + "9" * 5000 + "}"))
    with pytest.raises(DataError, match=r"line 1 is not a JSON object.*JSON Lines"):
        read_table(write(tmp_path / "arr.json", '[{"text": "a", "label": 1}]\n'))
