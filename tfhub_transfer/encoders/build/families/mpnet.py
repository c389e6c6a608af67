"""MPNet (`model_type` mpnet): BERT's post-layer-norm layers under their own names, positions numbered from
padding_idx + 1 (as RoBERTa), no token types, and a relative position bias on the attention scores shared by
every layer. Tokenizer: WordPiece with <s> </s> <pad> <mask> and `<s> A </s></s> B </s>` packing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.families.bert import read_bert_style_config
from tfhub_transfer.encoders.build.families.registry import EncoderFamily, register_family
from tfhub_transfer.encoders.build.families.roberta import position_offset
from tfhub_transfer.encoders.build.families.weights import (
    WeightSource,
    assign_attention,
    assign_bert_embeddings,
    assign_mlm_head,
    assign_pooler,
    dense,
    layer_norm,
)
from tfhub_transfer.encoders.build.tokenizer_files import WORDPIECE

# MPNet's code buckets relative positions into 32 whatever its config says (max distance 128).
_BUCKETS = 32


def _read_config(values: dict, path: Path) -> BertConfig:
    config = read_bert_style_config(values, path, position_offset=position_offset(values))
    return dataclasses.replace(config, relative_attention_buckets=_BUCKETS, relative_max_distance=128)


def _assign_block(block, src: WeightSource, prefix: str, heads: int) -> None:
    qkv = [dense(src, f"{prefix}.attention.attn.{name}") for name in ("q", "k", "v")]
    assign_attention(block.self_attention, qkv, dense(src, f"{prefix}.attention.attn.o"), heads)
    block.attention_layer_norm.set_weights(layer_norm(src, f"{prefix}.attention.LayerNorm"))
    block.intermediate.set_weights(dense(src, f"{prefix}.intermediate.dense"))
    block.output_dense.set_weights(dense(src, f"{prefix}.output.dense"))
    block.output_layer_norm.set_weights(layer_norm(src, f"{prefix}.output.LayerNorm"))


def _assign(encoder: BertEncoder, head: MaskedLMHead, src: WeightSource, values: dict) -> dict[str, bool]:
    assign_bert_embeddings(encoder, src, position_offset=position_offset(values))
    encoder.relative_attention_bias.set_weights([src.get("encoder.relative_attention_bias.weight")[:_BUCKETS]])
    for i, block in enumerate(encoder.blocks):
        _assign_block(block, src, f"encoder.layer.{i}", encoder.config.num_heads)
    return {"pooler": assign_pooler(encoder, src),
            "mlm_head": assign_mlm_head(head, src, "lm_head.dense", "lm_head.layer_norm", "lm_head.bias")}


FAMILY = register_family(EncoderFamily(
    name="mpnet",
    model_types=("mpnet",),
    description="MPNet (relative position bias, positions from padding_idx+1, no token types; WordPiece with "
                "<s> A </s></s> B </s>)",
    read_config=_read_config,
    assign_weights=_assign,
    prefixes=("mpnet.",),
    tokenizers=(WORDPIECE,),
    examples=("hf:sentence-transformers/all-mpnet-base-v2", "hf:microsoft/mpnet-base"),
))
