"""Issue 34, files and caches: no user file or trained model is lost, no link is followed out of --out, a URL
never becomes a local path, a damaged feature cache is detected and rebuilt, and every refusal is one clear
line naming the path and the fix."""

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.cache import cache_entries, check_cache_dir, use_cache_dir
from tfhub_transfer.cli.main import main
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.files import MARKER, atomic_directory, refuse_url, versioned_directory
from tfhub_transfer.jobs.train import train
from tfhub_transfer.preprocessing.text import TextPreprocessor
from tfhub_transfer.training.fault_tolerance import Interrupted, prepare_backup
from tfhub_transfer.training.feature_cache import FeatureSpec, build_feature_cache, damage

# finetune, not the auto mode: it keeps backups (auto picks contrastive few-shot training for so few examples)
SMALL = dict(mode="finetune", epochs=1, batch_size=16, seq_length=32, max_train_examples=40, tensorboard=False,
             verbose=0)


def _config(encoder, data, out, **options):
    return TrainConfig.of(train=data, encoder=str(encoder), output_dir=out, name="m", **{**SMALL, **options})


def _cli_train(encoder, data, out, *flags):
    return main(["train", "--train", str(data), "--encoder", str(encoder), "--mode", "finetune", "--epochs", "1",
                 "--batch-size", "16", "--seq-length", "32", "--max-train-examples", "40", "--no-tensorboard",
                 "--quiet", "--out", str(out), "--name", "m", *flags])


def _weights(run_dir):
    with np.load(run_dir / "weights.npz") as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _files(directory):
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


# -- the four data-loss cases --------------------------------------------------------------------------
def test_a_users_file_in_the_backup_directory_is_kept_and_named(tiny_encoder, demo_data, tmp_path, capsys):
    precious = tmp_path / "out" / "m" / "run" / "backup" / "precious.txt"
    precious.parent.mkdir(parents=True)
    precious.write_text("p")
    assert _cli_train(tiny_encoder, demo_data, tmp_path / "out", "--no-export") == 2
    err = capsys.readouterr().err
    assert str(precious) in err and "did not write" in err and "--name" in err and "Traceback" not in err
    assert precious.read_text() == "p"
    assert _files(tmp_path / "out" / "m") == ["run", "run/backup", "run/backup/precious.txt"]  # nothing written


@pytest.mark.parametrize("resume", [None, False])
def test_prepare_backup_deletes_only_its_own_files(tmp_path, resume):
    backup = tmp_path / "backup"
    (backup / "chief").mkdir(parents=True)
    (backup / "run_fingerprint.json").write_text("{}")
    (backup / "precious.txt").write_text("p")
    with pytest.raises(ConfigError, match="precious.txt, which tfhub_transfer did not write"):
        prepare_backup(backup, steps_per_epoch=3, resume=resume, fingerprint={"data": "x"})
    assert (backup / "precious.txt").read_text() == "p" and (backup / "run_fingerprint.json").exists()
    (backup / "precious.txt").unlink()
    prepare_backup(backup, steps_per_epoch=3, resume=resume, fingerprint={"data": "x"})  # ours only: cleared
    assert json.loads((backup / "run_fingerprint.json").read_text()) == {"data": "x"}


def test_notes_in_a_finished_run_are_kept_and_training_is_refused_first(tiny_encoder, demo_data, tmp_path):
    first = train(_config(tiny_encoder, demo_data, tmp_path, export=False))
    before = _weights(first.run_dir)
    (first.run_dir / "notes.txt").write_text("x")
    with pytest.raises(ConfigError) as caught:
        train(_config(tiny_encoder, demo_data, tmp_path, export=False, seed=1))
    assert str(first.run_dir / "notes.txt") in str(caught.value) and "--name" in str(caught.value)
    assert (first.run_dir / "notes.txt").read_text() == "x"
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(first.run_dir)))
    assert not (tmp_path / "m" / "run.1").exists()


def test_a_finished_run_is_kept_as_a_version_not_replaced(tiny_encoder, demo_data, tmp_path, capsys):
    first = train(_config(tiny_encoder, demo_data, tmp_path, export=False))
    before = _weights(first.run_dir)
    second = train(_config(tiny_encoder, demo_data, tmp_path, export=False, seed=7))
    kept = tmp_path / "m" / "run.1"
    assert f"is kept as {kept}" in capsys.readouterr().err
    assert all(np.array_equal(a, b) for a, b in zip(before, _weights(kept)))  # the first model, intact
    assert any(not np.array_equal(a, b) for a, b in zip(before, _weights(second.run_dir)))
    from tfhub_transfer.models.saving import load

    assert load(kept).label_names == ["negative", "positive"]


def test_an_interrupted_run_still_resumes_from_its_backup(tiny_encoder, demo_data, tmp_path, capsys):
    class Stop(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == 2:
                os.kill(os.getpid(), signal.SIGTERM)

    config = _config(tiny_encoder, demo_data, tmp_path, export=False, backup_every_steps=1, epochs=2)
    with pytest.raises(Interrupted) as caught:
        train(config.replace(callbacks=[Stop()]))
    assert caught.value.exit_code == 143
    assert "SIGTERM" in str(caught.value) and "run the same command again to resume" in str(caught.value)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back
    capsys.readouterr()
    train(config)
    assert "Resuming from the backup" in capsys.readouterr().err
    assert not (tmp_path / "m" / "run.1").exists()  # the same run, continued: nothing to keep aside


def test_cache_clear_keeps_a_users_file_and_does_not_count_links(tmp_path, capsys):
    features = tmp_path / "cache" / "features"
    mine, plain = features / "aaaa", features / "bbbb"
    for entry in (mine, plain):
        entry.mkdir(parents=True)
        (entry / MARKER).write_text("written by tfhub_transfer\n")
        (entry / "manifest.json").write_text(json.dumps({"shards": 1, "layers": 1, "hidden": 1, "examples": 1}))
        np.save(entry / "shard_00000.npy", np.zeros((1, 1, 1), np.float16))
    (mine / "precious.txt").write_text("p")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "data.bin").write_bytes(b"x" * 2000)
    (features / "cccc").symlink_to(elsewhere, target_is_directory=True)
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "removed 1 item " in out and f"left {mine}" in out and "precious.txt" in out
    assert f"left {features / 'cccc'}" in out and "not followed" in out
    assert (mine / "precious.txt").read_text() == "p" and (mine / "shard_00000.npy").exists()
    assert not plain.exists() and (elsewhere / "data.bin").exists() and (features / "cccc").is_symlink()


# -- symbolic links --------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["m", "m/run"])
def test_a_linked_run_directory_is_refused_before_training(tiny_encoder, demo_data, tmp_path, capsys, link):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    place = tmp_path / "out" / link
    place.parent.mkdir(parents=True, exist_ok=True)
    place.symlink_to(elsewhere, target_is_directory=True)
    assert _cli_train(tiny_encoder, demo_data, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert f"{place} is a symbolic link" in err and "--name" in err
    assert list(elsewhere.iterdir()) == []


def test_a_dangling_link_at_the_next_version_is_skipped(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").symlink_to(tmp_path / "nowhere")
    with versioned_directory(tmp_path) as (tmp, claimed):
        (tmp / "f").write_text("x")
    assert claimed.path == tmp_path / "3" and not (tmp_path / "nowhere").exists()
    with pytest.raises(ConfigError, match="version 2 .* exists"):
        with versioned_directory(tmp_path, 2) as (tmp, _):
            pass


# -- URLs ----------------------------------------------------------------------------------------------
# gs:// is left out here: with no network TensorFlow's GCS client retries for minutes (tests/foundation/test_storage.py
# writes and reads URLs through TensorFlow's in-memory ram:// instead).
@pytest.mark.parametrize("url", ["s3://bucket/models", "hdfs://host/models"])
def test_a_url_as_out_is_refused_and_nothing_is_written(tiny_encoder, demo_data, tmp_path, monkeypatch, capsys,
                                                        url):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--out", url]) == 2
    err = capsys.readouterr().err
    # Refused as a URL this version cannot train into, or (where training into URLs is on) as a file system
    # TensorFlow does not have without tensorflow-io: either way one line naming --out, and no local 's3:'.
    assert re.search(f"--out {url}: (a URL cannot be used here|TensorFlow cannot read or write)", err)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="tensorflow-io"):
        with atomic_directory(url):
            pass
    assert list(tmp_path.iterdir()) == []


def test_a_url_as_train_data_is_read_through_tensorflow_never_as_a_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="s3://bucket/train.csv: TensorFlow cannot read .* tensorflow-io"):
        train(TrainConfig.of(train="s3://bucket/train.csv", encoder="nowhere", output_dir=tmp_path / "out",
                             verbose=0))
    with pytest.raises(DataError, match="ram://nothing/train.csv does not exist"):
        train(TrainConfig.of(train="ram://nothing/train.csv", encoder="nowhere", output_dir=tmp_path / "out",
                             verbose=0))
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "ram:").exists()
    refuse_url("C:/data/train.csv", "data file")  # a drive letter is a path, not a scheme


# -- damaged caches ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder_parts(tiny_encoder):
    spec = resolve_encoder(str(tiny_encoder))
    return hub.KerasLayer(spec.encoder), TextPreprocessor(spec.preprocessor), spec


def _features(encoder_parts, root):
    layer, pre, spec = encoder_parts
    texts = ["the film was wonderful", "the plot was awful", "I loved the food"] * 3
    return build_feature_cache(layer, pre, spec, FeatureSpec(seq_length=16), texts, root=root, shard_size=4,
                               batch_size=2, verbose=0)


def _truncate(shard):
    shard.write_bytes(shard.read_bytes()[:-40])


def _alter(shard):
    data = bytearray(shard.read_bytes())
    data[-8:] = b"\xff" * 8
    shard.write_bytes(bytes(data))


def _pickle(shard):
    np.save(shard, np.array([{"a": 1}], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("harm", [_truncate, _alter, _pickle])
def test_a_damaged_feature_cache_is_reported_and_rebuilt(encoder_parts, tmp_path, capsys, harm):
    path = _features(encoder_parts, tmp_path)
    intact = np.load(path / "shard_00001.npy")
    harm(path / "shard_00001.npy")
    assert damage(path) is not None
    assert _features(encoder_parts, tmp_path) == path
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"feature cache: {path} is damaged (shard_00001.npy" in err
    assert "rebuilding it" in err
    assert damage(path) is None and np.array_equal(np.load(path / "shard_00001.npy"), intact)


def test_partial_writes_are_listed_with_their_size_and_cleared(tmp_path, capsys):
    encoders = tmp_path / "cache" / "encoders"
    dead = encoders / ".all-MiniLM-L6-v2-float32.tmp-99999999-abc"  # no such process: an interrupted write
    busy = encoders / f".other.tmp-{os.getpid()}-abc"  # a write in progress
    for place in (dead, busy):
        place.mkdir(parents=True)
        (place / "variables.data").write_bytes(b"x" * 3000)
    assert main(["cache", "list", "--cache-dir", str(tmp_path / "cache")]) == 0
    listing = capsys.readouterr().out
    line = next(line for line in listing.splitlines() if str(dead) in line)
    assert line.split()[:3] == ["partial", "3.0", "KB"] and "interrupted write (process 99999999)" in line
    assert f"being written by process {os.getpid()}" in listing and "total: 2 items, 6.0 KB" in listing
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "cache")]) == 0
    assert "removed 1 item (3.0 KB)" in capsys.readouterr().out
    assert not dead.exists() and busy.exists()


def test_a_cache_path_that_is_a_file_is_one_clear_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "cache-file"
    blocker.write_text("mine")
    for action in ("list", "clear"):
        assert main(["cache", action, "--cache-dir", str(blocker)]) == 2
        err = capsys.readouterr().err
        assert f"the cache path {blocker} is a file" in err and "--cache-dir" in err
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(blocker))
    assert main(["encoders", "build-default"]) == 2
    assert "$TFHUB_TRANSFER_CACHE" in capsys.readouterr().err and blocker.read_text() == "mine"
    with use_cache_dir(blocker / "sub"), pytest.raises(ConfigError, match="under the file"):
        cache_entries()
    assert check_cache_dir(tmp_path / "fresh") == tmp_path / "fresh"


# -- unclear messages ----------------------------------------------------------------------------------
def test_out_naming_a_file_says_so(tiny_encoder, demo_data, tmp_path, capsys):
    blocker = tmp_path / "models"
    blocker.write_text("")
    assert main(["train", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--out", str(blocker)]) == 2
    assert f"--out {blocker} is a file; choose a directory" in capsys.readouterr().err


def test_cli_prints_the_resume_hint_and_the_signals_exit_code(monkeypatch, capsys):
    cli = sys.modules["tfhub_transfer.cli.main"]  # the module (the package exports its main function)
    def interrupted(args):
        raise Interrupted("interrupted (SIGTERM); ... run the same command again to resume from it", 143)

    monkeypatch.setitem(cli.COMMANDS, "demo", interrupted)
    assert cli.main(["demo"]) == 143
    assert "run the same command again to resume" in capsys.readouterr().err


def test_sigint_names_the_rerun_too(tmp_path):
    script = ("import os, signal, sys\n"
              "from tfhub_transfer.training.fault_tolerance import interruptible, Interrupted\n"
              "try:\n"
              "    with interruptible(sys.argv[1]):\n"
              "        os.kill(os.getpid(), signal.SIGINT)\n"
              "except Interrupted as err:\n"
              "    print(err.exit_code, err)\n")
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.startswith("130 interrupted (SIGINT)") and "starts over" in done.stdout, done.stderr[-2000:]


TERM_SCRIPT = """
import os, signal, sys
import tf_keras
import importlib
cli = importlib.import_module("tfhub_transfer.cli.main")  # the package exports its main function by that name

class TermAt(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

configure = cli._train_config
cli._train_config = lambda args, **overrides: configure(args, **overrides).replace(callbacks=[TermAt()])
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.integration  # a longer end-to-end run: make integration (CI runs it); make test keeps 12 min
def test_sigterm_through_the_cli_says_how_to_resume_and_the_rerun_does(tiny_encoder, demo_data, tmp_path, capsys):
    from conftest import run_python

    flags = ["train", "--train", demo_data, "--encoder", tiny_encoder, "--mode", "finetune", "--epochs", "2",
             "--batch-size", "16",
             "--seq-length", "32", "--max-train-examples", "40", "--backup-every", "1", "--no-tensorboard",
             "--quiet", "--no-export", "--out", tmp_path, "--name", "m"]
    stopped = run_python(TERM_SCRIPT, *flags)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "interrupted (SIGTERM); the newest backup is kept in" in stopped.stderr
    assert "run the same command again to resume from it" in stopped.stderr and "Traceback" not in stopped.stderr
    assert main([str(f) for f in flags]) == 0
    assert "Resuming from the backup" in capsys.readouterr().err


def test_a_damaged_converted_encoder_is_named_and_the_default_one_rebuilt(tiny_encoder, tmp_path, capsys):
    """Converted pairs carry a size manifest written last: a truncated file is one clear error at load."""
    import shutil

    from tfhub_transfer.encoders.build.hub_writer import PAIR_MANIFEST, pair_damage
    from tfhub_transfer.encoders.resolve import resolve_encoder
    from tfhub_transfer.errors import EncoderError

    copy = tmp_path / "pair"
    shutil.copytree(tiny_encoder, copy)
    assert (copy / PAIR_MANIFEST).exists() and pair_damage(copy) is None
    variables = next((copy / "encoder" / "variables").glob("variables.data-*"))
    variables.write_bytes(variables.read_bytes()[:-10])
    assert "truncated" in pair_damage(copy)
    with pytest.raises(EncoderError, match="damaged or incomplete .*variables.data.*convert it again"):
        resolve_encoder(str(copy))
