"""ELECTRA discriminators (`model_type` electra): BERT layers after a narrower embedding and a projection."""

from __future__ import annotations

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead
from tfhub_transfer.encoders.build.families.bert import assign_bert_layers, read_bert_style_config
from tfhub_transfer.encoders.build.families.registry import EncoderFamily, register_family
from tfhub_transfer.encoders.build.families.weights import WeightSource, assign_bert_embeddings, dense
from tfhub_transfer.encoders.build.tokenizer_files import WORDPIECE


def _assign(encoder: BertEncoder, head: MaskedLMHead, src: WeightSource, values: dict) -> dict[str, bool]:
    assign_bert_embeddings(encoder, src)
    if encoder.embedding_projection is not None:
        encoder.embedding_projection.set_weights(dense(src, "embeddings_project"))
    assign_bert_layers(encoder, src)
    # A discriminator has no pooler and no MLM head (its head tells replaced tokens apart): both start fresh.
    return {"pooler": False, "mlm_head": False}


FAMILY = register_family(EncoderFamily(
    name="electra",
    model_types=("electra",),
    description="ELECTRA discriminator (embedding projection when embedding_size != hidden_size; WordPiece)",
    read_config=lambda values, path: read_bert_style_config(values, path),
    assign_weights=_assign,
    prefixes=("electra.",),
    tokenizers=(WORDPIECE,),
    examples=("hf:monologg/koelectra-base-v3-discriminator", "hf:google/electra-base-discriminator"),
    notes="no pooler in the checkpoint: pooled_output defaults to the [CLS] vector (first)",
))
