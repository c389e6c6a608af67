"""A tiny randomly initialised BERT in TF Hub format, for tests, notebooks and quick trials.

Its vocabulary is the BERT special tokens, single characters, and the words
seen in the given texts, so tokenisation of those texts needs no [UNK].
"""

from __future__ import annotations

import re
import string
import tempfile
import unicodedata
from collections.abc import Iterable
from pathlib import Path

import tf_keras

from tfhub_transfer.encoders.build.bert import build_bert
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.hub_writer import write_encoder_pair
from tfhub_transfer.encoders.build.vocab import SPECIAL_TOKENS

DEMO_VOCAB = Path(__file__).resolve().parents[2] / "demo_data" / "reviews.tsv"


def bert_normalize(text: str, lower_case: bool) -> str:
    """The text as BERT's tokenizer sees it: uncased models case-fold, decompose (NFD) and drop accents
    (so Hangul syllables become jamo); cased models keep it as written."""
    if not lower_case:
        return text
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def tiny_vocabulary(texts: Iterable[str], max_words: int = 2000, lower_case: bool = True) -> list[str]:
    """Special tokens, single characters (ASCII and every other character of `texts`), `##` pieces of
    the letters, then the most frequent words, all normalised as the tokenizer will see them."""
    words: dict[str, int] = {}
    seen_chars: dict[str, None] = {}
    for text in texts:
        for word in re.findall(r"\w+", bert_normalize(text, lower_case)):
            words[word] = words.get(word, 0) + 1
            seen_chars.update(dict.fromkeys(word))
    frequent = sorted(words, key=lambda w: (-words[w], w))[:max_words]
    letters = string.ascii_lowercase if lower_case else string.ascii_letters
    other = [c for c in seen_chars if not c.isascii()]
    chars = list(letters + string.digits + string.punctuation) + other
    pieces = [f"##{c}" for c in list(letters) + [c for c in other if c.isalnum()]]
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
    lower_case: bool = True,
    pooled_output: str = "pooler",
) -> Path:
    """Writes a random BERT (default 2 layers, H=32) with its preprocessor to `out_dir`
    (refusing an existing non-empty directory unless `overwrite` and it is one of ours).

    `lower_case=False` writes a cased encoder (e.g. for Korean: its vocabulary keeps Hangul syllables);
    `pooled_output="mean"` makes `pooled_output` the masked mean, as converted sentence-transformers
    checkpoints have it."""
    if texts is None:
        texts = DEMO_VOCAB.read_text(encoding="utf-8").splitlines()[1:]
    vocab = tiny_vocabulary(texts, lower_case=lower_case)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, num_layers=num_layers,
        num_heads=num_heads, intermediate_size=4 * hidden_size, max_position_embeddings=512,
        hidden_dropout=dropout, attention_dropout=dropout, pooled_output=pooled_output,
    )
    tf_keras.utils.set_random_seed(seed)
    encoder, head = build_bert(config)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp) / "vocab.txt"
        vocab_path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
        return write_encoder_pair(
            encoder, head, vocab_path, lower_case, out_dir, {"name": "tiny-bert", "pooling": "mean"}, overwrite
        )
