"""Disk and cache: one backup at a time, deleted when a run finishes (kept with --keep-backups); an
exported run keeps no second copy of its weights; the feature cache says hit or miss and its size;
--cache-dir wins over $TFHUB_TRANSFER_CACHE; `tfhub-transfer cache list|clear`."""

import shutil

import numpy as np
import pytest
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.cache import cache_dir, directory_size, use_cache_dir
from tfhub_transfer.cli.main import main
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import MARKER
from tfhub_transfer.jobs.train import train
from tfhub_transfer.models.saving import EXPORT_WEIGHTS_FILE, load
from tfhub_transfer.preprocessing.text import TextPreprocessor
from tfhub_transfer.training.fault_tolerance import ResumePoint, read_resume_point
from tfhub_transfer.training.feature_cache import FeatureSpec, build_feature_cache

PROBES = ["The film was wonderful, and I loved every minute.", "This phone was terrible.", "I found it charming."]


class BackupSpy(tf_keras.callbacks.Callback):
    """Counts the checkpoints in the backup after every step (the backup callback has run by then)."""

    def __init__(self, backup_dir):
        super().__init__()
        self.backup_dir = backup_dir
        self.counts = []

    def on_train_batch_end(self, batch, logs=None):
        self.counts.append(len(list((self.backup_dir / "chief").glob("ckpt-*.index"))))


@pytest.fixture(scope="module")
def exported(tiny_encoder, tmp_path_factory, demo_data):
    out = tmp_path_factory.mktemp("disk")
    spy = BackupSpy(out / "shared" / "run" / "backup")
    result = train(TrainConfig.of(mode="finetune",
                                  train=demo_data, encoder=str(tiny_encoder), epochs=1, seq_length=32, batch_size=16,
                                  learning_rate=3e-3, backup_every_steps=2, output_dir=out, name="shared", verbose=0,
                                  callbacks=[spy]))
    return result, spy


@pytest.mark.slow
def test_one_backup_at_a_time_and_none_after_the_run(exported):
    result, spy = exported
    assert max(spy.counts) == 1  # backups were taken, and never two at once
    assert not (result.run_dir / "backup").exists()


def test_an_exported_run_shares_its_exports_weights(exported):
    result, _ = exported
    run, export = result.run_dir, result.export_path
    assert not (run / "weights.npz").exists() and (run / EXPORT_WEIGHTS_FILE).is_file()
    run_bytes, export_bytes = directory_size(run), directory_size(export)
    assert run_bytes * 10 < export_bytes, (run_bytes, export_bytes)
    loaded = load(run)
    inputs = loaded.preprocessor.encode(PROBES, 32)
    np.testing.assert_array_equal(loaded(inputs, training=False).numpy(),
                                  result.model(inputs, training=False).numpy())
    assert loaded.label_names == result.label_names


def test_a_run_whose_export_is_gone_says_so(exported):
    result, _ = exported
    moved = result.export_path.with_name("moved")
    result.export_path.rename(moved)
    try:
        with pytest.raises(ConfigError, match=r"variables of its export .*/shared/1, and it is gone"):
            load(result.run_dir)
    finally:
        moved.rename(result.export_path)


def test_keep_backups_keeps_the_finished_state_as_one_backup(tiny_encoder, demo_data, tmp_path):
    code = main(["train", "--mode", "finetune",
                          "--train", str(demo_data), "--encoder", str(tiny_encoder), "--epochs", "1",
                 "--seq-length", "32", "--batch-size", "16", "--max-train-examples", "40", "--backup-every", "2",
                 "--keep-backups", "--no-export", "--no-tensorboard", "--quiet", "--out", str(tmp_path),
                 "--name", "kept"])
    assert code == 0
    run = tmp_path / "kept" / "run"
    backup = run / "backup"
    assert len(list((backup / "chief").glob("ckpt-*.index"))) == 1
    # The finished state (after step 3), not the periodic backup of step 2.
    assert read_resume_point(backup, steps_per_epoch=3) == ResumePoint(1, 0)
    assert (backup / "best_weights.npz").is_file()
    assert (run / "weights.npz").is_file()  # no export to share: the run keeps its own weights
    assert load(run).label_names == ["negative", "positive"]


def test_feature_cache_reports_miss_then_hit_with_its_size(tiny_encoder, tmp_path, capsys):
    spec = resolve_encoder(str(tiny_encoder))
    texts = ["the film was wonderful", "the plot was awful", "I loved the food"] * 3
    with use_cache_dir(tmp_path / "c"):
        layer, pre = hub.KerasLayer(spec.encoder), TextPreprocessor(spec.preprocessor)
        path = build_feature_cache(layer, pre, spec, FeatureSpec(seq_length=16), texts)
        first = capsys.readouterr().out
        assert build_feature_cache(layer, pre, spec, FeatureSpec(seq_length=16), texts) == path
        second = capsys.readouterr().out
    assert path.parent == tmp_path / "c" / "features"
    assert f"feature cache: miss, writing {path}" in first and "encoding 9 texts" in first
    size = f"{directory_size(path) / 1000:.1f} KB"
    assert f"feature cache: wrote {size} at {path}" in first
    assert second.strip() == f"feature cache: hit, {size} at {path}"


def test_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    with use_cache_dir(tmp_path / "flag"):
        assert cache_dir() == tmp_path / "flag"
    with use_cache_dir(None):
        assert cache_dir() == tmp_path / "env"
    monkeypatch.delenv("TFHUB_TRANSFER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "tfhub_transfer"


def test_cache_dir_flag_then_cache_list_and_clear(tiny_encoder, demo_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "env"))
    flagged = tmp_path / "flagged"
    code = main(["train", "--train", str(demo_data), "--encoder", str(tiny_encoder), "--mode", "freeze",
                 "--feature-cache", "--epochs", "1", "--seq-length", "32", "--batch-size", "16", "--no-export",
                 "--no-tensorboard", "--cache-dir", str(flagged), "--out", str(tmp_path / "out")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("feature cache: miss") == 2 and out.count("feature cache: wrote") == 2  # train, valid
    features = sorted((flagged / "features").iterdir())
    assert len(features) == 2 and not (tmp_path / "env").exists()

    ours, foreign = flagged / "encoders" / "converted", flagged / "encoders" / "users"
    for directory in (ours, foreign):
        (directory / "encoder").mkdir(parents=True)  # where an encoder's files go (a file elsewhere is a user's)
        (directory / "encoder" / "weights.bin").write_bytes(b"x" * 5000)
    (ours / MARKER).write_text("written by tfhub_transfer\n")
    assert main(["cache", "list", "--cache-dir", str(flagged)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("  features ") == 2 and "encoder " in listing and "not written by tfhub_transfer" in listing
    total = sum(directory_size(p) for p in (*features, ours, foreign))
    assert f"total: 4 items, {total / 1000:.1f} KB" in listing
    assert main(["cache", "list"]) == 0  # no flag: the environment variable's cache
    assert f"the cache {tmp_path / 'env'} is empty" in capsys.readouterr().out

    assert main(["cache", "clear", "--cache-dir", str(flagged)]) == 0
    assert not any((flagged / "features").iterdir()) and ours.exists() and foreign.exists()
    capsys.readouterr()
    assert main(["cache", "clear", "--all", "--cache-dir", str(flagged)]) == 2  # no terminal to ask on
    assert "--yes" in capsys.readouterr().err and ours.exists()
    assert main(["cache", "clear", "--all", "--yes", "--cache-dir", str(flagged)]) == 0
    assert not ours.exists() and foreign.exists()  # what the package did not write stays
    assert "did not write" in capsys.readouterr().out
    shutil.rmtree(foreign)
