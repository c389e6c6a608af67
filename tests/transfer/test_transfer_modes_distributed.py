"""Transfer modes under a distribution strategy: MirroredStrategy over 2 logical CPU devices."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfhub_transfer.models.text_classifier import TextClassifier

    encoder, mode = sys.argv[1], sys.argv[2]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = TextClassifier.from_encoder(encoder, mode=mode, pooling="cls")
        model.compile(learning_rate=1e-2, schedule="constant")
    texts = ["the film was wonderful", "the plot was awful"] * 16
    labels = np.array([1, 0] * 16, np.int32)
    before = {n: [v.numpy().copy() for v in vs] for n, vs in model.layer_groups.variables.items()}
    snapshots = [before]
    import tf_keras
    keep = tf_keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: snapshots.append(
        {n: [v.numpy().copy() for v in vs] for n, vs in model.layer_groups.variables.items()}))
    model.fit(texts, labels, batch_size=8, epochs=3, verbose=0, callbacks=[keep])  # gradual: fit adds the unfreezer
    changed = [sorted(n for n in a if any(not np.array_equal(x, y) for x, y in zip(a[n], b[n])))
               for a, b in zip(snapshots, snapshots[1:])]
    json.dump({"replicas": strategy.num_replicas_in_sync, "changed": changed}, sys.stdout)
""")


def run_mirrored(encoder, mode):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(encoder), mode], capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.integration  # a multi-process run over a minute: make integration (CI)
def test_partial_and_gradual_under_mirrored_strategy(tiny_encoder):
    partial = run_mirrored(tiny_encoder, "partial:1")
    assert partial["replicas"] == 2
    assert partial["changed"] == [["layer_1", "pooler"]] * 3
    gradual = run_mirrored(tiny_encoder, "gradual:4")  # 4 steps per epoch: ULMFiT's one group per epoch
    assert gradual["changed"] == [[], ["pooler"], ["layer_1", "pooler"]]
