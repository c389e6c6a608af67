"""Token classification: CoNLL reading, IOB2, alignment to first word pieces, entity F1, tagger, export."""

import re

import numpy as np
import pytest
import tensorflow as tf

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.conll import read_conll, to_iob2
from tfhub_transfer.data.tables import read_table
from tfhub_transfer.errors import DataError
from tfhub_transfer.export.saved_model import ExportedClassifier
from tfhub_transfer.jobs.train import train
from tfhub_transfer.preprocessing.text import TextPreprocessor
from tfhub_transfer.preprocessing.tokens import align_words
from tfhub_transfer.training.metrics import entity_f1, entity_spans


def train_tagger(**fields):
    return train(TrainConfig.of(task="tokens", **fields))

ITEMS = {"film", "movie", "soundtrack", "acting", "plot", "ending", "phone", "battery", "screen", "camera",
         "laptop", "keyboard", "service", "food", "staff", "book", "story", "headphones", "delivery"}


def write_conll(path, sentences):
    lines = ["-DOCSTART- -X- O O", ""]
    for words, tags in sentences:
        lines += [f"{w} X X {t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n")
    return path


def tag_sentence(text):
    words = re.findall(r"\w+|[^\w\s]", text)
    tags, previous = [], "O"
    for i, word in enumerate(words):
        if word.lower() == "room" and previous != "O":
            tags.append("I-ITEM")
        elif word.lower() in ITEMS or (word.lower() == "hotel" and words[i + 1].lower() == "room"):
            tags.append("B-ITEM")
        else:
            tags.append("O")
        previous = tags[-1]
    return words, tags


@pytest.fixture(scope="module")
def item_corpus(demo_data, tmp_path_factory):
    sentences = [tag_sentence(t) for t in read_table(demo_data).texts]
    folder = tmp_path_factory.mktemp("conll")
    train = write_conll(folder / "train.txt", sentences[:300])
    return train, write_conll(folder / "valid.txt", sentences[300:])


def test_read_conll_converts_iob1_and_names_bad_lines(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("-DOCSTART- -X- O O\n\nEU NNP I-ORG\nrejects VBZ O\nGerman JJ I-MISC\n\nPeter NNP I-PER\n"
                    "Blackburn NNP I-PER\n")
    sentences = read_conll(path)
    assert sentences.words == [["EU", "rejects", "German"], ["Peter", "Blackburn"]]
    assert sentences.tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"]]
    assert sentences.lines == [3, 7]
    path.write_text("EU B-ORG\nlonely\n")
    with pytest.raises(DataError, match="line 2 has no tag column"):
        read_conll(path)


def test_iob2_and_entity_f1():
    assert to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG"]) == ["B-PER", "I-PER", "O", "B-LOC", "B-ORG"]
    assert entity_spans(["B-PER", "I-PER", "O", "B-LOC", "I-ORG"]) == {("PER", 0, 2), ("LOC", 3, 4),
                                                                       ("ORG", 4, 5)}
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    scores = entity_f1(gold, [["B-PER", "O", "O", "B-LOC"]])
    assert scores["precision"] == 0.5 and scores["recall"] == 0.5
    assert entity_f1(gold, gold)["f1"] == 1.0


def test_alignment_uses_first_pieces_and_cuts_long_sentences(tiny_encoder):
    pre = TextPreprocessor(str(tiny_encoder / "preprocessor"))
    words = tf.ragged.constant([["the", "zzqx", "film"], ["a"]])
    inputs, keep = align_words(pre, words, seq_length=16)
    ids = inputs["input_word_ids"].numpy()
    positions = inputs["word_positions"].numpy()
    first = [pre.tokenize(tf.constant([w])).numpy()[0][0] for w in ("the", "zzqx", "film")]
    assert [ids[0][p] for p in positions[0]] == first
    assert positions[0][1] == 2 and positions[0][2] > 3  # "zzqx" spans several pieces
    short, keep = align_words(pre, words, seq_length=5)
    assert keep.to_list() == [[True, False, False], [True]]
    assert short["input_word_ids"].shape[1] <= 5


@pytest.fixture(scope="module")
def tagger(item_corpus, tiny_encoder, tmp_path_factory):
    train_path, valid_path = item_corpus
    out = tmp_path_factory.mktemp("tagger")
    return train_tagger(train=train_path, valid=valid_path, encoder=str(tiny_encoder),
                                          epochs=5, learning_rate=3e-3, batch_size=16, seq_length=48,
                                          output_dir=out, name="items", verbose=0)


def test_tagger_learns_entities(tagger):
    assert tagger.label_names == ["O", "B-ITEM", "I-ITEM"]
    assert tagger.metrics["f1"] > 0.8 and tagger.metrics["entities"] >= 100


def test_tagger_export_maps_sentences_to_a_tag_per_word(tagger):
    served = ExportedClassifier(tagger.export_path).signature(
        text=tf.constant(["I found the camera wonderful .", "The hotel room was awful"]))
    words = served["words"].numpy()
    tags = served["tags"].numpy()
    assert served["num_words"].numpy().tolist() == [6, 5]
    assert words[0][3] == b"camera" and tags[0][3] == b"B-ITEM"
    assert [t.decode() for t in tags[1][:5]] == ["O", "B-ITEM", "I-ITEM", "O", "O"]
    assert tags[0][5] == b"O" and tags[1][5] == b""  # padding past the sentence
    model_tags = np.array([t.decode() for t in tags[0][:6]])
    assert (model_tags != "").all()


@pytest.mark.integration  # a long end-to-end run: make integration (CI); make test keeps its 12 minutes
def test_frozen_bilstm_head_with_layer_mix(item_corpus, tiny_encoder, tmp_path):
    train_path, valid_path = item_corpus
    result = train_tagger(train=train_path, valid=valid_path, encoder=str(tiny_encoder),
                                            mode="freeze", layer_mix="scalar_mix",
                                            head="bilstm", epochs=4, learning_rate=1e-2, seq_length=48,
                                            output_dir=tmp_path, name="f", verbose=0, export=False)
    encoder = result.model.get_layer("encoder")
    assert not encoder.trainable_weights
    assert result.metrics["f1"] > 0.5


@pytest.mark.slow
def test_token_feature_cache_trains_the_same_head(item_corpus, tiny_encoder, tmp_path, monkeypatch):
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(tmp_path / "cache"))
    train_path, valid_path = item_corpus
    result = train_tagger(train=train_path, valid=valid_path, encoder=str(tiny_encoder), mode="freeze",
                          layer_mix="scalar_mix", head="dense", epochs=10, learning_rate=1e-2,
                          seq_length=48, output_dir=tmp_path, name="c", verbose=0, feature_cache=True)
    assert (tmp_path / "cache" / "features").is_dir()
    assert result.metrics["f1"] > 0.5
    # The full model (encoder + copied mix and head) gives what the cached head learned.
    sentences = read_conll(valid_path)
    full = result.model.predict_tags(sentences, batch_size=16)
    assert entity_f1(sentences.tags, full)["f1"] == pytest.approx(result.metrics["f1"], abs=0.02)
