"""BERT (`model_type` bert): BERT, MiniLM / sentence-transformers BERTs, KLUE-BERT, multilingual-e5-small."""

from __future__ import annotations

from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.families.registry import EncoderFamily, register_family
from tfhub_transfer.encoders.build.families.weights import (
    WeightSource,
    assign_bert_block,
    assign_bert_embeddings,
    assign_mlm_head,
    assign_pooler,
)
from tfhub_transfer.encoders.build.tokenizer_files import SENTENCEPIECE, WORDPIECE
from tfhub_transfer.errors import EncoderError


def check_bert_options(values: dict, path: Path) -> None:
    """Refuses the options of BERT-style configs the package's encoder does not compute."""
    act = values.get("hidden_act", "gelu")
    if act != "gelu":
        raise EncoderError(f"{path}: hidden_act {act!r} is not supported (only exact 'gelu').")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise EncoderError(f"{path}: position_embedding_type {values['position_embedding_type']!r} is not "
                           "supported (only 'absolute').")


def read_bert_style_config(values: dict, path: Path, position_offset: int = 0,
                           min_type_vocab_size: int = 2) -> BertConfig:
    """A BertConfig from BERT-named config.json keys (BERT, ELECTRA, RoBERTa, XLM-R).

    `position_offset` rows of the position table are dropped (RoBERTa); the type table gets at least
    `min_type_vocab_size` rows (the preprocessors give a second segment type 1)."""
    check_bert_options(values, path)
    hidden = values["hidden_size"]
    embedding = values.get("embedding_size", hidden)
    return BertConfig(
        vocab_size=values["vocab_size"],
        hidden_size=hidden,
        embedding_size=None if embedding == hidden else embedding,
        num_layers=values["num_hidden_layers"],
        num_heads=values["num_attention_heads"],
        intermediate_size=values["intermediate_size"],
        max_position_embeddings=values.get("max_position_embeddings", 512) - position_offset,
        type_vocab_size=max(values.get("type_vocab_size", 2), min_type_vocab_size),
        hidden_dropout=values.get("hidden_dropout_prob", 0.1),
        attention_dropout=values.get("attention_probs_dropout_prob", 0.1),
        layer_norm_epsilon=values.get("layer_norm_eps", 1e-12),
        initializer_range=values.get("initializer_range", 0.02),
    )


def assign_bert_layers(encoder: BertEncoder, src: WeightSource) -> None:
    for i, block in enumerate(encoder.blocks):
        assign_bert_block(block, src, f"encoder.layer.{i}", encoder.config.num_heads)


def _assign(encoder: BertEncoder, head: MaskedLMHead, src: WeightSource, values: dict) -> dict[str, bool]:
    assign_bert_embeddings(encoder, src)
    assign_bert_layers(encoder, src)
    return {"pooler": assign_pooler(encoder, src),
            "mlm_head": assign_mlm_head(head, src, "cls.predictions.transform.dense",
                                        "cls.predictions.transform.LayerNorm", "cls.predictions.bias")}


FAMILY = register_family(EncoderFamily(
    name="bert",
    model_types=("bert",),
    description="BERT (WordPiece, or XLM-R SentencePiece as in multilingual-e5-small)",
    read_config=lambda values, path: read_bert_style_config(values, path),
    assign_weights=_assign,
    prefixes=("bert.",),
    tokenizers=(WORDPIECE, SENTENCEPIECE),
    examples=("hf:klue/bert-base", "hf:intfloat/multilingual-e5-small",
              "hf:sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"),
))
