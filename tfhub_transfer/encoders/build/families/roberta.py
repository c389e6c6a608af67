"""RoBERTa and XLM-R (`model_type` roberta, xlm-roberta): BERT layers, positions numbered from padding_idx + 1,
one token type. Tokenizers: WordPiece vocab.txt (klue/roberta-base) or XLM-R SentencePiece; byte-level BPE
(roberta-base's vocab.json + merges.txt) is refused by tokenizer_files."""

from __future__ import annotations

from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.families.bert import assign_bert_layers, read_bert_style_config
from tfhub_transfer.encoders.build.families.registry import EncoderFamily, register_family
from tfhub_transfer.encoders.build.families.weights import (
    WeightSource,
    assign_bert_embeddings,
    assign_mlm_head,
    assign_pooler,
)
from tfhub_transfer.encoders.build.tokenizer_files import SENTENCEPIECE, WORDPIECE


def position_offset(values: dict) -> int:
    """RoBERTa's first real position is padding_idx + 1 (fairseq's convention)."""
    return values.get("pad_token_id", 1) + 1


def _read_config(values: dict, path: Path) -> BertConfig:
    return read_bert_style_config(values, path, position_offset=position_offset(values))


def _assign(encoder: BertEncoder, head: MaskedLMHead, src: WeightSource, values: dict) -> dict[str, bool]:
    assign_bert_embeddings(encoder, src, position_offset=position_offset(values))
    assign_bert_layers(encoder, src)
    return {"pooler": assign_pooler(encoder, src),
            "mlm_head": assign_mlm_head(head, src, "lm_head.dense", "lm_head.layer_norm", "lm_head.bias")}


FAMILY = register_family(EncoderFamily(
    name="roberta",
    model_types=("roberta", "xlm-roberta"),
    description="RoBERTa / XLM-R (positions from padding_idx+1, one token type; WordPiece vocab.txt or "
                "XLM-R SentencePiece; byte-level BPE refused)",
    read_config=_read_config,
    assign_weights=_assign,
    prefixes=("roberta.",),
    tokenizers=(WORDPIECE, SENTENCEPIECE),
    examples=("hf:klue/roberta-base", "hf:jhgan/ko-sroberta-multitask", "hf:xlm-roberta-base"),
))
