"""WordPiece vocabulary files: reading them and finding the special tokens."""

from __future__ import annotations

from pathlib import Path

from tfhub_transfer.errors import EncoderError

SPECIAL_TOKENS = {
    "padding_id": "[PAD]",
    "start_of_sequence_id": "[CLS]",
    "end_of_segment_id": "[SEP]",
    "mask_id": "[MASK]",
    "unknown_id": "[UNK]",
}


def read_vocab(path: str | Path) -> list[str]:
    """Returns the tokens of a one-token-per-line vocab file, in id order."""
    path = Path(path)
    try:
        tokens = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EncoderError(f"vocabulary file {path} does not exist") from None
    if not tokens:
        raise EncoderError(f"vocabulary file {path} is empty")
    return tokens


# MPNet's WordPiece vocabulary names them as RoBERTa does (its unknown token stays [UNK]).
MPNET_SPECIAL_TOKENS = {
    "padding_id": "<pad>",
    "start_of_sequence_id": "<s>",
    "end_of_segment_id": "</s>",
    "mask_id": "<mask>",
    "unknown_id": "[UNK]",
}


def special_token_ids(tokens: list[str], source: str = "vocabulary",
                      names: dict[str, str] | None = None) -> dict[str, int]:
    """Maps the names of the TF Hub `get_special_tokens_dict()` entries to ids (`names`: the tokens to look
    for, BERT's [PAD]/[CLS]/[SEP]/[MASK]/[UNK] unless given)."""
    names = names or SPECIAL_TOKENS
    index = {token: i for i, token in enumerate(tokens)}
    missing = [tok for tok in names.values() if tok not in index]
    if missing:
        raise EncoderError(f"{source} lacks the special tokens {missing}")
    ids = {name: index[token] for name, token in names.items()}
    ids["vocab_size"] = len(tokens)
    return ids
