"""Two multi-worker processes on 127.0.0.1 stream their own shards of one shared directory and end with the
weights of one worker fed the same global batches (test_distribution's equality test, on streamed input)."""

import signal
import textwrap

import numpy as np
import pytest
from conftest import finish_workers, last_json, run_python, start_workers

from tfhub_transfer.training.fault_tolerance import ResumePoint, read_resume_point

# One model for both runs: a hashed bag of words (no encoder: the test is about which rows each step sees).
SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from tfhub_transfer.data.streaming import load_streamed

    shards, how, dump = sys.argv[1], sys.argv[2], sys.argv[3]
    GLOBAL_BATCH = 8

    def hashed(texts, targets):
        words = tf.strings.to_hash_bucket_fast(tf.strings.split(texts), 1023) + 1
        return words.to_tensor(shape=[None, 12]), targets

    def build():
        tf_keras.utils.set_random_seed(0)
        model = tf_keras.Sequential([tf_keras.Input((12,), dtype=tf.int64),
                                     tf_keras.layers.Embedding(1024, 8, mask_zero=True),
                                     tf_keras.layers.GlobalAveragePooling1D(), tf_keras.layers.Dense(2)])
        model.compile(tf_keras.optimizers.SGD(0.5),
                      tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    if how == "workers":  # each worker reads its own file of the glob (AutoShardPolicy.FILE)
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        streamed = load_streamed(shards, validation_fraction=0.0)
        data = streamed.train.batches(GLOBAL_BATCH, shuffle=False, drop_remainder=True).map(hashed)
        steps = streamed.train.steps_per_epoch(GLOBAL_BATCH, drop_remainder=True)
        with strategy.scope():
            model = build()
    else:  # one process: global batch t = rows 4t..4t+3 of shard 0, then of shard 1
        files = sorted(tf.io.gfile.glob(shards))
        halves = [load_streamed(f, validation_fraction=0.0).train.batches(GLOBAL_BATCH // 2, shuffle=False)
                  for f in files]
        data = tf.data.Dataset.zip(*halves).map(
            lambda a, b: (tf.concat([a[0], b[0]], 0), tf.concat([a[1], b[1]], 0))).map(hashed)
        steps = sum(len(load_streamed(f, validation_fraction=0.0).train) for f in files) // GLOBAL_BATCH
        model = build()
    start = [w.numpy() for w in model.weights]
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    np.savez(dump, *[w.numpy() for w in model.weights])
    moved = max(float(np.abs(w.numpy() - s).max()) for w, s in zip(model.weights, start))
    json.dump({"steps": steps, "moved": moved,
               "replicas": model.distribute_strategy.num_replicas_in_sync}, sys.stdout)
""")


def _shards(directory) -> str:
    """Two TSV shards of 32 rows; shard 1's rows differ from shard 0's, so a worker reading the wrong rows
    ends elsewhere."""
    directory.mkdir()
    for shard in range(2):
        rows = [f"shard {shard} row {i} {'good fine great' if (i + shard) % 2 else 'bad dull poor'} w{i % 7}"
                f"\t{(i + shard) % 2}" for i in range(32)]
        (directory / f"train-{shard}.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    return str(directory / "train-*.tsv")


@pytest.mark.integration  # three TensorFlow processes, two of them a cluster (about a minute on 2 cores)
def test_two_workers_on_their_shards_match_one_worker_on_the_same_global_batches(tmp_path):
    shards = _shards(tmp_path / "shared")
    procs = start_workers(SCRIPT, lambda index: [shards, "workers", tmp_path / f"w{index}.npz"])
    outputs = last_json(finish_workers(procs))
    single = run_python(SCRIPT, shards, "single", tmp_path / "one.npz", timeout=420)
    one = last_json([(single.returncode, single.stdout, single.stderr)])[0]
    assert [o["replicas"] for o in outputs] == [2, 2] and one["replicas"] == 1
    assert [o["steps"] for o in outputs] == [8, 8] == [one["steps"]] * 2  # 64 counted rows / 8
    assert one["moved"] > 1e-2  # the steps really trained ...
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b, \
            np.load(tmp_path / "one.npz") as c:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # ... the workers agree ...
            np.testing.assert_allclose(a[key], c[key], atol=1e-5, err_msg=key)  # ... with one worker


# The package's training job on the streamed glob, as one worker of a cluster; `kill_at` > 0 SIGKILLs this
# worker after that optimizer step (as test_faults' KILL_SCRIPT does), `resume` passes resume=True.
TRAIN_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    import tf_keras
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import train

    encoder, out, name, shards, dump, kill_at, resume = sys.argv[1:8]

    class KillAt(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):  # after BackupAndRestore's restore
            self.start = [w.numpy() for w in self.model.weights]

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    kill = KillAt()
    result = train(TrainConfig.of(mode="finetune", train=shards, streaming="on", validation_fraction=0.0,
        encoder=encoder, dropout=0.0, epochs=2, batch_size=4, learning_rate=3e-3, distribution="multi_worker",
        backup_every_steps=3, resume=True if resume == "resume" else None, output_dir=out, name=name,
        verbose=0, callbacks=[kill]))
    np.savez(dump, *[w.numpy() for w in result.model.weights])
    json.dump({"export": str(result.export_path) if result.export_path else None,
               "replicas": result.model.distribute_strategy.num_replicas_in_sync,
               "moved": max(float(np.abs(w.numpy() - s).max()) for w, s in zip(result.model.weights, kill.start))},
              sys.stdout)
""")


def _review_shards(directory) -> str:
    """Two TSV shards of 24 reviews (pos/neg by their words): 48 rows, 6 global batches of 8 per epoch."""
    directory.mkdir()
    good, bad = ("great", "lovely", "superb", "fun"), ("awful", "dull", "boring", "weak")
    for shard in range(2):
        rows = [f"shard {shard} the film was {(good if i % 2 else bad)[i % 4]} {i}\t{'pos' if i % 2 else 'neg'}"
                for i in range(24)]
        (directory / f"train-{shard}.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    return str(directory / "train-*.tsv")


def _start_cluster(tmp_path, name: str, shards: str, encoder, kill_at=(0, 0), resume=False) -> list:
    """Both workers of a fresh 127.0.0.1 cluster training run `name` in the shared tmp_path/out."""
    return start_workers(TRAIN_SCRIPT, lambda index: [
        encoder, tmp_path / "out", name, shards, tmp_path / f"{name}-w{index}.npz", kill_at[index],
        "resume" if resume else "-"])


def _crash(procs: list) -> tuple[int, str]:
    """Waits for worker 1 to SIGKILL itself, then kills worker 0 (a cluster restarts the whole job when a
    worker dies; worker 0 would block in the next collective). Worker 1's returncode and stderr."""
    try:
        _, stderr = procs[1].communicate(timeout=300)
    finally:
        for proc in procs:
            proc.kill()
    finish_workers(procs, timeout=60)
    return procs[1].returncode, stderr


def _dumped(path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[k] for k in sorted(saved.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow
@pytest.mark.integration  # three two-worker TensorFlow clusters, one after another (about 1.5 min on 2 cores)
def test_a_killed_worker_resumes_from_the_shared_backup(tiny_encoder_no_dropout, tmp_path):
    """Two multi_worker processes train on their streamed shards of one directory with backups every 3 steps;
    worker 1 is SIGKILLed at step 10 (worker 0 then too). Rerun with resume=True, both workers continue from
    the chief's step-9 backup at epoch 2, step 4 (an odd step: half of a worker's batch is skipped), end with
    identical weights equal to an uninterrupted cluster's; the chief alone exports, and the backup is gone."""
    shards = _review_shards(tmp_path / "shared")
    encoder = tiny_encoder_no_dropout
    code, stderr = _crash(_start_cluster(tmp_path, "crash", shards, encoder, kill_at=(0, 10)))
    assert code == -signal.SIGKILL, stderr[-3000:]
    backup = tmp_path / "out" / "crash" / "run" / "backup"
    assert read_resume_point(backup, steps_per_epoch=6) == ResumePoint(epoch=1, step=3)  # the step-9 backup
    assert not (tmp_path / "out" / "crash" / "1").exists()
    resumed = finish_workers(_start_cluster(tmp_path, "crash", shards, encoder, resume=True), timeout=300)
    outputs = last_json(resumed)
    for _, _, stderr in resumed:
        assert "Resuming from the backup" in stderr and "epoch 2, step 4" in stderr
    assert [o["replicas"] for o in outputs] == [2, 2]
    assert outputs[0]["export"] is not None and outputs[1]["export"] is None  # the chief alone exports
    assert sorted(p.name for p in (tmp_path / "out" / "crash").iterdir()) == ["1", "run"]
    assert not backup.exists()  # removed once the run finished
    for output in last_json(finish_workers(_start_cluster(tmp_path, "reference", shards, encoder), timeout=300)):
        assert output["moved"] > 1e-3  # training really moved the weights
    chief, worker = _dumped(tmp_path / "crash-w0.npz"), _dumped(tmp_path / "crash-w1.npz")
    reference = _dumped(tmp_path / "reference-w0.npz")
    assert len(chief) > 10
    for a, b, c in zip(chief, worker, reference):
        np.testing.assert_array_equal(a, b)  # the workers agree ...
        np.testing.assert_allclose(a, c, atol=1e-5)  # ... with a cluster never interrupted
