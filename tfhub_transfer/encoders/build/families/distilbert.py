"""DistilBERT (`model_type` distilbert): BERT's layer structure under its own names, no token types."""

from __future__ import annotations

from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.families.registry import EncoderFamily, register_family
from tfhub_transfer.encoders.build.families.weights import (
    WeightSource,
    as_type_table,
    assign_attention,
    assign_mlm_head,
    dense,
    layer_norm,
)
from tfhub_transfer.encoders.build.tokenizer_files import WORDPIECE
from tfhub_transfer.errors import EncoderError


def _read_config(values: dict, path: Path) -> BertConfig:
    if values.get("activation", "gelu") != "gelu":
        raise EncoderError(f"{path}: activation {values['activation']!r} is not supported (only exact 'gelu').")
    if values.get("sinusoidal_pos_embds"):
        raise EncoderError(f"{path}: sinusoidal_pos_embds is not supported (only learned positions).")
    return BertConfig(
        vocab_size=values["vocab_size"],
        hidden_size=values["dim"],
        num_layers=values["n_layers"],
        num_heads=values["n_heads"],
        intermediate_size=values["hidden_dim"],
        max_position_embeddings=values.get("max_position_embeddings", 512),
        hidden_dropout=values.get("dropout", 0.1),
        attention_dropout=values.get("attention_dropout", 0.1),
        layer_norm_epsilon=1e-12,  # fixed in DistilBERT's code, not in its config
        initializer_range=values.get("initializer_range", 0.02),
    )


def _assign_block(block, src: WeightSource, prefix: str, heads: int) -> None:
    qkv = [dense(src, f"{prefix}.attention.{name}_lin") for name in ("q", "k", "v")]
    assign_attention(block.self_attention, qkv, dense(src, f"{prefix}.attention.out_lin"), heads)
    block.attention_layer_norm.set_weights(layer_norm(src, f"{prefix}.sa_layer_norm"))
    block.intermediate.set_weights(dense(src, f"{prefix}.ffn.lin1"))
    block.output_dense.set_weights(dense(src, f"{prefix}.ffn.lin2"))
    block.output_layer_norm.set_weights(layer_norm(src, f"{prefix}.output_layer_norm"))


def _assign(encoder: BertEncoder, head: MaskedLMHead, src: WeightSource, values: dict) -> dict[str, bool]:
    config = encoder.config
    encoder.word_embeddings.set_weights([src.get("embeddings.word_embeddings.weight")])
    encoder.position_embedding.set_weights([src.get("embeddings.position_embeddings.weight")])
    # No token types: a zero table adds nothing, whatever type ids the preprocessor gives.
    encoder.type_embeddings.set_weights([as_type_table(None, config.embedding_width, config.type_vocab_size)])
    encoder.embedding_layer_norm.set_weights(layer_norm(src, "embeddings.LayerNorm"))
    for i, block in enumerate(encoder.blocks):
        _assign_block(block, src, f"transformer.layer.{i}", config.num_heads)
    return {"pooler": False,
            "mlm_head": assign_mlm_head(head, src, "vocab_transform", "vocab_layer_norm", "vocab_projector.bias")}


FAMILY = register_family(EncoderFamily(
    name="distilbert",
    model_types=("distilbert",),
    description="DistilBERT (its own tensor names, no token types; WordPiece)",
    read_config=_read_config,
    assign_weights=_assign,
    prefixes=("distilbert.",),
    tokenizers=(WORDPIECE,),
    examples=("hf:distilbert-base-uncased", "hf:distilbert-base-multilingual-cased"),
    notes="no pooler: pooled_output defaults to the [CLS] vector (first); token types add a zero table",
))
