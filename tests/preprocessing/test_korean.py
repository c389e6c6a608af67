"""Korean text on a cased encoder whose vocabulary holds Hangul word pieces (as klue/bert-base's does).

Lower-casing BERT preprocessors also apply NFD and strip accents, which decomposes Hangul syllables
into jamo that a cased Korean vocabulary does not hold: every word would be [UNK].
"""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text as tf_text
from shared_encoders import shared_tiny_bert

from tfhub_transfer.cli.main import main
from tfhub_transfer.cli.serve_check import serve_check
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.errors import ExportError
from tfhub_transfer.jobs.train import train

SUBJECTS = {"미디어": ("영화가", "배우들이", "노래가", "책이"), "서비스": ("음식이", "직원이", "호텔이", "배달이")}
PREDICATES = {"긍정": ("좋았다", "훌륭했다", "최고였다", "재미있었다"),
              "부정": ("별로였다", "지루했다", "최악이었다", "실망스러웠다")}
ADVERBS = ("정말", "너무", "아주", "조금")


def korean_reviews(n: int, seed: int) -> pd.DataFrame:
    """Short Korean reviews with a sentiment (the predicate) and a domain (the subject)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        domain, sentiment = rng.choice(list(SUBJECTS)), rng.choice(list(PREDICATES))
        text = f"{rng.choice(SUBJECTS[domain])} {rng.choice(ADVERBS)} {rng.choice(PREDICATES[sentiment])}."
        rows.append({"text": text, "sentiment": sentiment, "domain": domain})
    return pd.DataFrame(rows)


VOCAB_TEXTS = [" ".join(words) for words in (*SUBJECTS.values(), *PREDICATES.values(), ADVERBS)] + ["BTS 최고"]


@pytest.fixture(scope="module")
def korean_encoder():
    return shared_tiny_bert(texts=VOCAB_TEXTS, lower_case=False)


def pieces(preprocessor, vocab: list[str], text: str) -> list[str]:
    ids = preprocessor.tokenize(tf.constant([text])).merge_dims(1, 2)[0].numpy()
    return [vocab[i] for i in ids]


def test_korean_text_tokenises_to_hangul_pieces_on_a_cased_encoder(korean_encoder):
    preprocessor = hub.load(str(korean_encoder / "preprocessor"))
    vocab = (korean_encoder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert pieces(preprocessor, vocab, "BTS 노래가 정말 좋았다.") == ["BTS", "노래가", "정말", "좋았다", "."]
    assert pieces(preprocessor, vocab, "가노래") == ["가", "##노", "##래"]  # unseen word: syllable pieces
    assert not bool(hub.load(str(korean_encoder / "encoder")).do_lower_case.numpy())
    # The same vocabulary behind a lower-casing tokenizer: NFD turns the syllables into jamo -> [UNK].
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)), -1)
    uncased = tf_text.BertTokenizer(table, token_out_type=tf.int64, lower_case=True)
    ids = uncased.tokenize(tf.constant(["노래가 정말 좋았다"])).merge_dims(1, 2)[0].numpy()
    assert [vocab[i] for i in ids] == ["[UNK]"] * 3


def fit(frame, encoder, tmp_path, **options):
    defaults = dict(mode="finetune", train=frame, encoder=str(encoder), epochs=6, learning_rate=3e-3, batch_size=16,
                    seq_length=32, output_dir=tmp_path, verbose=0, validation_fraction=0.25)
    return train(TrainConfig.of(**{**defaults, **options}))


@pytest.mark.slow
def test_korean_classifier_export_serves_korean_strings(korean_encoder, tmp_path, capsys):
    frame = korean_reviews(96, seed=0).rename(columns={"sentiment": "label"})
    result = fit(frame, korean_encoder, tmp_path, name="ko", epochs=2)
    assert result.label_names == ["긍정", "부정"]
    assert result.history["loss"][-1] < result.history["loss"][0]
    probes = ["영화가 정말 최고였다.", "음식이 너무 별로였다.", "BTS 노래가 아주 훌륭했다."]
    served = serve_check(result.export_path, probes)
    in_memory = tf.nn.softmax(result.model.predict(probes, verbose=0)).numpy()
    np.testing.assert_allclose(served["probabilities"], in_memory, atol=1e-5)
    assert [label.decode("utf-8") for label in served["labels"]] == result.model.predict_labels(probes)
    capsys.readouterr()
    assert main(["serve-check", str(result.export_path), *probes]) == 0
    printed = capsys.readouterr().out
    labels = " ".join(f"'{label.decode()}'" for label in served["labels"])
    assert f"Result for output key labels:\n[{labels}]" in printed
    assert "Result for output key probabilities:" in printed


def test_serve_check_names_a_bad_export_path(tmp_path, capsys):
    assert main(["serve-check", str(tmp_path / "missing"), "text"]) == 2
    assert "no saved_model.pb" in capsys.readouterr().err
    with pytest.raises(ExportError, match="not a SavedModel directory"):
        serve_check(tmp_path, ["text"])


def test_korean_sentence_pairs_with_multi_label_korean_labels(korean_encoder, tmp_path):
    """Pairs and multi-label together: labels are the first text's domain and the second text's sentiment."""
    first, second = korean_reviews(64, seed=1), korean_reviews(64, seed=2)
    frame = pd.DataFrame({"text_a": first.text, "text_b": second.text,
                          "label": [f"{d},{s}" for d, s in zip(first.domain, second.sentiment)]})
    result = fit(frame, korean_encoder, tmp_path, task="multi_label", text_column="text_a",
                 text_b_column="text_b", name="ko_pairs", export=False, epochs=2)
    assert result.label_names == ["긍정", "미디어", "부정", "서비스"]
    assert result.history["loss"][-1] < result.history["loss"][0]
    preprocessor = result.model.preprocessor
    packed = preprocessor.encode(list(first.text[:8]), 32, list(second.text[:8]))
    ids, types = packed["input_word_ids"].numpy(), packed["input_type_ids"].numpy()
    assert preprocessor.special_ids["unknown_id"] not in ids  # both segments tokenised to Hangul pieces
    assert (types == 1).any(axis=1).all()
    probabilities = tf.sigmoid(result.model.predict((list(first.text[:4]), list(second.text[:4])), verbose=0))
    assert probabilities.shape == (4, 4) and np.isfinite(probabilities).all()


def test_encoders_info_shows_casing_and_pooled_output(korean_encoder, capsys):
    assert main(["encoders", "info", str(korean_encoder)]) == 0
    out = capsys.readouterr().out
    assert "casing:        cased: text kept as written (no case folding, no Unicode normalisation)" in out
    assert "pooled_output: BERT's tanh pooler over [CLS]" in out and "signatures:    serving_default" in out
