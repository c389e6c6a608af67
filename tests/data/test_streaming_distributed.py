"""Two multi-worker processes on 127.0.0.1 stream their own shards of one shared directory and end with the
weights of one worker fed the same global batches (test_distribution's equality test, on streamed input)."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

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


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _shards(directory) -> str:
    """Two TSV shards of 32 rows; shard 1's rows differ from shard 0's, so a worker reading the wrong rows
    ends elsewhere."""
    directory.mkdir()
    for shard in range(2):
        rows = [f"shard {shard} row {i} {'good fine great' if (i + shard) % 2 else 'bad dull poor'} w{i % 7}"
                f"\t{(i + shard) % 2}" for i in range(32)]
        (directory / f"train-{shard}.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    return str(directory / "train-*.tsv")


def _run(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.integration  # three TensorFlow processes, two of them a cluster (about a minute on 2 cores)
def test_two_workers_on_their_shards_match_one_worker_on_the_same_global_batches(tmp_path):
    shards = _shards(tmp_path / "shared")
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    base = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(_run([shards, "workers", str(tmp_path / f"w{index}.npz")],
                          dict(base, TF_CONFIG=json.dumps(tf_config))))
    outputs = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=420)
            assert proc.returncode == 0, stderr[-3000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            proc.kill()
    single = _run([shards, "single", str(tmp_path / "one.npz")], base)
    stdout, stderr = single.communicate(timeout=420)
    assert single.returncode == 0, stderr[-3000:]
    one = json.loads(stdout.strip().splitlines()[-1])
    assert [o["replicas"] for o in outputs] == [2, 2] and one["replicas"] == 1
    assert [o["steps"] for o in outputs] == [8, 8] == [one["steps"]] * 2  # 64 counted rows / 8
    assert one["moved"] > 1e-2  # the steps really trained ...
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b, \
            np.load(tmp_path / "one.npz") as c:
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)  # ... the workers agree ...
            np.testing.assert_allclose(a[key], c[key], atol=1e-5, err_msg=key)  # ... with one worker
