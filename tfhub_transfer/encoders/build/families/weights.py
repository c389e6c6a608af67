"""Copying checkpoint tensors into the package's layers: shared by the family modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfhub_transfer.errors import EncoderError


class WeightSource:
    """Hands out checkpoint tensors by name (prefixes such as `bert.` stripped) and remembers which were used."""

    def __init__(self, weights: dict[str, np.ndarray], source: Path, prefixes: tuple[str, ...] = ()):
        self.weights = {strip_prefix(name, prefixes): value for name, value in weights.items()}
        self.source = source
        self.used: set[str] = set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise EncoderError(f"{self.source}: tensor {name!r} is missing from the checkpoint")
        self.used.add(name)
        return self.weights[name]

    def has(self, name: str) -> bool:
        return name in self.weights


def strip_prefix(name: str, prefixes: tuple[str, ...]) -> str:
    """Drops the model prefix (`bert.`, `roberta.`, ...) of *ForMaskedLM / *ForPreTraining checkpoints."""
    for prefix in prefixes:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def dense(src: WeightSource, prefix: str) -> list[np.ndarray]:
    """A PyTorch Linear's [out, in] weight and bias as a Keras Dense's [in, out] kernel and bias."""
    return [src.get(f"{prefix}.weight").T, src.get(f"{prefix}.bias")]


def layer_norm(src: WeightSource, prefix: str) -> list[np.ndarray]:
    return [src.get(f"{prefix}.weight"), src.get(f"{prefix}.bias")]


def as_type_table(rows: np.ndarray | None, width: int, type_vocab_size: int) -> np.ndarray:
    """The token-type table the encoder needs (`type_vocab_size` rows).

    RoBERTa and XLM-R have one row and DistilBERT none, and their tokenizers give every token type 0; the
    package's preprocessors give the second segment type 1, so the one row is repeated (or zeros used),
    which computes what the checkpoint computes for either type."""
    if rows is None:
        return np.zeros([type_vocab_size, width], np.float32)
    if rows.shape[0] >= type_vocab_size:
        return rows
    return np.repeat(rows[:1], type_vocab_size, axis=0)


def assign_attention(attention, qkv: list[list[np.ndarray]], output: list[np.ndarray], heads: int) -> None:
    """Sets a Keras MultiHeadAttention from [kernel, bias] pairs of query, key, value and output."""
    hidden = output[0].shape[1]
    size = hidden // heads
    for name, (kernel, bias) in zip(("query", "key", "value"), qkv):
        getattr(attention, f"_{name}_dense").set_weights(
            [kernel.reshape(hidden, heads, size), bias.reshape(heads, size)])
    attention._output_dense.set_weights([output[0].reshape(heads, size, hidden), output[1]])


def assign_bert_block(block, src: WeightSource, prefix: str, heads: int) -> None:
    """A BERT-named transformer layer (`encoder.layer.<i>.attention.self.query` ...): BERT, ELECTRA, RoBERTa."""
    qkv = [dense(src, f"{prefix}.attention.self.{name}") for name in ("query", "key", "value")]
    assign_attention(block.self_attention, qkv, dense(src, f"{prefix}.attention.output.dense"), heads)
    block.attention_layer_norm.set_weights(layer_norm(src, f"{prefix}.attention.output.LayerNorm"))
    block.intermediate.set_weights(dense(src, f"{prefix}.intermediate.dense"))
    block.output_dense.set_weights(dense(src, f"{prefix}.output.dense"))
    block.output_layer_norm.set_weights(layer_norm(src, f"{prefix}.output.LayerNorm"))


def assign_bert_embeddings(encoder, src: WeightSource, position_offset: int = 0) -> None:
    """`embeddings.{word,position,token_type}_embeddings` + `embeddings.LayerNorm`.

    `position_offset`: RoBERTa numbers positions from padding_idx + 1, so its first rows are never used by a
    real token; dropping them lets the encoder number positions from 0 like BERT (packed rows included)."""
    config = encoder.config
    encoder.word_embeddings.set_weights([src.get("embeddings.word_embeddings.weight")])
    positions = src.get("embeddings.position_embeddings.weight")[position_offset:]
    encoder.position_embedding.set_weights([positions[: config.max_position_embeddings]])
    types = src.get("embeddings.token_type_embeddings.weight") if src.has(
        "embeddings.token_type_embeddings.weight") else None
    encoder.type_embeddings.set_weights([as_type_table(types, config.embedding_width, config.type_vocab_size)])
    encoder.embedding_layer_norm.set_weights(layer_norm(src, "embeddings.LayerNorm"))


def assign_pooler(encoder, src: WeightSource, prefix: str = "pooler.dense") -> bool:
    """Copies the [CLS] pooler when the checkpoint has one; returns whether it did."""
    if not src.has(f"{prefix}.weight"):
        return False
    encoder.pooler.set_weights(dense(src, prefix))
    return True


def assign_mlm_head(head, src: WeightSource, transform: str, norm: str, bias: str) -> bool:
    """Copies an MLM head (dense + GELU + layer norm, output bias; output tied to the word embeddings) when
    the checkpoint has one; returns whether it did."""
    if not src.has(f"{transform}.weight"):
        return False
    head.transform.set_weights(dense(src, transform))
    head.layer_norm.set_weights(layer_norm(src, norm))
    head.output_bias.assign(src.get(bias))
    return True
