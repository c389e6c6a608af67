"""Continued masked-LM pretraining of an encoder on unlabelled in-domain text.

`pretrain` reads raw text lines (or the text column of a labelled file), tokenises them
with the encoder's own preprocessor, packs consecutive lines into sequences of up to
`seq_length` tokens (few pads), masks them dynamically every epoch (tensorflow-text),
fits the `MaskedLM` task model through the one training loop, reports held-out
masked-token accuracy and perplexity before and after, and writes the result as a new
encoder + preprocessor pair in the same TF Hub format (a versioned directory that every
builder loads by path).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer import storage
from tfhub_transfer.config import (
    ENCODER_LEARNING_RATE,
    PRETRAIN_EPOCHS,
    PRETRAIN_HOLDOUT_FRACTION,
    OptimizationConfig,
    RuntimeConfig,
)
from tfhub_transfer.data.corpus import read_corpus_lines
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import check_writable
from tfhub_transfer.jobs.options import check_value
from tfhub_transfer.models.masked_lm import MaskedLM, MaskedLMConfig, evaluate_mlm
from tfhub_transfer.preprocessing.masking import PackedSequences, fixed_heldout, pack_words
from tfhub_transfer.training.distribution import global_batch_size, is_chief, make_distribution
from tfhub_transfer.training.loop import fit_task


@dataclasses.dataclass
class PretrainConfig:
    """Everything `pretrain` needs; `tfhub-transfer pretrain` flags map onto these fields.

    The optimisation and runtime options are the same dataclasses `train` uses, with
    pretraining's own defaults (one epoch at the encoder's learning rate).

    Args:
      corpus: text files (one passage per line, or a column of a table with `text_column`).
      out: where the continued encoder pair is written (a versioned SavedModel pair, usable as `--encoder`).
      model: the encoder, preprocessor, sequence length and whole-word masking (`MaskedLMConfig`).
      optimization: epochs, batch, learning rate, schedule (`OptimizationConfig`).
      runtime: devices, seed, verbosity (`RuntimeConfig`).
      text_column: read this column of a CSV/TSV/JSONL corpus instead of whole lines.
      holdout_fraction: the share of sequences held out to measure the MLM loss before and after.
      max_lines: read at most this many lines of the corpus (None: all).

    Example:
      >>> from tfhub_transfer import PretrainConfig
      >>> config = PretrainConfig.of(["corpus.txt"], "encoders/mine", epochs=2, seq_length=64)
      >>> config.optimization.epochs, config.model.seq_length, config.model.encoder
      (2, 64, 'default')
    """

    corpus: Sequence[str | Path]
    out: str | Path
    model: MaskedLMConfig = dataclasses.field(default_factory=MaskedLMConfig)
    optimization: OptimizationConfig = dataclasses.field(
        default_factory=lambda: OptimizationConfig(epochs=PRETRAIN_EPOCHS, learning_rate=ENCODER_LEARNING_RATE))
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    text_column: str | None = None  # for .csv/.tsv/.jsonl corpora: the column to read
    holdout_fraction: float = PRETRAIN_HOLDOUT_FRACTION
    max_lines: int | None = None

    @classmethod
    def of(cls, corpus, out, **fields) -> PretrainConfig:
        """From flat names: encoder, preprocessor, seq_length, whole_word_masking, epochs, batch_size,
        learning_rate, ..., seed, verbose, distribution, plus this class's own fields."""
        parts = {"model": MaskedLMConfig(), "optimization": cls.__dataclass_fields__["optimization"].default_factory(),
                 "runtime": RuntimeConfig()}
        own = {k: fields.pop(k) for k in list(fields) if k in ("text_column", "holdout_fraction", "max_lines")}
        for name, part in parts.items():
            names = {f.name for f in dataclasses.fields(part)}
            parts[name] = dataclasses.replace(part, **{k: fields.pop(k) for k in list(fields) if k in names})
        if fields:
            raise TypeError(f"unknown pretraining options {sorted(fields)}")
        return cls(corpus, out, **parts, **own)


@dataclasses.dataclass
class PretrainResult:
    before: dict
    after: dict
    path: Path
    history: dict


def split_heldout(sequences: PackedSequences, fraction: float,
                  seed: int) -> tuple[PackedSequences, PackedSequences]:
    order = np.random.default_rng(seed).permutation(len(sequences))
    n_held = max(1, int(len(sequences) * fraction))
    held = sequences.take(order[:n_held])
    return (sequences.take(order[n_held:]) if len(sequences) > n_held else held), held


def pretrain(config: PretrainConfig, strategy: tf.distribute.Strategy | None = None) -> PretrainResult:
    """Continues MLM pretraining of `config.model.encoder` on `config.corpus`; see the module docstring.

    Runs under `strategy`, else the one `config.runtime.distribution` names (created first).

    Args:
      config: the corpus, the encoder and the budget (`PretrainConfig`).
      strategy: a `tf.distribute` strategy to train under (None: from `config.runtime.distribution`).

    Returns:
      `PretrainResult`: the held-out MLM loss and accuracy `before` and `after`, the written encoder's
      `path` (give it to `train --encoder`), and the training history.

    Example:
      >>> from pathlib import Path
      >>> from tfhub_transfer import PretrainConfig, pretrain
      >>> lines = [f"review {i}: the acting was fine and the plot was thin" for i in range(64)]
      >>> _ = Path("corpus.txt").write_text("".join(line + chr(10) for line in lines))
      >>> result = pretrain(PretrainConfig.of(["corpus.txt"], "encoders/reviews", seq_length=32, batch_size=16,
      ...                                     verbose=0))
      >>> result.after["loss"] < result.before["loss"]
      True
    """
    runtime = config.runtime
    for name in ("epochs", "batch_size", "learning_rate", "warmup_fraction", "weight_decay"):
        check_value(name, getattr(config.optimization, name))
    check_value("seq_length", config.model.seq_length)
    if not 0 < config.holdout_fraction < 1:
        raise ConfigError(f"--holdout-fraction {config.holdout_fraction}: must be between 0 and 1")
    check_writable(config.out)
    strategy = make_distribution(strategy or runtime.distribution)
    batch = global_batch_size(config.optimization.batch_size, strategy)
    tf_keras.utils.set_random_seed(runtime.seed)
    with strategy.scope():
        model = MaskedLM(config.model)
    lines = read_corpus_lines(config.corpus, config.text_column, config.max_lines)
    sequences = pack_words(lines, model.preprocessor, config.model.seq_length - 2)
    train_seqs, held = split_heldout(sequences, config.holdout_fraction, runtime.seed)
    heldout = fixed_heldout(held, model.preprocessor.special_ids, model.masking, batch, runtime.seed)
    before = evaluate_mlm(model, heldout)
    if runtime.verbose:
        print(f"{len(lines)} lines -> {len(sequences)} packed sequences of <= {config.model.seq_length} tokens "
              f"({len(held)} held out). Before: {before}", flush=True)
    outcome = fit_task(model, train_seqs, None, config.optimization, runtime, None, job="pretrain")
    after = evaluate_mlm(model, heldout)
    if runtime.verbose:
        print(f"After: {after}", flush=True)
    record = {"continued_pretraining": {
        "from": model.spec.encoder, "corpus": [str(p) for p in config.corpus], "lines": len(lines),
        "sequences": len(sequences), "epochs": config.optimization.epochs,
        "whole_word_masking": config.model.whole_word_masking, "heldout_before": before, "heldout_after": after}}
    if is_chief(strategy):
        path = model.write_encoder(config.out, record)
    else:  # other workers take part in the save (collectives) into a scratch dir
        with tempfile.TemporaryDirectory() as scratch:
            model.write_encoder(scratch, record)
        path = storage.location(config.out)  # a URL stays a URL
    return PretrainResult(before, after, path, outcome.history)
