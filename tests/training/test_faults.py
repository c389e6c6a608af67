"""Faults: kill -9 mid-epoch then resume gives the uninterrupted weights; NaN loss stops cleanly."""

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tf_keras
from conftest import run_python

from tfhub_transfer.cli.main import main
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.errors import TrainingDiverged
from tfhub_transfer.jobs.train import train
from tfhub_transfer.training.fault_tolerance import read_resume_point

KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import tf_keras
    from tfhub_transfer.cli.main import build_parser, _train_config
    from tfhub_transfer.jobs.train import train

    kill_at, argv = int(sys.argv[1]), sys.argv[2:]

    class KillAt(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    args = build_parser().parse_args(argv)
    train(_train_config(args, name=args.name, output_dir=args.out, export=False, callbacks=[KillAt()]))
""")

def _weights(run_dir):
    with np.load(run_dir / "weights.npz") as saved:
        return [saved[k] for k in sorted(saved.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow
@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run(tiny_encoder_no_dropout, tmp_path,
                                                                    demo_data, capsys):
    frame = pd.read_csv(demo_data, sep="\t").head(80)
    frame.iloc[:40].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[40:].to_csv(tmp_path / "valid.csv", index=False)
    flags = [str(f) for f in ["train", "--mode", "finetune",
                                       "--train", tmp_path / "train.csv", "--valid", tmp_path / "valid.csv",
                              "--encoder", tiny_encoder_no_dropout, "--dropout", "0", "--epochs", "3",
                              "--batch-size", "8", "--lr", "3e-3", "--backup-every", "3", "--quiet",
                              "--out", tmp_path / "out", "--no-export"]]
    # 5 steps per epoch; backups after steps 3, 6, ...; the kill lands at step 8 (epoch 2). The killed
    # run is a process of its own; the reference runs here meanwhile, and so does the resumed run.
    with ThreadPoolExecutor(1) as pool:
        crash = pool.submit(run_python, KILL_SCRIPT, 8, *flags, "--name", "crash")
        assert main([*flags, "--name", "reference"]) == 0
        killed = crash.result()
    assert killed.returncode == -9, killed.stderr[-3000:]
    backup = tmp_path / "out" / "crash" / "run" / "backup"
    assert read_resume_point(backup, steps_per_epoch=5).epoch == 1  # the step-6 backup: epoch 2, step 2
    assert not (tmp_path / "out" / "crash" / "run" / "weights.npz").exists()
    capsys.readouterr()
    assert main([*flags, "--name", "crash", "--resume"]) == 0
    assert "Resuming from the backup" in capsys.readouterr().err
    assert not backup.exists()  # removed once the run finished
    reference_weights = _weights(tmp_path / "out" / "reference" / "run")
    resumed_weights = _weights(tmp_path / "out" / "crash" / "run")
    pristine = _weights_of_fresh_model(tiny_encoder_no_dropout)
    assert any(not np.allclose(a, b) for a, b in zip(reference_weights, pristine) if a.shape == b.shape)
    for a, b in zip(reference_weights, resumed_weights):
        np.testing.assert_allclose(a, b, atol=1e-6)
    history = json.loads((tmp_path / "out" / "crash" / "run" / "metrics.json").read_text())["history"]
    assert len(history["loss"]) == len(history["val_accuracy"]) == 3  # epoch 1 from before the crash kept


def _weights_of_fresh_model(encoder):
    from tfhub_transfer.models.text_classifier import TextClassifier

    return [w.numpy() for w in TextClassifier.from_encoder(str(encoder), pooling="mean").weights
            if isinstance(w, tf.Variable)]


def test_resume_flag_without_a_backup_is_a_clear_error(tiny_encoder, tmp_path, demo_data):
    from tfhub_transfer.errors import ConfigError

    with pytest.raises(ConfigError, match="no backup to resume from"):
        train(TrainConfig.of(mode="finetune",
                             train=demo_data, encoder=str(tiny_encoder), output_dir=tmp_path, resume=True,
                          verbose=0, export=False))


class PoisonAfter(tf_keras.callbacks.Callback):
    """Writes NaN into one head weight after global step `step` (a stand-in for a blow-up)."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            kernel = self.model.get_layer("head").weights[0]
            kernel.assign(tf.fill(kernel.shape, np.nan))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_backup(
        tiny_encoder, tmp_path, demo_data):
    config = TrainConfig.of(train=demo_data, encoder=str(tiny_encoder), mode="finetune", epochs=2, batch_size=8,
                         backup_every_steps=2, output_dir=tmp_path, name="nan", verbose=0,
                         callbacks=[PoisonAfter(5)])
    with pytest.raises(TrainingDiverged) as caught:
        train(config)
    message = str(caught.value)
    assert "loss became nan" in message and "step 6" in message
    assert "last good backup (epoch 1, step 4)" in message and "Lower the learning rate" in message
    backup = tmp_path / "nan" / "run" / "backup"
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(backup / "chief")))
    floats = [reader.get_tensor(k) for k, dtype in reader.get_variable_to_dtype_map().items()
              if dtype.is_floating]
    assert floats and all(np.isfinite(t).all() for t in floats)
    assert not (tmp_path / "nan" / "1").exists()  # nothing exported
    point = read_resume_point(backup, steps_per_epoch=12)
    assert (point.epoch, point.step) == (0, 4)


def test_cli_reports_divergence_without_a_traceback(tiny_encoder, tmp_path, demo_data, capsys):
    code = main([str(a) for a in ("train", "--mode", "finetune",
                                           "--train", demo_data, "--encoder", tiny_encoder, "--lr", "1e30",
                                  "--optimizer", "sgd", "--schedule", "constant", "--epochs", "1", "--quiet",
                                  "--backup-every", "2", "--out", tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "training stopped" in err and "Traceback" not in err
