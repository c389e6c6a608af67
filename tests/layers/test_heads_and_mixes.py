"""Sentence-level heads (multi-label, regression, pairs) and feature-based layer mixes (tiny fixture)."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from shared_encoders import shared_tiny_bert

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import train
from tfhub_transfer.layers.layer_mix import LAYER_MIXES, LayerMix
from tfhub_transfer.training.metrics import multilabel_report, regression_report

DOMAINS = {"media": ("film", "movie", "soundtrack", "acting", "plot", "ending", "book", "story"),
           "tech": ("phone", "battery", "screen", "camera", "laptop", "keyboard", "headphones"),
           "service": ("service", "food", "hotel", "staff", "delivery")}


def domain_of(text: str) -> str:
    words = set(text.lower().replace(",", " ").replace(".", " ").split())
    return next(name for name, keys in DOMAINS.items() if words & set(keys))


@pytest.fixture(scope="module")
def reviews(demo_data) -> pd.DataFrame:
    table = read_table(demo_data)
    return pd.DataFrame({"text": table.texts, "sentiment": table.labels})


def fit(frame, tiny_encoder, tmp_path, **kwargs):
    defaults = dict(mode="finetune",
                    train=frame, encoder=str(tiny_encoder), epochs=4, learning_rate=3e-3, batch_size=16,
                    seq_length=32, output_dir=tmp_path, verbose=0, validation_fraction=0.25)
    return train(TrainConfig.of(**{**defaults, **kwargs}))


@pytest.mark.integration  # a longer end-to-end run: make integration (CI runs it); make test keeps 12 min
@pytest.mark.slow
def test_multi_label_head_learns_and_exports_label_lists(reviews, tiny_encoder, tmp_path):
    frame = reviews.assign(label=[f"{s},{domain_of(t)}" for t, s in zip(reviews.text, reviews.sentiment)])
    result = fit(frame, tiny_encoder, tmp_path, task="multi_label", name="ml", epochs=6)
    assert result.label_names == ["media", "negative", "positive", "service", "tech"]
    assert result.metrics["micro_f1"] > 0.7
    assert len(result.metrics["thresholds"]) == 5
    probe = ["The camera was wonderful, and I loved every minute."]
    served = ExportedClassifier(result.export_path).predict(probe)
    assert served["probabilities"].shape == (1, 5)
    assert set(served["labels"][0].split(",")) <= set(result.label_names)
    assert served["predicted"].sum() == len([x for x in served["labels"][0].split(",") if x])


@pytest.mark.slow
@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_regression_head_correlates(reviews, tiny_encoder, tmp_path):
    scores = [(1.0 if s == "positive" else -1.0) for s in reviews.sentiment]
    result = fit(reviews.assign(label=scores), tiny_encoder, tmp_path, task="regression", name="reg")
    assert result.metrics["pearson"] > 0.6 and result.metrics["spearman"] > 0.5
    probes = ["I found the food wonderful.", "The plot was awful."]
    served = ExportedClassifier(result.export_path).predict(probes)
    assert served["score"].shape == (2,) and served["score"][0] > served["score"][1]


@pytest.mark.slow
@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_sentence_pairs_use_the_second_segment(reviews, tiny_encoder, tmp_path):
    shuffled = reviews.sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame = pd.DataFrame({"text_a": reviews.text, "text_b": shuffled.text, "label": shuffled.sentiment})
    result = fit(frame, tiny_encoder, tmp_path, text_column="text_a", text_b_column="text_b", name="pair",
                 epochs=5)
    assert result.metrics["accuracy"] > 0.75
    served = ExportedClassifier(result.export_path).predict(
        ["The plot was awful."] * 2,
        texts_b=["I found the food wonderful, and I loved every minute.",
                 "The staff were rude and I regret it."])
    positive = result.label_names.index("positive")
    # Same first segment, so only the second one can move the prediction: and it decides it.
    assert served["probabilities"][0, positive] > served["probabilities"][1, positive] + 0.2


@pytest.fixture(scope="module")
def four_layer_encoder():
    return shared_tiny_bert(num_layers=4)


@pytest.mark.slow
@pytest.mark.parametrize("mix", ["scalar_mix", "concat_last4"])  # every mix's values: test_layer_mix_values
def test_layer_mixes_train_above_chance(mix, four_layer_encoder, demo_data, tmp_path):
    result = fit(demo_data, four_layer_encoder, tmp_path, layer_mix=mix, mode="finetune",
                 name=f"mix_{mix}", export=False, epochs=3)
    assert result.metrics["accuracy"] > 0.7
    if mix == "scalar_mix":
        layer = result.model.get_layer("layer_mix")
        assert layer.mix_logits.shape == (5,)  # embeddings + 4 layers
        assert not np.allclose(layer.mix_logits.numpy(), 0.0)  # learned with the head


def test_layer_mix_values():
    assert set(LAYER_MIXES) == {"embeddings", "last", "second_to_last", "sum_last4", "concat_last4",
                                "scalar_mix"}  # a new mix gets its values checked here
    stacked = tf.constant(np.arange(5 * 2, dtype=np.float32).reshape(1, 5, 2))  # 5 layers of 2 dims
    assert LayerMix("embeddings", 5)(stacked).numpy().tolist() == [[0, 1]]
    assert LayerMix("last", 5)(stacked).numpy().tolist() == [[8, 9]]
    assert LayerMix("second_to_last", 5)(stacked).numpy().tolist() == [[6, 7]]
    assert LayerMix("sum_last4", 5)(stacked).numpy().tolist() == [[2 + 4 + 6 + 8, 3 + 5 + 7 + 9]]
    assert LayerMix("concat_last4", 5)(stacked).numpy().tolist() == [[2, 3, 4, 5, 6, 7, 8, 9]]
    np.testing.assert_allclose(LayerMix("scalar_mix", 5)(stacked).numpy(), [[4, 5]])  # uniform softmax
    with pytest.raises(EncoderError, match="embedding_output"):
        LayerMix("embeddings", 4, has_embeddings=False)
    with pytest.raises(EncoderError, match="at least 4 transformer layers"):
        LayerMix("concat_last4", 4, has_embeddings=True)


def test_published_encoder_without_embedding_output_gets_a_clear_error():
    from tfhub_transfer.layers.layer_mix import stack_layers

    outputs = {"encoder_outputs": [tf.zeros([1, 2, 3])] * 2, "sequence_output": tf.zeros([1, 2, 3])}
    assert stack_layers(outputs, need_embeddings=False).shape == (1, 2, 2, 3)
    with pytest.raises(EncoderError, match="does not expose `embedding_output`"):
        stack_layers(outputs, need_embeddings=True)


def test_report_helpers():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    probs = np.array([[0.9, 0.2], [0.3, 0.4], [0.8, 0.45], [0.1, 0.1]])
    report = multilabel_report(y, probs)
    assert report["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))
    assert report["tuned_micro_f1"] == 1.0 and report["thresholds"][1] <= 0.4
    reg = regression_report(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.5]))
    assert reg["spearman"] == pytest.approx(1.0) and reg["pearson"] > 0.99
