"""The streaming reader (data.streaming) against the in-memory reader (data.tables), and its memory."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tensorflow.python.data.experimental.ops.distribute import _AutoShardDataset  # the rewrite workers run

import tfhub_transfer.data.streaming as streaming
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.streaming import held_out, load_streamed
from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.jobs import train as train_job

TEXTS = [f"review {i}: the film was {'great' if i % 3 else 'dull'}" + " really" * (i % 5) for i in range(300)]
LABELS = [("neg", "pos", "mixed")[i % 3] for i in range(300)]


def _write(path, kind: str, texts=TEXTS, labels=LABELS, extra: str = ""):
    if kind == "tsv":
        path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)) + extra)
    elif kind == "csv":
        quoted = ['"' + t.replace('"', '""') + ', indeed"' for t in texts]
        path.write_text("id,sentence,label\n" + "".join(f"{i},{t},{y}\n" for i, (t, y) in
                                                         enumerate(zip(quoted, labels))) + "\n" + extra)
    else:
        path.write_text("".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y in zip(texts, labels)) + extra)
    return path


def _rows(dataset):
    """(texts, targets) of a stream of batches, in order."""
    texts, targets = [], []
    for x, y in dataset:
        texts += [t.decode("utf-8") for t in x.numpy()]
        targets.append(y.numpy())
    return texts, np.concatenate(targets)


@pytest.mark.parametrize("kind", ["tsv", "csv", "jsonl"])
def test_streamed_rows_equal_the_in_memory_reader(tmp_path, kind):
    path = _write(tmp_path / f"train.{kind}", kind)
    memory = load_labelled(str(path), text_column="sentence", validation_fraction=0.0)
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.0)
    assert streamed.label_names == memory.label_names == ["mixed", "neg", "pos"]
    assert len(streamed.train) == len(memory.train) == 300 and streamed.train.streamed
    texts, targets = _rows(streamed.train.batches(32, shuffle=False))
    assert texts == memory.train.texts  # the same rows in the same order ...
    np.testing.assert_array_equal(targets, memory.train_ids)  # ... with the same class ids
    assert streamed.class_counts == [100, 100, 100]


def test_shuffled_stream_is_the_same_multiset_and_seeded(tmp_path):
    path = _write(tmp_path / "train.tsv", "tsv")
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.0)
    in_order = _rows(streamed.train.batches(32, shuffle=False))[0]
    first = _rows(streamed.train.batches(32, seed=3, epochs=2))[0]
    again = _rows(streamed.train.batches(32, seed=3, epochs=2))[0]
    other = _rows(streamed.train.batches(32, seed=4, epochs=2))[0]
    assert first == again and first != other  # seeded
    assert first[:300] != in_order and sorted(first[:300]) == sorted(in_order)  # each epoch: every row once
    # passes run on without a short batch between them: 2 epochs are 2 x 10 batches of 32
    assert len(first) == 640 and sorted(first[300:600]) == sorted(in_order) and first[300:600] != first[:300]
    # a resumed stream (epoch 1, step 2) is the tail of the uninterrupted one
    resumed = _rows(streamed.train.batches(32, seed=3, epochs=2, start_epoch=1, start_step=2))[0]
    assert resumed == first[(10 + 2) * 32:]


def test_held_out_rows_follow_the_index_rule_and_match_the_labels(tmp_path):
    path = _write(tmp_path / "train.tsv", "tsv")
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.1)
    held = [i for i in range(300) if held_out(i, 0.1)]  # the TF pipeline picks the rows numpy's rule picks
    assert 15 <= len(held) <= 45 and len(streamed.valid) == len(held) and len(streamed.train) == 300 - len(held)
    texts, targets = _rows(streamed.valid.evaluation_batches(8))
    assert texts == [TEXTS[i] for i in held]
    np.testing.assert_array_equal(targets, [["mixed", "neg", "pos"].index(LABELS[i]) for i in held])
    np.testing.assert_array_equal(streamed.valid_ids, targets)
    train_texts = _rows(streamed.train.batches(64, shuffle=False))[0]
    assert train_texts == [t for i, t in enumerate(TEXTS) if i not in set(held)]


def test_held_out_rows_are_a_fair_sample_of_a_file_that_repeats_a_pattern(tmp_path):
    # classes in turn, one per row: an every-k-th-row rule (k = 10 here, or any k sharing a factor with
    # the period) would hold out rows of some classes only
    labels = [("a", "b")[i % 2] for i in range(2000)]
    texts = [f"row {i}" for i in range(2000)]
    path = _write(tmp_path / "turns.tsv", "tsv", texts, labels)
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.1)
    share_b = streamed.valid_ids.mean()
    assert 150 <= len(streamed.valid) <= 250 and 0.4 < share_b < 0.6
    named = load_streamed(str(path), text_column="sentence", validation_fraction=0.1, label_names=["a", "b"])
    assert len(named.valid) == len(streamed.valid) and len(named.train) == len(streamed.train)  # no pass, same rows


def test_glob_reads_shards_in_order(tmp_path):
    for shard in range(3):
        _write(tmp_path / f"train-{shard}.csv", "csv", TEXTS[shard * 100:(shard + 1) * 100],
               LABELS[shard * 100:(shard + 1) * 100])
    whole = load_labelled(str(_write(tmp_path / "whole.csv", "csv")), text_column="sentence",
                          validation_fraction=0.0)
    streamed = load_streamed(str(tmp_path / "train-*.csv"), text_column="sentence", validation_fraction=0.0)
    assert streamed.train.source.files == tuple(str(tmp_path / f"train-{i}.csv") for i in range(3))
    texts, targets = _rows(streamed.train.batches(50, shuffle=False))
    assert texts == whole.train.texts
    np.testing.assert_array_equal(targets, whole.train_ids)
    shuffled = _rows(streamed.train.batches(50, seed=1))[0]
    assert shuffled != texts and sorted(shuffled) == sorted(texts)


def test_multi_label_and_regression_targets_match(tmp_path):
    labels = [("a,b", "b", "c, a")[i % 3] for i in range(300)]
    path = _write(tmp_path / "multi.tsv", "tsv", labels=labels)
    memory = load_labelled(str(path), text_column="sentence", validation_fraction=0.0, task="multi_label")
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.0, task="multi_label")
    assert streamed.label_names == memory.label_names == ["a", "b", "c"]
    np.testing.assert_array_equal(_rows(streamed.train.batches(64, shuffle=False))[1], memory.train_ids)
    scores = [str(i / 7) for i in range(300)]
    path = _write(tmp_path / "scores.jsonl", "jsonl", labels=[float(s) for s in scores])
    memory = load_labelled(str(path), text_column="sentence", validation_fraction=0.0, task="regression")
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.0, task="regression")
    np.testing.assert_allclose(_rows(streamed.train.batches(64, shuffle=False))[1], memory.train_ids)


def test_given_label_names_skip_the_counting_pass(tmp_path):
    path = _write(tmp_path / "train.tsv", "tsv", labels=[str(i % 3) for i in range(300)])
    memory = load_labelled(str(path), text_column="sentence", validation_fraction=0.0, label_names=["x", "y", "z"])
    streamed = load_streamed(str(path), text_column="sentence", validation_fraction=0.0, label_names=["x", "y", "z"])
    assert len(streamed.train) == 300 and streamed.class_counts == []  # counted from newlines, not parsed
    np.testing.assert_array_equal(_rows(streamed.train.batches(64, shuffle=False))[1], memory.train_ids)


@pytest.mark.parametrize("kind, extra, expected", [
    ("tsv", "a text without a label\n", r"line 302 has 1"),
    ("tsv", "   \tpos\n", r"empty or whitespace in 1 row\(s\) \(line 302\)"),
    ("tsv", "fine text\t\n", r"no label \(empty/NaN\) in 1 row\(s\) \(line 302\)"),
    ("csv", '"an unclosed quote,pos\n', r"line 303: a quoted field starts here and its closing quote is missing"),
    ("jsonl", "{not json}\n", r"line 301 is not valid JSON"),
    ("jsonl", '{"sentence": 5, "label": "pos"}\n', r"line 301 has int 5"),
])
def test_bad_rows_give_the_in_memory_readers_error(tmp_path, kind, extra, expected):
    path = _write(tmp_path / f"train.{kind}", kind, extra=extra)
    with pytest.raises(DataError, match=expected) as memory:
        load_labelled(str(path), text_column="sentence")
    with pytest.raises(DataError, match=expected) as streamed:
        load_streamed(str(path), text_column="sentence")
    assert str(streamed.value) == str(memory.value)  # the same words, file and line
    assert str(path) in str(streamed.value)


def test_unseen_held_out_label_and_missing_column_are_clear_errors(tmp_path):
    labels = list(LABELS)
    row = next(i for i in range(300) if held_out(i, 0.1))
    labels[row] = "rare"  # a held-out row at 10%
    path = _write(tmp_path / "train.tsv", "tsv", labels=labels)
    with pytest.raises(DataError, match=rf"\['rare'\] at .*train.tsv, line {row + 2} \(held out"):
        load_streamed(str(path), text_column="sentence")
    with pytest.raises(DataError, match="no column 'Sentence'.*Did you mean 'sentence'"):
        load_streamed(str(path), text_column="Sentence")
    with pytest.raises(DataError, match="matches no file"):
        load_streamed(str(tmp_path / "nothing-*.tsv"))


MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    from tfhub_transfer.data.streaming import load_streamed

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

    path, rows = sys.argv[1], int(sys.argv[2])
    with open(path, "w") as out:
        out.write("text\\tlabel\\n")
        for i in range(rows):
            out.write(f"row {i} of the generated file, with a few more words {i % 97}\\t{i % 4}\\n")
    warm = load_streamed(path, validation_fraction=0.0)  # TensorFlow's own start-up is outside the measure
    for _ in warm.train.batches(256).take(5):
        pass
    before = rss_mb()
    peak = 0.0
    splits = load_streamed(path, validation_fraction=0.1)
    for i, (texts, targets) in enumerate(splits.train.batches(256)):
        if i % 50 == 0:
            peak = max(peak, rss_mb())
    json.dump({"growth": max(peak, rss_mb()) - before, "rows": len(splits.train) + len(splits.valid)}, sys.stdout)
""")


@pytest.mark.integration  # generates and streams 330k rows twice (about a minute on 2 cores)
def test_memory_does_not_grow_with_the_rows(tmp_path):
    growth = {}
    for rows in (30_000, 300_000):
        done = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(tmp_path / f"r{rows}.tsv"), str(rows)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["rows"] == rows
        growth[rows] = result["growth"]
    # ten times the rows (~20 MB of text more): the in-memory reader would grow by ~400 MB; the stream by
    # no more than its buffers
    assert growth[300_000] < growth[30_000] + 40, growth


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def test_counting_pass_holds_chunks_not_the_file(tmp_path, monkeypatch):
    """In-process: the RSS sampled at every chunk of the counting pass stays near where it started."""
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 2_000)
    monkeypatch.setattr(streaming, "CHUNK_BYTES", 1 << 16)
    path = tmp_path / "big.tsv"
    with open(path, "w") as out:
        out.write("text\tlabel\n")
        out.writelines(f"row {i}: {'word ' * 60}{i}\t{i % 5}\n" for i in range(60_000))  # ~19 MB
    load_streamed(str(path))  # warm: the first pass allocates what every pass reuses
    samples = []
    check = streaming._check_chunk

    def sampled(*args):
        samples.append(_rss_mb())
        return check(*args)

    monkeypatch.setattr(streaming, "_check_chunk", sampled)
    before = _rss_mb()
    splits = load_streamed(str(path))
    assert len(splits.train) + len(splits.valid) == 60_000 and sum(splits.class_counts) == len(splits.train)
    assert len(samples) >= 30  # a sample per chunk (a 64 KiB block of TSV lines)
    grown = max(samples) - before
    assert grown < 15, grown  # the file read into lists would be ~40 MB more by the last chunk


class _WithStreaming:
    """A TrainConfig with a `streaming` choice (the field config.py declares)."""

    def __init__(self, config, streaming: str):
        self._config, self.streaming = config, streaming

    def __getattr__(self, name):
        return getattr(self._config, name)


def test_train_streams_large_files_and_globs_and_refuses_what_cannot_stream(tmp_path, monkeypatch):
    small = _write(tmp_path / "train.tsv", "tsv")
    config = TrainConfig.of(train=str(small), text_column="sentence")
    assert not train_job.streams(config)  # a small file: in memory, as before
    monkeypatch.setattr(train_job, "STREAMING_MIN_BYTES", small.stat().st_size)
    assert train_job.streams(config)  # at the threshold: streamed
    assert not train_job.streams(config.replace(weight_column="w"))  # auto: an option that reads the table
    assert not train_job.streams(_WithStreaming(config, "off"))
    assert train_job.streams(TrainConfig.of(train=str(tmp_path / "train-*.tsv")))  # a glob is always streamed
    with pytest.raises(ConfigError, match="--streaming on does not apply: --max-train-examples"):
        train_job.streams(_WithStreaming(config.replace(max_train_examples=10), "on"))
    splits = train_job.read_splits(config)
    trained = [LABELS[i] for i in range(300) if not held_out(i, 0.1)]
    assert splits.streamed and len(splits.train) == len(trained)
    assert train_job.class_counts(splits, True) == [trained.count(name) for name in ("mixed", "neg", "pos")]


@pytest.mark.parametrize("shuffle", [False, True])
def test_each_worker_reads_only_its_own_shards(tmp_path, shuffle):
    """tf.distribute's FILE auto-sharding (what MultiWorkerMirroredStrategy applies) finds the file list."""
    for shard in range(2):
        _write(tmp_path / f"train-{shard}.tsv", "tsv", [f"shard{shard} {t}" for t in TEXTS[:40]], LABELS[:40])
    streamed = load_streamed(str(tmp_path / "train-*.tsv"), text_column="sentence")
    for worker in range(2):
        stream = _AutoShardDataset(streamed.train.batches(8, shuffle=shuffle, seed=1), 2, worker)
        texts = _rows(stream)[0]
        assert {t.split()[0] for t in texts} == {f"shard{worker}"}  # its own file only ...
        assert set(texts) == {f"shard{worker} {t}" for i, t in enumerate(TEXTS[:40]) if not held_out(i, 0.1)}
