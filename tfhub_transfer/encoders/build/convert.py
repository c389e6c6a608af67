"""Converts a Hugging Face checkpoint directory into the TF Hub BERT format, for every registered family.

The directory needs `config.json` (its `model_type` picks the family module, see `families`),
`model.safetensors` (or `pytorch_model.bin`, read without PyTorch) and the tokenizer's files (`vocab.txt`,
or XLM-R's `sentencepiece.bpe.model`; `tokenizer_config.json` is read for the tokenizer class and
`do_lower_case`). A checkpoint without an MLM
head (e.g. sentence-transformers models, ELECTRA discriminators) gets a freshly initialised one: dense
transform + layer norm + zero bias, output tied to the word embeddings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tfhub_transfer.encoders.build.bert import BertEncoder, MaskedLMHead, build_bert
from tfhub_transfer.encoders.build.config import POOLED_OUTPUTS
from tfhub_transfer.encoders.build.families import EncoderFamily, family_for, supported_summary
from tfhub_transfer.encoders.build.families.weights import WeightSource
from tfhub_transfer.encoders.build.hub_writer import write_encoder_pair
from tfhub_transfer.encoders.build.safetensors_reader import read_safetensors
from tfhub_transfer.encoders.build.tokenizer_files import (
    WORDPIECE,
    TokenizerFiles,
    detect_tokenizer,
    unsupported_tokenizer_message,
)
from tfhub_transfer.encoders.build.torch_reader import read_torch_state_dict
from tfhub_transfer.errors import EncoderError

REQUIRED_FILES = ("config.json", "model.safetensors")
WEIGHTS_BIN = "pytorch_model.bin"  # older checkpoints' weights, read when there is no model.safetensors
# The package's pooling (layers.pooling) that gives a classifier the encoder's `pooled_output`.
_RECOMMENDED_POOLING = {"pooler": "cls", "mean": "mean", "max": "max", "first": "first"}
_TO_SAFETENSORS = ("python -c \"import torch, safetensors.torch as s; s.save_file({k: v.contiguous() for k, v in "
                   "torch.load('pytorch_model.bin', map_location='cpu').items()}, 'model.safetensors')\"")


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


def _pooled_output_mode(checkpoint_dir: Path, requested: str, has_pooler: bool) -> tuple[str, str]:
    """(what `pooled_output` is, why)."""
    if requested != "auto":
        if requested not in POOLED_OUTPUTS:
            raise EncoderError(f"pooled_output must be 'auto' or one of {POOLED_OUTPUTS}, not {requested!r}")
        return requested, "chosen at conversion (--pooled-output)"
    pooling = sentence_transformers_pooling(checkpoint_dir)
    if pooling:
        return pooling, "the checkpoint's sentence-transformers pooling"
    if not has_pooler:
        # A freshly initialised pooler would make pooled_output random: the [CLS] vector is what it has.
        return "first", "the checkpoint has no [CLS] pooler, so its [CLS] vector"
    return "pooler", "a checkpoint with a [CLS] pooler (no sentence-transformers pooling)"


def _check_files(checkpoint_dir: Path) -> None:
    if not checkpoint_dir.is_dir():
        raise EncoderError(f"{checkpoint_dir} is not a directory: pass a Hugging Face checkpoint directory "
                           "(config.json, model.safetensors, tokenizer files) or an hf:ORG/NAME handle")
    missing = [f for f in REQUIRED_FILES if not (checkpoint_dir / f).exists()]
    if missing == ["model.safetensors"] and (checkpoint_dir / WEIGHTS_BIN).exists():
        return  # read by torch_reader
    if missing:
        raise EncoderError(
            f"{checkpoint_dir} is not a Hugging Face checkpoint directory: missing {missing} "
            f"(needs {list(REQUIRED_FILES)} (or {WEIGHTS_BIN}) and the tokenizer's vocab.txt or "
            "sentencepiece.bpe.model)"
        )


def read_weights(checkpoint_dir: Path) -> dict:
    """model.safetensors, else pytorch_model.bin (read without PyTorch; the one-line conversion is offered
    for a file that reader refuses)."""
    if (checkpoint_dir / "model.safetensors").exists():
        return read_safetensors(checkpoint_dir / "model.safetensors")
    try:
        return read_torch_state_dict(checkpoint_dir / WEIGHTS_BIN)
    except EncoderError as err:
        raise EncoderError(f"{err}. In {checkpoint_dir}, with PyTorch and safetensors installed: "
                           f"{_TO_SAFETENSORS}") from None


def read_family(checkpoint_dir: str | Path) -> tuple[EncoderFamily, dict]:
    """The family of a checkpoint (config.json's `model_type`) and its config.json values.

    Args:
      checkpoint_dir: a Hugging Face checkpoint directory.

    Returns:
      (the registered EncoderFamily, config.json as a dict).

    Example:
      >>> read_family("koelectra")[0].name  # doctest: +SKIP
      'electra'
    """
    config_file = Path(checkpoint_dir) / "config.json"
    try:
        values = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise EncoderError(f"{config_file}: cannot read it as JSON ({err})") from None
    return family_for(values.get("model_type"), checkpoint_dir), values


def read_tokenizer(checkpoint_dir: str | Path, family: EncoderFamily) -> TokenizerFiles:
    """The checkpoint's tokenizer, refused with one clear message when `family` cannot use it.

    Args:
      checkpoint_dir: a Hugging Face checkpoint directory.
      family: the checkpoint's family (read_family).

    Returns:
      Its TokenizerFiles.

    Example:
      >>> read_tokenizer("klue-roberta-base", family).kind  # doctest: +SKIP
      'wordpiece'
    """
    tokenizer = detect_tokenizer(checkpoint_dir, supported_summary())
    if tokenizer.kind not in family.tokenizers:
        raise EncoderError(unsupported_tokenizer_message(
            Path(checkpoint_dir), f"{tokenizer.kind} with a {family.name} body", supported_summary()))
    return tokenizer


def load_hf_checkpoint(
    checkpoint_dir: str | Path, pooled_output: str = "auto"
) -> tuple[BertEncoder, MaskedLMHead, dict]:
    """Builds a BertEncoder + MLM head holding a Hugging Face checkpoint's weights.

    `pooled_output`: "auto" makes it the sentence embedding of a sentence-transformers checkpoint
    (the pooling its `1_Pooling/config.json` names), the [CLS] pooler of a checkpoint that has one, and
    the [CLS] vector otherwise (ELECTRA, DistilBERT, most RoBERTa MLM checkpoints)."""
    checkpoint_dir = Path(checkpoint_dir)
    _check_files(checkpoint_dir)
    family, values = read_family(checkpoint_dir)
    config = family.read_config(values, checkpoint_dir / "config.json")
    src = WeightSource(read_weights(checkpoint_dir), checkpoint_dir, family.prefixes)
    encoder, head = build_bert(config)
    found = family.assign_weights(encoder, head, src, values)
    mode, reason = _pooled_output_mode(checkpoint_dir, pooled_output, found["pooler"])
    if mode != config.pooled_output:
        encoder.config = dataclasses.replace(config, pooled_output=mode)
    info = {
        "family": family.name,
        "model_type": values.get("model_type", "bert"),
        "mlm_head": "from checkpoint" if found["mlm_head"] else "freshly initialised (checkpoint has none)",
        "pooler": "from checkpoint" if found["pooler"] else "freshly initialised (checkpoint has none)",
        "pooled_output_from": reason,
    }
    return encoder, head, info


def convert_hf_checkpoint(
    checkpoint_dir: str | Path, out_dir: str | Path, metadata: dict | None = None, overwrite: bool = False,
    pooled_output: str = "auto",
) -> Path:
    """Converts `checkpoint_dir` into `out_dir/{encoder,preprocessor}` in TF Hub format.

    Args:
      checkpoint_dir: a Hugging Face checkpoint directory of a registered family (`encoders list`).
      out_dir: written atomically; an existing one only with `overwrite` and only if this package wrote it.
      metadata: extra entries for the pair's tfhub_transfer.json (e.g. {"pooling": "mean"}).
      overwrite: replace an encoder pair this package wrote at `out_dir`.
      pooled_output: "auto", "pooler", "mean", "max" or "first" (see `load_hf_checkpoint`).

    Returns:
      `out_dir`.

    Example:
      >>> convert_hf_checkpoint("koelectra-small", "encoders/koelectra")  # doctest: +SKIP
    """
    checkpoint_dir = Path(checkpoint_dir)
    _check_files(checkpoint_dir)
    tokenizer = read_tokenizer(checkpoint_dir, read_family(checkpoint_dir)[0])
    encoder, head, info = load_hf_checkpoint(checkpoint_dir, pooled_output)
    meta = {"source": str(checkpoint_dir), **info, "tokenizer": tokenizer.kind, **(metadata or {})}
    if meta.get("pooling") is None:
        meta["pooling"] = _RECOMMENDED_POOLING[encoder.config.pooled_output]
    vocab = tokenizer.path if tokenizer.kind == WORDPIECE else None
    return write_encoder_pair(encoder, head, vocab, tokenizer.lower_case, out_dir, meta, overwrite,
                              tokenizer=tokenizer)
