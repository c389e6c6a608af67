"""Distribution strategies end to end: replicas agree with one device; two workers agree."""

import json
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the exported model's tokenizer ops, loaded here)
from conftest import finish_workers, last_json, run_python, start_workers

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.training.distribution import global_batch_size, make_distribution

# Lengths vary so that replicas get batches padded to different lengths.
TEXTS = [f"the film was {w} and {v}" + " really" * i for i, w in enumerate(("wonderful", "great", "lovely",
                                                                           "superb"))
         for v in ("fun", "moving", "sharp", "warm")] + \
        [f"the plot was {w} and {v}" + " so" * (3 * i) for i, w in enumerate(("awful", "dull", "boring",
                                                                           "weak"))
         for v in ("slow", "flat", "long", "empty")]
LABELS = ["pos"] * 16 + ["neg"] * 16

REPLICAS_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import pandas as pd
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import train

    encoder, out, data = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    frame = pd.DataFrame(data)
    weights, replicas = {}, {}
    for distribution, per_replica, steps in (("one_device", 16, 1), ("mirrored", 8, 2)):
        result = train(TrainConfig.of(mode="finetune",
            train=frame, valid=frame, encoder=encoder, dropout=0.0, epochs=1, batch_size=per_replica,
            learning_rate=1e-3, warmup_fraction=0.0, distribution=distribution, output_dir=out,
            name=distribution, export=False, verbose=0, bucket=False, steps_per_execution=steps))
        weights[distribution] = [w.numpy() for w in result.model.weights]
        replicas[distribution] = result.model.distribute_strategy.num_replicas_in_sync
    from tfhub_transfer.models.text_classifier import TextClassifier
    start = [w.numpy() for w in TextClassifier.from_encoder(encoder, pooling="mean").weights]
    diff = max(float(np.abs(a - b).max()) for a, b in zip(weights["one_device"], weights["mirrored"]))
    moved = max(float(np.abs(a - b).max()) for a, b in zip(weights["one_device"], start)
                if a.shape == b.shape)
    json.dump({"diff": diff, "moved": moved, "replicas": replicas}, sys.stdout)
""")


@pytest.mark.integration  # a multi-process run over a minute: make integration (CI)
def test_mirrored_on_two_cpus_matches_one_device_for_the_same_global_batch(
        tiny_encoder_no_dropout, tmp_path):
    data = json.dumps({"text": TEXTS * 4, "label": LABELS * 4})
    done = run_python(REPLICAS_SCRIPT, tiny_encoder_no_dropout, tmp_path, data)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == {"one_device": 1, "mirrored": 2}
    assert result["moved"] > 1e-3  # training really changed the weights ...
    # ... and identically with 2 replicas x 8 (each padded to its own longest row, 2 steps per
    # call) as with 1 x 16
    assert result["diff"] < 1e-5


WORKER_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import pandas as pd
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import train

    encoder, out, data, dump = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    frame = pd.DataFrame(data)
    result = train(TrainConfig.of(mode="finetune",
        train=frame, valid=frame, encoder=encoder, dropout=0.0, epochs=2, batch_size=4,
        learning_rate=1e-3, distribution="multi_worker", output_dir=out, name="mw", verbose=0))
    np.savez(dump, *[w.numpy() for w in result.model.weights])
    probs = result.model.predict(result.model.preprocessor.encode(["the film was great"]), verbose=0)
    json.dump({"export": str(result.export_path) if result.export_path else None,
               "replicas": result.model.distribute_strategy.num_replicas_in_sync,
               "logits": probs.tolist()}, sys.stdout)
""")


@pytest.mark.integration  # a multi-process run over a minute: make integration (CI)
def test_two_multi_worker_processes_end_with_identical_weights_and_one_export(
        tiny_encoder_no_dropout, tmp_path):
    data = json.dumps({"text": TEXTS * 2, "label": LABELS * 2})
    procs = start_workers(WORKER_SCRIPT, lambda index: [tiny_encoder_no_dropout, tmp_path / "out", data,
                                                        tmp_path / f"w{index}.npz"])
    outputs = last_json(finish_workers(procs))
    assert [o["replicas"] for o in outputs] == [2, 2]
    with np.load(tmp_path / "w0.npz") as a, np.load(tmp_path / "w1.npz") as b:
        assert len(a.files) > 10
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    chief, worker = outputs
    assert worker["export"] is None and chief["export"] is not None
    assert sorted(p.name for p in (tmp_path / "out" / "mw").iterdir()) == ["1", "run"]
    serving = tf.saved_model.load(chief["export"]).signatures["serving_default"]
    served = serving(text=tf.constant(["the film was great"]))["probabilities"].numpy()
    expected = tf.nn.softmax(np.array(chief["logits"])).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


def test_distribution_names_and_global_batch():
    strategy = make_distribution("one_device")
    assert strategy.num_replicas_in_sync == 1
    assert make_distribution("auto").num_replicas_in_sync == 1  # this CPU machine: no TPU, no GPUs
    assert global_batch_size(16, strategy) == 16
    assert make_distribution(strategy) is strategy
    with pytest.raises(ConfigError, match="must be one of"):
        make_distribution("gpus")


def test_multi_worker_without_tf_config_says_what_to_set(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        make_distribution("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not valid"):
        make_distribution("multi_worker")
