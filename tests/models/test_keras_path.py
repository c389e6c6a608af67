"""The Keras path on the tiny encoder: from_encoder -> compile() -> fit(strings, labels) -> predict / save / load.

Also: every `train` flag x every task either reaches the fit or is refused naming flag and task.
"""

import types

import numpy as np
import pytest
import tf_keras

from tfhub_transfer.cli.main import build_parser
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.models.saving import load
from tfhub_transfer.models.text_classifier import TextClassifier
from tfhub_transfer.training.loop import check_supported


@pytest.fixture(scope="module")
def reviews(demo_data):
    table = read_table(demo_data)
    return table.texts, [str(y) for y in table.labels]


@pytest.fixture(scope="module")
def keras_model(tiny_encoder, reviews):
    """Built, compiled with the defaults and fitted on raw strings and label names."""
    texts, labels = reviews
    tf_keras.utils.set_random_seed(0)
    model = TextClassifier.from_encoder(str(tiny_encoder), labels=sorted(set(labels)), pooling="mean", seed=0,
                                        mode="finetune")  # auto's own path: tests/models/test_keras_auto.py
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(learning_rate=3e-3)
    history = model.fit(texts[:320], labels[:320], batch_size=16, epochs=3, verbose=0,
                        validation_data=(texts[320:], labels[320:]))
    return model, before, history


def test_fit_on_strings_changes_weights_and_learns(keras_model, reviews):
    model, before, history = keras_model
    assert model.label_names == ["negative", "positive"]
    pooler = {id(v) for v in model.layer_groups.variables["pooler"]}  # unused under mean pooling
    moved = [not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights) if id(w) not in pooler]
    assert len(moved) > 10 and all(moved)  # finetune: every encoder layer and the head train
    assert history.history["val_accuracy"][-1] > 0.75  # balanced classes: chance is 0.5
    texts, labels = reviews
    loss, accuracy, _ = model.evaluate(texts[320:], labels[320:], verbose=0)
    assert accuracy > 0.75 and np.isfinite(loss)


def test_compile_defaults_size_the_schedule_from_fit(keras_model):
    model, _, _ = keras_model
    assert model._schedule.total_steps == 3 * 20  # 320 examples / 16 per batch x 3 epochs
    assert model.optimizer.iterations.numpy() == 60


def test_predict_on_strings_equals_the_export(keras_model, reviews, tmp_path):
    model, _, _ = keras_model
    texts = reviews[0][320:340]
    logits = model.predict(texts, verbose=0)
    path = model.export(tmp_path, "keras")
    served = ExportedClassifier(path).predict(texts)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(served["probabilities"], probabilities, atol=1e-5)
    assert served["labels"] == model.predict_labels(texts)


def test_save_then_load_predicts_the_same_and_trains_on(keras_model, reviews, tmp_path):
    model, _, _ = keras_model
    texts, labels = reviews
    model.save(tmp_path / "saved")
    with pytest.raises(ConfigError, match="exists"):
        model.save(tmp_path / "saved")
    loaded = load(tmp_path / "saved")
    assert type(loaded) is TextClassifier and loaded.label_names == model.label_names
    assert str(loaded.mode) == "finetune" and loaded.config == model.config
    np.testing.assert_allclose(loaded.predict(texts[:16], verbose=0), model.predict(texts[:16], verbose=0),
                               atol=1e-5)
    head = loaded.get_layer("head").weights[0].numpy().copy()
    loaded.fit(texts[:32], labels[:32], batch_size=16, epochs=1, verbose=0)  # compiles with the defaults
    assert not np.allclose(head, loaded.get_layer("head").weights[0].numpy())


def test_get_config_rebuilds_the_same_architecture(keras_model):
    model, _, _ = keras_model
    twin = TextClassifier.from_config(model.get_config())
    assert [w.shape for w in twin.weights] == [w.shape for w in model.weights]
    assert twin.label_names == model.label_names


def test_fastai_verbs_set_the_frozen_groups(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), num_classes=2, mode="freeze")
    assert not model.get_layer("encoder").trainable
    model.freeze_to(2)
    assert model.get_layer("encoder").trainable and model.frozen_groups == ("embeddings", "layer_0")
    model.freeze_to(-1)
    assert model.frozen_groups == ("embeddings", "layer_0", "layer_1")
    model.unfreeze()
    assert model.frozen_groups == ()
    model.freeze()
    assert model.frozen_groups == ("embeddings", "layer_0", "layer_1", "pooler")


def test_user_optimizer_is_the_base_that_group_multipliers_scale(tiny_encoder):
    model = TextClassifier.from_encoder(str(tiny_encoder), num_classes=2, mode="discriminative:0.5", pooling="cls")
    model.compile(tf_keras.optimizers.SGD(0.2))
    model.unfreeze()  # past the head-first phase
    rates = model.group_learning_rates(0)
    assert rates == pytest.approx({"head": 0.2, "pooler": 0.1, "layer_1": 0.05, "layer_0": 0.025, "embeddings": 0.0125})


def test_fit_takes_a_tf_data_set_of_strings_and_label_ids(keras_model, reviews):
    import tensorflow as tf

    model, _, _ = keras_model
    texts, labels = reviews
    ids = np.asarray([model.label_names.index(y) for y in labels[:32]], np.int32)
    head = model.get_layer("head").weights[0].numpy().copy()
    dataset = tf.data.Dataset.from_tensor_slices((texts[:32], ids))  # tokenised by the model's pipeline
    model.fit(dataset, batch_size=16, epochs=1, verbose=0)
    assert not np.allclose(head, model.get_layer("head").weights[0].numpy())


# -- every train flag x every task ----------------------------------------------------------------------
TASKS = {
    "single_label": [], "multi_label": ["--task", "multi_label"], "regression": ["--task", "regression"],
    "pairs": ["--text-b-column", "text_b"], "tokens": ["--task", "tokens"],
    "rnn": ["--word-vectors", "vectors.txt"], "text_embedding": ["--text-embedding", "module_dir"],
    "feature_cache": ["--mode", "freeze", "--feature-cache"],
}
MODEL_CLASSES = {"rnn": "RnnClassifier", "text_embedding": "TextEmbeddingClassifier", "feature_cache": "CachedHead"}
VALUES = {  # one non-default value per flag
    "--valid": "v.tsv", "--text-column": "t", "--label-column": "l", "--text-b-column": "b",
    "--label-separator": ";", "--layer-mix": "last", "--feature-cache": None, "--head": "bilstm",
    "--max-sentences": "5", "--encoder": "other", "--preprocessor": "p", "--mode": "partial:1",
    "--embedding-lr-multiplier": "0.5", "--embedding-mode": "freeze", "--slow-factor": "0.5", "--rnn": "gru",
    "--rnn-units": "8", "--max-tokens": "100", "--optimizer": "sgd", "--schedule": "constant", "--pooling": "max",
    "--dropout": "0.2", "--epochs": "2", "--batch-size": "8", "--lr": "0.01", "--warmup-fraction": "0.2",
    "--weight-decay": "0.1", "--seq-length": "64", "--validation-fraction": "0.2", "--max-train-examples": "10",
    "--seed": "3", "--quiet": None, "--distribution": "one_device", "--dtype": "bfloat16", "--no-bucket": None,
    "--pack": "64", "--steps-per-execution": "2", "--jit-compile": None, "--resume": None, "--no-resume": None,
    "--backup-every": "10", "--no-restore-best": None, "--name": "n", "--out": "o", "--no-export": None,
    "--early-stopping": "2", "--class-weight": "balanced", "--weight-column": "w",
    "--head-lr": "0.01", "--head-lr-multiplier": "10", "--frozen-epochs": "1", "--lr-mult": "100",
    "--long-text": "windows:32", "--tune-head": None, "--no-standardize-features": None, "--pairs": "siamese",
    "--export-format": "tflite", "--quantize": "int8",
    "--no-tensorboard": None, "--keep-backups": None, "--cache-dir": "c", "--label-names": "neg,pos",
    "--max-steps": "5", "--time-budget": "1.5", "--streaming": "off",
}
DEFINING = {"--train", "--task", "--architecture", "--word-vectors", "--text-embedding", "--help", "--debug",
            "--tensorboard",  # restates its default (the pair of --no-tensorboard)
            "--tfds-data-dir"}  # where tfds:NAME inputs are read from (TFDS_DATA_DIR), not a training option


def _train_flags() -> list[str]:
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    return sorted(opt for action in train._actions for opt in action.option_strings
                  if opt.startswith("--") and opt not in DEFINING)


def test_every_train_flag_has_a_matrix_value():
    assert set(_train_flags()) == set(VALUES)


def _config(argv):
    from tfhub_transfer.cli.main import _train_config

    args = build_parser().parse_args(["train", "--train", "x.tsv", *argv])
    return _train_config(args, name=args.name, output_dir=args.out, export=not args.no_export)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_flag_reaches_the_fit_or_is_refused_naming_flag_and_task(task):
    import importlib

    base = _config(TASKS[task]).flat()
    where = "tfhub_transfer.models.cached_heads" if task == "feature_cache" else "tfhub_transfer"
    module = importlib.import_module(where)
    model_class = getattr(module, MODEL_CLASSES[task]) if task in MODEL_CLASSES else None
    stand_in = types.SimpleNamespace(unsupported=getattr(model_class, "unsupported", {}))
    outcomes = {}
    for flag, value in VALUES.items():
        if flag in TASKS[task]:
            continue  # part of what defines this task
        argv = [*TASKS[task], flag] + ([value] if value is not None else [])
        config = _config(argv)
        changed = {k: v for k, v in config.flat().items() if v != base[k]}
        try:
            check_options(config)
            check_supported(stand_in, config.optimization, config.runtime, task)
        except ConfigError as err:
            message = str(err)
            assert flag.split("/")[0] in message or flag.lstrip("-").replace("-", "_") in message, (flag, message)
            outcomes[flag] = "refused"
            continue
        assert changed, f"{flag} changed nothing in the config for {task}: silently dropped"
        outcomes[flag] = "used"
    assert "used" in outcomes.values() and (task == "single_label" or "refused" in outcomes.values())
    if task == "tokens":
        assert outcomes["--text-b-column"] == "refused" and outcomes["--optimizer"] == "used"
    if task == "feature_cache":
        assert outcomes["--resume"] == "refused" and outcomes["--backup-every"] == "refused"


def test_conflicting_encoder_and_word_vectors_are_refused():
    with pytest.raises(ConfigError, match="--encoder"):
        check_options(TrainConfig.of(train="x", word_vectors="v.txt", encoder="bert_en_uncased_L-12_H-768_A-12"))


@pytest.mark.parametrize("flag, field, value", [("--epochs", "epochs", 0), ("--lr", "learning_rate", -1e-3),
                                                ("--warmup-fraction", "warmup_fraction", 5.0),
                                                ("--steps-per-execution", "steps_per_execution", 0),
                                                ("--seq-length", "seq_length", 1), ("--dropout", "dropout", 1.5)])
def test_out_of_range_values_are_refused_naming_the_flag(flag, field, value):
    with pytest.raises(ConfigError, match=flag):
        check_options(TrainConfig.of(train="x", **{field: value}))


@pytest.mark.slow
def test_multi_label_through_compare(tiny_encoder, tmp_path):
    from tfhub_transfer.jobs.compare import compare_modes

    texts = ["sun and rain", "sun", "rain", "snow and sun", "snow", "rain and snow"] * 8
    labels = ["sun,rain", "sun", "rain", "snow,sun", "snow", "rain,snow"] * 8
    import pandas as pd

    frame = pd.DataFrame({"text": texts, "label": labels})
    config = TrainConfig.of(train=frame, task="multi_label", encoder=str(tiny_encoder), epochs=8, batch_size=8,
                            learning_rate=3e-2, verbose=0, pooling="mean")
    results = compare_modes(config, ["freeze"], tmp_path)
    assert 0.0 < results[0].valid_accuracy <= 1.0  # micro-F1 of a multi-label head, not accuracy
    assert "micro_f1" in (tmp_path / "compare.md").read_text() or (tmp_path / "compare.csv").exists()
