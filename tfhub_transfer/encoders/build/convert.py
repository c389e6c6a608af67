"""Converts a Hugging Face BERT checkpoint directory into the TF Hub BERT format.

The directory needs `config.json`, `model.safetensors` and `vocab.txt`
(`tokenizer_config.json` is read for `do_lower_case` when present). A checkpoint
without an MLM head (e.g. sentence-transformers models) gets a freshly
initialised one: dense transform + layer norm + zero bias, output tied to the
word embeddings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead, build_bert
from tfhub_transfer.encoders.build.config import POOLED_OUTPUTS, BertConfig
from tfhub_transfer.encoders.build.hub_writer import write_encoder_pair
from tfhub_transfer.encoders.build.safetensors_reader import read_safetensors
from tfhub_transfer.errors import EncoderError

REQUIRED_FILES = ("config.json", "model.safetensors", "vocab.txt")
# The package's pooling (layers.pooling) that gives a classifier the encoder's `pooled_output`.
_RECOMMENDED_POOLING = {"pooler": "cls", "mean": "mean", "max": "max", "first": "first"}


def _strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the `bert.` prefix of *ForMaskedLM / *ForPreTraining checkpoints."""
    out = {}
    for name, value in weights.items():
        out[name[len("bert."):] if name.startswith("bert.") else name] = value
    return out


class _WeightSource:
    """Hands out checkpoint tensors by name and remembers which were used."""

    def __init__(self, weights: dict[str, np.ndarray], source: Path):
        self.weights = weights
        self.source = source
        self.used: set[str] = set()

    def get(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise EncoderError(f"{self.source}: tensor {name!r} is missing from the checkpoint")
        self.used.add(name)
        return self.weights[name]

    def has(self, name: str) -> bool:
        return name in self.weights


def _dense(src: _WeightSource, prefix: str) -> list[np.ndarray]:
    return [src.get(f"{prefix}.weight").T, src.get(f"{prefix}.bias")]


def _layer_norm(src: _WeightSource, prefix: str) -> list[np.ndarray]:
    return [src.get(f"{prefix}.weight"), src.get(f"{prefix}.bias")]


def _assign_block(block, src: _WeightSource, prefix: str, config: BertConfig) -> None:
    heads, size, hidden = config.num_heads, config.head_size, config.hidden_size
    attention = block.self_attention
    for name in ("query", "key", "value"):
        kernel, bias = _dense(src, f"{prefix}.attention.self.{name}")
        getattr(attention, f"_{name}_dense").set_weights(
            [kernel.reshape(hidden, heads, size), bias.reshape(heads, size)]
        )
    kernel, bias = _dense(src, f"{prefix}.attention.output.dense")
    attention._output_dense.set_weights([kernel.reshape(heads, size, hidden), bias])
    block.attention_layer_norm.set_weights(_layer_norm(src, f"{prefix}.attention.output.LayerNorm"))
    block.intermediate.set_weights(_dense(src, f"{prefix}.intermediate.dense"))
    block.output_dense.set_weights(_dense(src, f"{prefix}.output.dense"))
    block.output_layer_norm.set_weights(_layer_norm(src, f"{prefix}.output.LayerNorm"))


def _assign_encoder(encoder: BertEncoder, src: _WeightSource) -> None:
    config = encoder.config
    encoder.word_embeddings.set_weights([src.get("embeddings.word_embeddings.weight")])
    encoder.position_embedding.set_weights([src.get("embeddings.position_embeddings.weight")])
    encoder.type_embeddings.set_weights([src.get("embeddings.token_type_embeddings.weight")])
    encoder.embedding_layer_norm.set_weights(_layer_norm(src, "embeddings.LayerNorm"))
    for i, block in enumerate(encoder.blocks):
        _assign_block(block, src, f"encoder.layer.{i}", config)
    if src.has("pooler.dense.weight"):
        encoder.pooler.set_weights(_dense(src, "pooler.dense"))


def _assign_mlm_head(head: MaskedLMHead, src: _WeightSource) -> bool:
    """Copies a checkpoint's MLM head if it has one; returns whether it did."""
    prefix = "cls.predictions"
    if not src.has(f"{prefix}.transform.dense.weight"):
        return False
    head.transform.set_weights(_dense(src, f"{prefix}.transform.dense"))
    head.layer_norm.set_weights(_layer_norm(src, f"{prefix}.transform.LayerNorm"))
    head.output_bias.assign(src.get(f"{prefix}.bias"))
    return True


def _read_lower_case(checkpoint_dir: Path, default: bool = True) -> bool:
    tokenizer_config = checkpoint_dir / "tokenizer_config.json"
    if tokenizer_config.exists():
        values = json.loads(tokenizer_config.read_text(encoding="utf-8"))
        return bool(values.get("do_lower_case", default))
    return default


_ST_POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
                     "pooling_mode_cls_token": "first"}


def sentence_transformers_pooling(checkpoint_dir: str | Path) -> str | None:
    """The pooling a sentence-transformers checkpoint was trained with ("mean", "max", "first"), read
    from its Pooling module's config (`modules.json` names the folder, usually `1_Pooling`); None for a
    plain BERT checkpoint."""
    checkpoint_dir = Path(checkpoint_dir)
    folders = ["1_Pooling"]
    modules_file = checkpoint_dir / "modules.json"
    if modules_file.exists():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        folders = [m["path"] for m in modules if m.get("type", "").endswith("models.Pooling")] + folders
    config_file = next((checkpoint_dir / f / "config.json" for f in folders
                        if (checkpoint_dir / f / "config.json").exists()), None)
    if config_file is None:
        return None
    values = json.loads(config_file.read_text(encoding="utf-8"))
    chosen = [mode for key, mode in _ST_POOLING_MODES.items() if values.get(key)]
    if len(chosen) != 1 or any(v for k, v in values.items() if k.startswith("pooling_mode_")
                               and k not in _ST_POOLING_MODES):
        raise EncoderError(f"{config_file}: pooling {sorted(k for k, v in values.items() if v is True)} "
                           "is not supported (one of mean, max or cls tokens is); pass --pooled-output")
    return chosen[0]


def _pooled_output_mode(checkpoint_dir: Path, requested: str) -> tuple[str, str]:
    """(what `pooled_output` is, why)."""
    if requested != "auto":
        if requested not in POOLED_OUTPUTS:
            raise EncoderError(f"pooled_output must be 'auto' or one of {POOLED_OUTPUTS}, not {requested!r}")
        return requested, "chosen at conversion (--pooled-output)"
    pooling = sentence_transformers_pooling(checkpoint_dir)
    if pooling:
        return pooling, "the checkpoint's sentence-transformers pooling"
    return "pooler", "a BERT checkpoint (no sentence-transformers pooling)"


def load_hf_checkpoint(
    checkpoint_dir: str | Path, pooled_output: str = "auto"
) -> tuple[BertEncoder, MaskedLMHead, dict]:
    """Builds a BertEncoder + MLM head holding a Hugging Face checkpoint's weights.

    `pooled_output`: "auto" makes it the sentence embedding of a sentence-transformers checkpoint
    (the pooling its `1_Pooling/config.json` names) and BERT's [CLS] pooler otherwise."""
    checkpoint_dir = Path(checkpoint_dir)
    missing = [f for f in REQUIRED_FILES if not (checkpoint_dir / f).exists()]
    if missing:
        raise EncoderError(
            f"{checkpoint_dir} is not a Hugging Face BERT checkpoint directory: missing {missing} "
            f"(needs {list(REQUIRED_FILES)})"
        )
    mode, reason = _pooled_output_mode(checkpoint_dir, pooled_output)
    config = dataclasses.replace(BertConfig.from_hf_config(checkpoint_dir / "config.json"), pooled_output=mode)
    src = _WeightSource(
        _strip_prefix(read_safetensors(checkpoint_dir / "model.safetensors")), checkpoint_dir
    )
    encoder, head = build_bert(config)
    _assign_encoder(encoder, src)
    had_mlm = _assign_mlm_head(head, src)
    info = {
        "mlm_head": "from checkpoint" if had_mlm else "freshly initialised (checkpoint has none)",
        "pooler": "from checkpoint" if src.has("pooler.dense.weight") else "freshly initialised",
        "pooled_output_from": reason,
    }
    return encoder, head, info


def convert_hf_checkpoint(
    checkpoint_dir: str | Path, out_dir: str | Path, metadata: dict | None = None, overwrite: bool = False,
    pooled_output: str = "auto",
) -> Path:
    """Converts `checkpoint_dir` into `out_dir/{encoder,preprocessor}` in TF Hub format.

    A sentence-transformers checkpoint's `pooled_output` is the embedding it was trained for (see
    `load_hf_checkpoint`), which is also recorded as its default pooling unless `metadata` names one."""
    checkpoint_dir = Path(checkpoint_dir)
    encoder, head, info = load_hf_checkpoint(checkpoint_dir, pooled_output)
    meta = {"source": str(checkpoint_dir), **info, **(metadata or {})}
    if meta.get("pooling") is None:
        meta["pooling"] = _RECOMMENDED_POOLING[encoder.config.pooled_output]
    return write_encoder_pair(
        encoder, head, checkpoint_dir / "vocab.txt", _read_lower_case(checkpoint_dir), out_dir, meta, overwrite
    )
