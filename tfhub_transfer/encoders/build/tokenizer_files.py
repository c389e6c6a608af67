"""Which tokenizer a Hugging Face checkpoint uses, read from its files, and whether the package can run it.

Supported in the preprocessing graph:
- `wordpiece`: a BERT-style `vocab.txt` (BERT, ELECTRA, DistilBERT, KLUE-RoBERTa; MPNet's, with <s> </s>
  <pad> <mask> and `<s> A </s></s> B </s>` packing) through tensorflow-text's WordPiece;
- `sentencepiece`: XLM-R's `sentencepiece.bpe.model` (XLM-R, multilingual-e5, paraphrase-multilingual)
  through tensorflow-text's SentencepieceTokenizer, with XLM-R's fairseq id layout.
Refused with a clear message: byte-level BPE (`vocab.json` + `merges.txt`: roberta-base, distilroberta,
GPT-2), which tensorflow-text has no op for, and SentencePiece models of other layouts (ALBERT, T5).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tfhub_transfer.encoders.build.vocab import MPNET_SPECIAL_TOKENS, read_vocab, special_token_ids
from tfhub_transfer.errors import EncoderError

WORDPIECE = "wordpiece"
SENTENCEPIECE = "sentencepiece"
BYTE_LEVEL_BPE = "byte-level-bpe"
SUPPORTED_TOKENIZERS = (WORDPIECE, SENTENCEPIECE)
TOKENIZER_NOTES = {
    WORDPIECE: "WordPiece (vocab.txt; tensorflow_text.BertTokenizer)",
    SENTENCEPIECE: "SentencePiece, XLM-R layout (sentencepiece.bpe.model; tensorflow_text.SentencepieceTokenizer)",
}
# XLM-R's files name the model `sentencepiece.bpe.model`; some re-uploads call it `tokenizer.model`.
SENTENCEPIECE_FILES = ("sentencepiece.bpe.model", "tokenizer.model")
SENTENCEPIECE_MODEL_FILE = "sentencepiece.model"  # its name beside a converted pair
_BYTE_BPE_FILES = ("vocab.json", "merges.txt")
# tokenizer_config.json's `tokenizer_class` (without a trailing "Fast") -> kind.
_CLASS_KINDS = {
    "BertTokenizer": WORDPIECE, "ElectraTokenizer": WORDPIECE, "DistilBertTokenizer": WORDPIECE,
    "MPNetTokenizer": WORDPIECE, "BertJapaneseTokenizer": None, "XLMRobertaTokenizer": SENTENCEPIECE,
    "RobertaTokenizer": BYTE_LEVEL_BPE, "GPT2Tokenizer": BYTE_LEVEL_BPE, "BartTokenizer": BYTE_LEVEL_BPE,
    "LongformerTokenizer": BYTE_LEVEL_BPE,
}
# XLM-R's ids (fairseq): <s> 0, <pad> 1, </s> 2, <unk> 3, then SentencePiece's pieces shifted by one
# (its own <unk> 0, <s> 1, </s> 2 are not used) and <mask> last.
XLMR_SPECIAL_IDS = {"start_of_sequence_id": 0, "padding_id": 1, "end_of_segment_id": 2, "unknown_id": 3}
XLMR_ID_OFFSET = 1


@dataclasses.dataclass(frozen=True)
class TokenizerFiles:
    """A checkpoint's tokenizer: its kind, its file (vocab.txt or a SentencePiece model) and casing.

    `lower_case` is None for SentencePiece, whose model carries its own normalisation."""

    kind: str
    path: Path
    lower_case: bool | None
    # "bert": [CLS] A [SEP] B [SEP] with types 0/1; "xlmr": <s> A </s></s> B </s>, types 0 (XLM-R, MPNet).
    packing: str = "bert"
    mpnet_specials: bool = False  # WordPiece with MPNet's <s> </s> <pad> <mask> names

    def special_ids(self, vocab_size: int | None = None) -> dict[str, int]:
        """The TF Hub `get_special_tokens_dict()` entries (start/end/padding/mask/unknown ids, vocab_size).

        Args:
          vocab_size: the model's number of word embeddings, for SentencePiece (it may exceed the
            tokenizer's ids; the preprocessor reports the model's, as the encoder checks it).

        Returns:
          A dict of int ids, as `preprocessor.tokenize.get_special_tokens_dict()` returns them.

        Example:
          >>> TokenizerFiles("wordpiece", Path("vocab.txt"), True).special_ids()["padding_id"]  # doctest: +SKIP
          0
        """
        if self.kind == WORDPIECE:
            names = MPNET_SPECIAL_TOKENS if self.mpnet_specials else None
            return special_token_ids(read_vocab(self.path), str(self.path), names)
        mask_id = sentencepiece_vocab_size(self.path) + XLMR_ID_OFFSET
        # A model may have more embedding rows than its tokenizer has ids (multilingual-e5-small: 250037).
        return {**XLMR_SPECIAL_IDS, "mask_id": mask_id, "vocab_size": max(vocab_size or 0, mask_id + 1)}

    @property
    def note(self) -> str:
        return TOKENIZER_NOTES[self.kind]


def sentencepiece_vocab_size(path: Path) -> int:
    """The number of pieces of a SentencePiece model (read with tensorflow-text, no sentencepiece package)."""
    import tensorflow_text as text

    return int(text.SentencepieceTokenizer(model=Path(path).read_bytes()).vocab_size())


def _tokenizer_class(checkpoint_dir: Path) -> tuple[str | None, dict]:
    config_file = checkpoint_dir / "tokenizer_config.json"
    if not config_file.exists():
        return None, {}
    values = json.loads(config_file.read_text(encoding="utf-8"))
    name = values.get("tokenizer_class")
    return (name.removesuffix("Fast") if isinstance(name, str) else None), values


def _kind_from_files(checkpoint_dir: Path) -> str | None:
    if (checkpoint_dir / "vocab.txt").exists():
        return WORDPIECE
    if any((checkpoint_dir / f).exists() for f in SENTENCEPIECE_FILES):
        return SENTENCEPIECE
    if all((checkpoint_dir / f).exists() for f in _BYTE_BPE_FILES):
        return BYTE_LEVEL_BPE
    return None


def unsupported_tokenizer_message(checkpoint_dir: Path, what: str, supported_families: str) -> str:
    """The one error for a tokenizer the package cannot run, naming what it can."""
    return (f"{checkpoint_dir}: its tokenizer ({what}) is not supported. Supported tokenizers: "
            f"{'; '.join(TOKENIZER_NOTES.values())}. Supported families: {supported_families}. "
            "Byte-level BPE (vocab.json + merges.txt, e.g. roberta-base, distilroberta-base) has no "
            "tensorflow-text op; use a checkpoint of a supported family (e.g. hf:klue/roberta-base, which "
            "uses WordPiece, or hf:xlm-roberta-base, which uses SentencePiece).")


def detect_tokenizer(checkpoint_dir: str | Path, supported_families: str = "") -> TokenizerFiles:
    """Finds a checkpoint's tokenizer files and casing.

    Args:
      checkpoint_dir: a Hugging Face checkpoint directory.
      supported_families: named in the error for an unsupported tokenizer.

    Returns:
      Its TokenizerFiles (`tokenizer_config.json`'s `tokenizer_class` decides when present, else the files).

    Raises:
      EncoderError: naming the supported tokenizers when it has none of them.

    Example:
      >>> detect_tokenizer("klue-roberta-base").kind  # doctest: +SKIP
      'wordpiece'
    """
    checkpoint_dir = Path(checkpoint_dir)
    name, values = _tokenizer_class(checkpoint_dir)
    kind = _CLASS_KINDS.get(name, "unknown") if name else _kind_from_files(checkpoint_dir)
    if kind == "unknown":  # an unfamiliar class: the files decide
        kind = _kind_from_files(checkpoint_dir)
    if kind == WORDPIECE:
        path = checkpoint_dir / "vocab.txt"
        if not path.exists():
            raise EncoderError(f"{checkpoint_dir}: its tokenizer is WordPiece ({name}) but vocab.txt is missing")
        mpnet = name == "MPNetTokenizer" or (name is None and "<s>" in read_vocab(path)[:10])
        return TokenizerFiles(WORDPIECE, path, bool(values.get("do_lower_case", True)),
                              packing="xlmr" if mpnet else "bert", mpnet_specials=mpnet)
    if kind == SENTENCEPIECE:
        path = next((checkpoint_dir / f for f in SENTENCEPIECE_FILES if (checkpoint_dir / f).exists()), None)
        if path is None:
            raise EncoderError(f"{checkpoint_dir}: its tokenizer is SentencePiece ({name}) but none of "
                               f"{list(SENTENCEPIECE_FILES)} is there")
        return TokenizerFiles(SENTENCEPIECE, path, None, packing="xlmr")
    what = {BYTE_LEVEL_BPE: "byte-level BPE: vocab.json + merges.txt"}.get(
        kind, f"tokenizer_class {name}" if name else "no vocab.txt, sentencepiece.bpe.model or vocab.json")
    raise EncoderError(unsupported_tokenizer_message(checkpoint_dir, what, supported_families))
