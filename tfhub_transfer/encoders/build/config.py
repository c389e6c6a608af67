"""The BERT architecture as a small dataclass, readable from a Hugging Face config.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

POOLED_OUTPUTS = ("pooler", "mean", "max", "first")
COMPUTE_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Hyperparameters of a post-layer-norm BERT encoder (Devlin et al., 2019)."""

    vocab_size: int
    hidden_size: int = 768
    # The width of the word/position/type embeddings when it differs from `hidden_size` (ELECTRA): a
    # dense `embedding_projection` maps them to `hidden_size` after the embedding layer norm. None: equal.
    embedding_size: int | None = None
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_epsilon: float = 1e-12
    initializer_range: float = 0.02
    # What `pooled_output` is: "pooler" (BERT's tanh dense over [CLS]), or the pooling a
    # sentence-transformers checkpoint was trained with: "mean" / "max" over the input mask,
    # "first" (the raw [CLS] vector). The pooler's output is always `cls_pooled_output` too.
    pooled_output: str = "pooler"
    # Packed rows (several examples in one row, see preprocessing.packing): `input_mask` holds each token's
    # segment (1, 2, ... in order; 0 padding), tokens attend only within their segment and positions
    # restart at each segment's start. With a 0/1 mask it computes exactly what an ordinary encoder does.
    packed_segments: bool = False
    # The dtype of the attention sublayer (projections, scores, softmax, its dropout) and of the
    # feed-forward matmuls with their fused GELU. Variables, embeddings, layer norms, residual sums,
    # hidden dropout and the outputs stay float32: on a bf16 CPU, TensorFlow's bfloat16 layer norm is
    # slower than float32's while its bfloat16 matmuls are faster (benchmarks/train_step_flops.py).
    compute_dtype: str = "float32"
    # MPNet: a learned per-head bias on the attention scores by relative position (this many T5-style buckets,
    # log-spaced up to `relative_max_distance`), shared by every layer. 0: none (BERT and the others).
    relative_attention_buckets: int = 0
    relative_max_distance: int = 128

    def __post_init__(self) -> None:
        if self.compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {COMPUTE_DTYPES}, not {self.compute_dtype!r}")
        if self.pooled_output not in POOLED_OUTPUTS:
            raise ValueError(f"pooled_output must be one of {POOLED_OUTPUTS}, not {self.pooled_output!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def embedding_width(self) -> int:
        """The width of the embedding tables (and of the MLM head, whose output is tied to them)."""
        return self.embedding_size or self.hidden_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> BertConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_hf_config(cls, path: str | Path) -> BertConfig:
        """Reads a Hugging Face BERT `config.json`."""
        values = json.loads(Path(path).read_text(encoding="utf-8"))
        act = values.get("hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"{path}: hidden_act {act!r} is not supported (only exact 'gelu').")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{path}: only absolute position embeddings are supported.")
        return cls(
            vocab_size=values["vocab_size"],
            hidden_size=values["hidden_size"],
            num_layers=values["num_hidden_layers"],
            num_heads=values["num_attention_heads"],
            intermediate_size=values["intermediate_size"],
            max_position_embeddings=values.get("max_position_embeddings", 512),
            type_vocab_size=values.get("type_vocab_size", 2),
            hidden_dropout=values.get("hidden_dropout_prob", 0.1),
            attention_dropout=values.get("attention_probs_dropout_prob", 0.1),
            layer_norm_epsilon=values.get("layer_norm_eps", 1e-12),
            initializer_range=values.get("initializer_range", 0.02),
        )
