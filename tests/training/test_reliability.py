"""Nothing lost, nothing written outside its place, no traceback: the bad-input and fault cases.

The README's reliability table lists each case; the test that shows it is named beside it.
"""

import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tf_keras

from tfhub_transfer.cli.main import main
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.errors import ConfigError, EncoderError, ExportError
from tfhub_transfer.files import MARKER, atomic_directory, check_name, versioned_directory
from tfhub_transfer.jobs.train import train
from tfhub_transfer.transfer.modes import TransferMode

RACE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tfhub_transfer.files import versioned_directory
    root, tag, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    while time.time() < start:
        pass
    for i in range(10):
        with versioned_directory(root / "m") as (tmp, claimed):
            (tmp / "who").write_text(f"{tag}-{i}")
        print(claimed.path.name)
""")


def test_concurrent_writers_never_share_or_replace_a_version(tmp_path):
    import time

    start = str(time.time() + 3)
    env = dict(os.environ)
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), tag, start], stdout=subprocess.PIPE,
                              text=True, env=env) for tag in ("a", "b", "c")]
    claimed = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    everything = sum(claimed, [])
    assert sorted(everything, key=int) == [str(i) for i in range(1, 31)]  # 30 writes, 30 distinct versions
    owners = {(tmp_path / "m" / v / "who").read_text() for v in everything}
    assert len(owners) == 30  # nothing overwritten
    assert not [p for p in (tmp_path / "m").iterdir() if p.name.startswith(".")]  # no temporaries left


def test_a_given_version_is_never_replaced(tmp_path):
    with versioned_directory(tmp_path, 3) as (tmp, claimed):
        (tmp / "x").write_text("first")
    assert claimed.path == tmp_path / "3"
    with pytest.raises(ConfigError, match="never replaced"):
        with versioned_directory(tmp_path, 3) as (tmp, _):
            pass
    assert (tmp_path / "3" / "x").read_text() == "first"


@pytest.mark.parametrize("version", [0, -3, 1.5, True])
def test_versions_are_positive_integers(tmp_path, version):
    with pytest.raises(ConfigError, match="--version"):
        with versioned_directory(tmp_path, version):
            pass


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "", ".", "a/b", "x" * 200])
def test_names_are_one_safe_path_component(name):
    with pytest.raises(ConfigError, match="--name"):
        check_name(name)


def test_train_refuses_a_bad_name_before_anything_is_written(tmp_path, capsys, demo_data):
    code = main(["train", "--mode", "finetune",
                          "--train", str(demo_data), "--name", "../escape", "--out", str(tmp_path / "out")])
    assert code == 2 and "--name '../escape'" in capsys.readouterr().err
    assert not (tmp_path / "escape").exists() and not (tmp_path / "out").exists()


def test_writers_never_delete_a_users_files(tmp_path, capsys):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    assert main(["encoders", "tiny", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err and (target / "notes.txt").read_text() == "keep me"
    assert main(["encoders", "tiny", str(target), "--overwrite"]) == 2
    assert "not written by tfhub_transfer" in capsys.readouterr().err
    assert (target / "notes.txt").read_text() == "keep me"


def test_overwrite_replaces_only_a_directory_the_package_wrote(tmp_path):
    target = tmp_path / "ours"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / MARKER).exists()
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert (target / "b").exists() and not (target / "a").exists()


def test_written_directories_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with versioned_directory(tmp_path) as (tmp, claimed):
            (tmp / "f").write_text("x")
    finally:
        os.umask(old)
    assert claimed.path.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700: a server user can read it


def test_stale_temporaries_of_dead_processes_are_cleaned(tmp_path):
    dead = tmp_path / ".1.tmp-99999999-abc"  # no such process
    dead.mkdir(parents=True)
    partial = tmp_path / ".best_weights.npz.partial-99999999-abc"
    partial.write_text("half")
    alive = tmp_path / f".2.tmp-{os.getpid()}-abc"
    alive.mkdir()
    with versioned_directory(tmp_path) as (tmp, _):
        (tmp / "f").write_text("x")
    assert not dead.exists() and not partial.exists() and alive.exists()


def test_a_full_disk_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(ConfigError, match="no space left"):
        with atomic_directory(tmp_path / "out") as tmp:
            monkeypatch.setattr("pathlib.Path.write_text", full)
            (tmp / "f").write_text("x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec", ["gradual:-5", "gradual:0", "gradual:2.5", "slow_embeddings:nan",
                                  "slow_embeddings:inf", "discriminative:nan"])
def test_bad_transfer_mode_arguments(spec):
    with pytest.raises(ConfigError):
        TransferMode.parse(spec)


def test_an_unwritable_out_fails_before_training(tmp_path, demo_data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    # `default` passes the CLI's name check; the --out check comes before the encoder is loaded
    code = main(["train", "--train", str(demo_data), "--encoder", "default", "--out", str(blocker / "sub")])
    assert code == 2 and "is not writable" in capsys.readouterr().err


def test_cli_turns_any_failure_into_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import importlib

    cli = importlib.import_module("tfhub_transfer.cli.main")  # the package re-exports the function

    def boom(args):
        raise RuntimeError("something deep\nwent wrong")

    monkeypatch.setitem(cli.COMMANDS, "demo", boom)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("error: RuntimeError: something deep went wrong (test_reliability.py:")
    assert "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError):
        cli.main(["--debug", "demo"])
    with pytest.raises(RuntimeError):
        cli.main(["demo", "--debug"])


def test_predict_file_in_latin1_is_a_clear_error(tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    export = tmp_path / "m" / "1"
    export.mkdir(parents=True)
    (export / "saved_model.pb").write_bytes(b"")
    assert main(["predict", "--model", str(export), "--file", str(texts)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_damaged_files_are_named(tiny_encoder, tmp_path):
    import shutil

    from tfhub_transfer.export.saved_model import ExportedClassifier
    from tfhub_transfer.models.saving import load

    export = tmp_path / "export"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ExportError, match="damaged"):
        ExportedClassifier(export)
    run = tmp_path / "run"
    run.mkdir()
    (run / "tfhub_transfer_model.json").write_text("{not json")
    (run / "weights.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="tfhub_transfer_model.json is damaged"):
        load(run)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_encoder, broken)
    data = next((broken / "encoder" / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    from tfhub_transfer.models.text_classifier import TextClassifier

    with pytest.raises(EncoderError, match="damaged or incomplete"):
        TextClassifier.from_encoder(str(broken), num_classes=2)


def _crash_after(steps):
    class Crash(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == steps:
                raise KeyboardInterrupt  # a crash: the backup stays, nothing is cleaned up

    return Crash()


@pytest.mark.slow
def test_a_leftover_backup_of_another_run_is_not_resumed(tiny_encoder, demo_data, tmp_path):
    frame = pd.read_csv(demo_data, sep="\t")
    common = dict(mode="finetune", encoder=str(tiny_encoder), epochs=1, batch_size=8, backup_every_steps=2,
                  output_dir=tmp_path, name="same", verbose=0, export=False)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig.of(train=frame.head(40), callbacks=[_crash_after(3)], **common))
    assert (tmp_path / "same" / "run" / "backup" / "run_fingerprint.json").exists()
    other = TrainConfig.of(train=frame.tail(40), **common)
    with pytest.raises(ConfigError, match="backup of a different run .*data.*--no-resume"):
        train(other)
    result = train(other.replace(resume=False))
    assert result.metrics["examples"] == 4


def test_numeric_options_are_refused_at_parse_time(capsys, demo_data):
    for flags, message in ([["--epochs", "0"], "--epochs 0"], [["--batch-size", "-4"], "--batch-size -4"],
                           [["--dropout", "1.5"], "--dropout 1.5"], [["--lr", "-0.001"], "--lr -0.001"],
                           [["--max-train-examples", "0"], "--max-train-examples 0"],
                           [["--warmup-fraction", "5"], "--warmup-fraction 5"],
                           [["--backup-every", "-1"], "--backup-every -1"], [["--seq-length", "1"], "--seq-length 1"],
                           [["--seq-length", "4", "--text-b-column", "b"], "sentence pairs need at least 5"]):
        assert main(["train", "--train", str(demo_data), *flags]) == 2  # the file exists: the CLI checks that first
        assert message in capsys.readouterr().err


@pytest.mark.soak
def test_soak_concurrent_exports_and_predictions_leave_every_version_loadable(tiny_encoder, tmp_path):
    """2 exporters and 2 predictors on one saved_models/ tree for a bounded time (`make soak`; about 2 minutes
    on 2 cores, so `make test` leaves it out)."""
    from tfhub_transfer.export.saved_model import ExportedClassifier
    from tfhub_transfer.models.text_classifier import TextClassifier

    model = TextClassifier.from_encoder(str(tiny_encoder), labels=["negative", "positive"])
    model.save(tmp_path / "model")
    first = model.export(tmp_path / "saved_models", "soak")
    exporter = textwrap.dedent("""
        import sys, time
        import tfhub_transfer
        model = tfhub_transfer.load(sys.argv[1])
        stop = time.time() + float(sys.argv[3])
        while time.time() < stop:
            model.export(sys.argv[2], "soak")
    """)
    predictor = textwrap.dedent("""
        import sys, time
        from tfhub_transfer.export.saved_model import ExportedClassifier
        stop, count = time.time() + float(sys.argv[2]), 0
        while time.time() < stop:
            count += len(ExportedClassifier(sys.argv[1]).predict(["a wonderful film", "awful"])["labels"])
        print(count)
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [subprocess.Popen([sys.executable, "-c", exporter, str(tmp_path / "model"),
                               str(tmp_path / "saved_models"), "25"], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    procs += [subprocess.Popen([sys.executable, "-c", predictor, str(first), "25"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert all(int(o[0]) > 0 for o in outs[2:])
    versions = sorted(int(p.name) for p in (tmp_path / "saved_models" / "soak").iterdir() if p.name.isdigit())
    assert versions == list(range(1, len(versions) + 1)) and len(versions) >= 3
    for version in versions:
        served = ExportedClassifier(tmp_path / "saved_models" / "soak" / str(version)).predict(["a film"])
        assert served["labels"][0] in ("negative", "positive")
    expected = np.exp(model.predict(["a film"], verbose=0))
    np.testing.assert_allclose(served["probabilities"], expected / expected.sum(), atol=1e-5)
