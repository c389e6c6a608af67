"""One harness every registered task model runs through (keras-hub's `run_task_test`).

`run_task_model_test(factory, examples, tmp_path)` builds the model on the tiny encoder, fits one step
(its weights must change), rebuilds it with `get_config` -> `from_config` (same config, same weights ->
same outputs), saves and loads it (equal predictions), and exports it (the export's outputs on raw strings
match the in-memory model's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer import load
from tfhub_transfer.export.formats import open_export

ATOL = 1e-4


@dataclasses.dataclass
class TaskExamples:
    """What a task model trains on (`x`, `y` as `fit` takes them) and the raw inputs its predictions are
    compared on (`probe`); `texts_b` for pair models' exports."""

    x: object
    y: object
    probe: object


def _in_memory_outputs(model, probe) -> np.ndarray:
    """What the model predicts on `probe`, in the form its export serves (probabilities, a score, tags)."""
    if model.task == "tokens":
        return np.asarray(model.predict_tags(probe), dtype=object)
    logits = model.predict(probe, verbose=0)
    if model.task == "regression":
        return logits[:, 0]
    if model.task == "multi_label":
        return tf.sigmoid(logits).numpy()
    return tf.nn.softmax(logits).numpy()


def _raw_outputs(model, probe) -> np.ndarray:
    """The model's raw outputs on `probe` (logits; per-word logits of a tagger, concatenated)."""
    if model.task == "tokens":
        sentences = model._sentences(probe)
        return np.concatenate(model.outputs_on(model.evaluation_dataset(sentences, 8)))
    return model.predict(probe, verbose=0)


def _exported_outputs(model, path: Path, probe) -> np.ndarray:
    served = open_export(path)
    if model.task == "tokens":
        out = served.signature(text=tf.constant([" ".join(words) for words in probe]))
        return np.asarray([[t.decode() for t in row[:n]] for row, n in zip(out["tags"].numpy(),
                                                                          out["num_words"].numpy())], dtype=object)
    if isinstance(probe, tuple):  # a pair model: (texts_a, texts_b)
        result = served.predict(list(probe[0]), texts_b=list(probe[1]))
    else:
        result = served.predict(list(probe))
    return result["score"] if model.task == "regression" else result["probabilities"]


def _assert_same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.dtype == object:
        assert a.tolist() == b.tolist(), what
    else:
        np.testing.assert_allclose(a, b, atol=ATOL, err_msg=what)


def run_task_model_test(factory: Callable[[], object], examples: TaskExamples, tmp_path: Path,
                        export: bool = True) -> None:
    """Runs one task model through build, a one-step fit, get_config/from_config, save/load and export.

    Args:
      factory: builds the model (on the tiny encoder).
      examples: its training examples and the raw inputs predictions are compared on.
      tmp_path: where it is saved and exported.
      export: also export it and compare the export's outputs with the model's.
    """
    model = factory()
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(learning_rate=1e-2)
    count = len(examples.x[0]) if isinstance(examples.x, tuple) else len(examples.x)
    model.fit(examples.x, examples.y, batch_size=count, epochs=1, verbose=0)  # one step
    assert int(model.optimizer.iterations.numpy()) == 1
    changed = [not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights)]
    assert any(changed), f"{model.name}: one step changed no weight"
    outputs = _raw_outputs(model, examples.probe)

    config = model.get_config()
    rebuilt = type(model).from_config(config)
    assert rebuilt.get_config() == config, "from_config(get_config()) is not the same model"
    rebuilt.set_weight_values(model.weight_values())
    _assert_same(_raw_outputs(rebuilt, examples.probe), outputs, "from_config + the weights: other outputs")

    model.save(tmp_path / "saved")
    reloaded = load(tmp_path / "saved")
    assert type(reloaded) is type(model) and reloaded.label_names == model.label_names
    _assert_same(_raw_outputs(reloaded, examples.probe), outputs, "save -> load: other outputs")

    if export:
        path = model.export(tmp_path / "exports", "harness", 1)
        _assert_same(_exported_outputs(model, path, examples.probe), _in_memory_outputs(model, examples.probe),
                     "the export's outputs differ from the model's")


def paraphrase_or_not(count: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Five random words, then the same words shuffled ("same", 1) or five other words ("different", 0)."""
    rng = np.random.default_rng(seed)
    words = ["the", "movie", "was", "and", "it", "plot", "food", "staff", "soundtrack", "i", "would", "this",
             "awful", "terrible", "useless", "wonderful", "excellent", "great", "story", "service"]
    first, second, labels = [], [], rng.integers(0, 2, count)
    for label in labels:
        chosen = list(rng.choice(words, 5, replace=False))
        first.append(" ".join(chosen))
        second.append(" ".join(rng.permutation(chosen) if label else rng.choice(words, 5, replace=False)))
    return first, second, labels
