"""A tiny randomly initialised BERT in TF Hub format, for tests, notebooks and quick trials.

Its vocabulary is the BERT special tokens, single characters, and the words
seen in the given texts, so tokenisation of those texts needs no [UNK].
"""

from __future__ import annotations

import re
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path

import tf_keras

from tfhub_transfer.encoders.build.bert import build_bert
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.hub_writer import write_encoder_pair
from tfhub_transfer.encoders.build.vocab import SPECIAL_TOKENS

DEMO_VOCAB = Path(__file__).resolve().parents[2] / "demo_data" / "reviews.tsv"


def tiny_vocabulary(texts: Iterable[str], max_words: int = 2000) -> list[str]:
    words: dict[str, int] = {}
    for text in texts:
        for word in re.findall(r"\w+", text.lower()):
            words[word] = words.get(word, 0) + 1
    frequent = sorted(words, key=lambda w: (-words[w], w))[:max_words]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = [f"##{c}" for c in string.ascii_lowercase]
    ordered = list(dict.fromkeys(list(SPECIAL_TOKENS.values()) + chars + pieces + frequent))
    return ["[PAD]"] + [t for t in ordered if t != "[PAD]"]


def write_tiny_bert(
    out_dir: str | Path,
    texts: Iterable[str] | None = None,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    seed: int = 0,
    dropout: float = 0.1,
    overwrite: bool = False,
) -> Path:
    """Writes a random BERT (default 2 layers, H=32) with its preprocessor to `out_dir`
    (refusing an existing non-empty directory unless `overwrite` and it is one of ours)."""
    if texts is None:
        texts = DEMO_VOCAB.read_text(encoding="utf-8").splitlines()[1:]
    vocab = tiny_vocabulary(texts)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, num_layers=num_layers,
        num_heads=num_heads, intermediate_size=4 * hidden_size, max_position_embeddings=512,
        hidden_dropout=dropout, attention_dropout=dropout,
    )
    tf_keras.utils.set_random_seed(seed)
    encoder, head = build_bert(config)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp) / "vocab.txt"
        vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return write_encoder_pair(
            encoder, head, vocab_path, True, out_dir, {"name": "tiny-bert", "pooling": "mean"}, overwrite
        )
