"""Configuration as small dataclasses, one per concern; every option is declared here once.

`TrainConfig` composes them. `TrainConfig.of(train=..., epochs=2, mode="gradual")` takes the
flat field names (the CLI's flags map one to one onto them) and routes each to its concern;
`config.replace(...)` does the same for a copy, and reading `config.epochs` reaches into the
concern that holds it.

Each field is declared with `option(...)`: its default, and as field metadata (an `Option`) the
CLI flag that sets it, its help text, argparse details, its allowed range (`Range`) and the
architectures it does not apply to, with why. The CLI parser (`train --help`, grouped by the
concern holding each field), the mapping from parsed flags to a `TrainConfig`, the range checks
and every flag named in a message (`flag(field)`) are generated from this metadata.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tfhub_transfer import storage
from tfhub_transfer.errors import ConfigError

HEADS = ("dense", "bilstm")  # the task head: see ModelConfig.head
HEAD_LEARNING_RATE = 1e-3  # what trains when the encoder is frozen: a new head (or RNN, mix)
ENCODER_LEARNING_RATE = 5e-5  # fine-tuning a pretrained transformer
CACHED_HEAD_EPOCHS = 50  # --feature-cache with the default --epochs: the head trains to convergence...
CACHED_HEAD_PATIENCE = 5  # ...stopping after this many epochs without a better validation score...
CACHED_HEAD_LEARNING_RATE = 3e-4  # ...at this head rate unless one is given (more epochs, a better head)
PRETRAIN_EPOCHS = 1  # continued masked-LM pretraining (jobs.pretrain); its other defaults are train's
PRETRAIN_HOLDOUT_FRACTION = 0.05
CONTRASTIVE_LEARNING_RATE = 2e-5  # --mode contrastive: the encoder on pairs (SetFit's body rate)
ARCHITECTURES = ("auto", "encoder", "rnn", "text_embedding")
LAYER_MIX_CHOICES = ("embeddings", "last", "second_to_last", "sum_last4", "concat_last4", "scalar_mix")


def default_learning_rate(encoder_trains: bool) -> float:
    """The peak learning rate when none is given: the encoder's rate when it trains, else the head's."""
    return ENCODER_LEARNING_RATE if encoder_trains else HEAD_LEARNING_RATE


# -- option metadata ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric option takes: from `low` to `high` (None: unbounded), each end closed unless
    marked open, plus any `also` words (`auto`); `what` says it to a user.

    Example:
        >>> Range(0, 1, "in [0, 1)", high_open=True).admits(1)
        False
    """

    low: float | None = None
    high: float | None = None
    what: str = ""
    low_open: bool = False
    high_open: bool = False
    also: tuple[str, ...] = ()

    def admits(self, value) -> bool:
        """Whether `value` is a finite number in the range (or one of the `also` words)."""
        if isinstance(value, str) and value in self.also:
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


@dataclasses.dataclass(frozen=True)
class Option:
    """How one config field appears to a user: its CLI flag and everything generated from it.

    `switch` says how a boolean (or on/off) field is set on the command line:
    - None: a flag that takes a value (`type`, `choices`, `metavar`);
    - `"on"`: the flag alone sets the field True (`--jit-compile`);
    - `"off"`: the flag alone sets the field to `off_value` (`--no-bucket`: False, `--quiet`: verbose 0);
      with a `dest` other than the field, argparse keeps True in that dest (`args.no_bucket`);
    - `"pair"`: `--X` / `--no-X` (`--tensorboard`);
    - `"either"`: `--X` forces True, `--no-X` forces False, neither leaves None (`--resume`), with
      `off_help` for the second flag.
    `type` and `choices` may name a function of `tfhub_transfer.cli.checks` (a check that needs a
    registry above config, e.g. the transfer modes); `help` may hold `{modes}` / `{tasks}`, which the
    CLI fills from the registries. `refused` maps an architecture (`rnn`, `text_embedding`, `encoder`)
    to why the option does not apply there.
    """

    flag: str | None = None  # None: a Python-API-only field (no CLI flag)
    help: str = ""
    dest: str | None = None  # argparse's destination when not the field name (`--lr` -> args.lr)
    type: Callable | str | None = None
    choices: tuple | str | None = None
    metavar: str | None = None
    required: bool = False
    switch: str | None = None
    off_value: Any = False
    off_help: str = ""
    range: Range | None = None
    refused: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def off_flag(self) -> str:
        """The flag that turns a `pair` / `either` switch off: `--no-X`."""
        return "--no-" + str(self.flag).removeprefix("--")

    def message_flag(self, field: str, default) -> str:
        """The flag as a message names it: the one that moves the field off its default."""
        if self.flag is None:
            return field
        if self.switch == "either":
            return f"{self.flag}/{self.off_flag}"
        if self.switch == "pair" and default:
            return self.off_flag
        return self.flag


def option(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING,
           **details) -> Any:
    """A dataclass field with its default and its `Option` as metadata (`dataclasses.fields` still works).

    Args:
        default: the field's default (or `default_factory=` for a mutable one).
        **details: the `Option`'s attributes: `flag`, `help`, `range`, `refused`, ...

    Returns:
        A `dataclasses.field`.

    Example:
        >>> @dataclasses.dataclass
        ... class Example:
        ...     seed: int = option(0, flag="--seed", help="seed of data order and weights")
        >>> option_of_field(dataclasses.fields(Example)[0]).flag
        '--seed'
    """
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={"option": Option(**details)})


def option_of_field(field: dataclasses.Field) -> Option:
    """The `Option` a field was declared with (an empty one for a field declared without `option`)."""
    return field.metadata.get("option", Option())


def _documented(cls: type) -> type:
    """Writes a concern's `Args:` section from its fields' options, so each field is still described once."""
    lines = ["Args:"]
    for field in dataclasses.fields(cls):
        spec = option_of_field(field)
        text = spec.help.replace("%(default)s", repr(field.default)).replace("{modes}", "see transfer.modes")
        text = text.replace("{tasks}", "a task of training.tasks") or "Python API only"
        lines.append(f"    {field.name}: {text}" + (f" (CLI: {spec.flag})" if spec.flag else ""))
    summary, _, example = inspect.cleandoc(cls.__doc__ or "").partition("Example:")
    cls.__doc__ = f"{summary.rstrip()}\n\n" + "\n".join(lines) + (f"\n\nExample:{example}" if example else "")
    return cls


# Reasons shared by several options, attached to each option's `refused`.
ENCODER_MODELS_ONLY = {"rnn": "it applies to encoder models, not word-vector RNNs",
                       "text_embedding": "it applies to encoder models, not text-embedding modules"}
RNN_ONLY = {"text_embedding": "it applies to word-vector RNNs",
            "encoder": "it applies to word-vector RNNs (--word-vectors)"}


@_documented
@dataclasses.dataclass
class DataConfig:
    """Where the labelled text comes from and how it is read.

    Example:
        >>> from tfhub_transfer import DataConfig
        >>> DataConfig(train="reviews.tsv", validation_fraction=0.2).label_column
        'label'
    """

    train: Any = option(  # a file path, a pandas DataFrame; CoNLL files for the tokens task
        None, flag="--train", required=True,
        help="training file (.csv, .tsv, .jsonl; CoNLL for tokens) or a prepared TFDS dataset tfds:NAME[:SPLIT], "
             "e.g. tfds:glue/sst2 (its features named by --text-column / --label-column)")
    valid: Any = option(  # None: hold out validation_fraction of train
        None, flag="--valid",
        help="validation file or tfds:NAME:SPLIT (default: hold out --validation-fraction of --train)")
    text_column: str = option("text", flag="--text-column", help="column holding the text")
    label_column: str = option("label", flag="--label-column", help="column holding the label")
    task: str = option(  # a registered task (training.tasks), checked where the registry is visible
        "single_label", flag="--task", choices="task_names", help="{tasks}")
    text_b_column: str | None = option(  # sentence pairs: the second text's column
        None, flag="--text-b-column", help="second text column: sentence-pair input (default: single texts)",
        refused={"rnn": "the RNN classifier takes one text",
                 "text_embedding": "a text-embedding module takes one text"})
    label_separator: str = option(",", flag="--label-separator", help="multi_label: separator of label names")
    validation_fraction: float = option(
        0.1, flag="--validation-fraction", type=float, help="share of --train held out when there is no --valid",
        range=Range(0, 1, "at least 0 (0: no validation) and below 1", high_open=True))
    max_train_examples: int | None = option(  # a seeded random subset (tokens: the first N sentences)
        None, flag="--max-train-examples", type=int, help="train on a random subset of this size (default: all)",
        range=Range(1, None, "a whole number >= 1"))
    shuffle: bool = option(True)  # Python API only
    weight_column: str | None = option(  # per-example training weights (numbers >= 0) read from this column
        None, flag="--weight-column",
        help="column of per-example training weights (numbers >= 0) (default: every example weighs 1)")
    label_names: list[str] | None = option(  # names of integer class ids 0..n-1, in order (the column holds ids)
        None, flag="--label-names", type="label_names", metavar="NAME,NAME,...",
        help="names of integer labels 0, 1, ... in order, e.g. neg,pos; predictions and reports use them "
             "(default: labels as written in the file)")
    streaming: str = option(  # data.streaming: peak memory no longer grows with the number of rows
        "auto", flag="--streaming", choices=("auto", "on", "off"),
        help="read --train in chunks through tf.data instead of into memory: auto streams files of 32 MB or "
             "more and globs (train-*.csv); on: always (an option that needs the whole table is then an "
             "error); off: never (default: %(default)s)")


@_documented
@dataclasses.dataclass
class ModelConfig:
    """Which backbone and head are built.

    Example:
        >>> from tfhub_transfer import ModelConfig
        >>> ModelConfig(seq_length=64).encoder
        'default'
    """

    architecture: str = option(  # encoder | rnn | text_embedding; auto picks from the fields below
        "auto", flag="--architecture", choices=ARCHITECTURES,
        help="auto: rnn with --word-vectors, text_embedding with --text-embedding, else encoder")
    encoder: str = option("default", flag="--encoder", help="default, a catalogue name, a path or a hub handle")
    preprocessor: str | None = option(
        None, flag="--preprocessor", refused=ENCODER_MODELS_ONLY,
        help="the matching preprocessor, for a bare encoder SavedModel (default: the one the encoder names)")
    pooling: str | None = option(  # None: the encoder's own recommendation
        None, flag="--pooling", choices=("cls", "first", "mean", "max"), refused=ENCODER_MODELS_ONLY,
        help="how token vectors become one (default: the encoder's own)")
    layer_mix: str | None = option(  # feature-based layer mix, see tfhub_transfer.layers.layer_mix
        None, flag="--layer-mix", choices=LAYER_MIX_CHOICES, refused=ENCODER_MODELS_ONLY,
        help="feature-based layer mix (BERT section 5.3) (default: the encoder's outputs)")
    dropout: float = option(0.1, flag="--dropout", type=float, help="dropout before the head",
                            range=Range(0, 1, "in [0, 1)", high_open=True))
    seq_length: int = option(
        128, flag="--seq-length", type=int, help="longest packed input, in word pieces",
        range=Range(3, None, "at least 3 ([CLS], one word piece, [SEP])"),
        refused={"text_embedding": "a text-embedding module takes whole strings"})
    dtype: str = option(  # encoder compute dtype (encoders this package wrote; float32 on a CPU without bf16)
        "float32", flag="--dtype", choices=("float32", "bfloat16"), refused=ENCODER_MODELS_ONLY,
        help="encoder compute dtype; bfloat16 writes (once) and uses a copy of an encoder this package wrote whose "
             "attention and feed-forward matmuls run in bfloat16 (layer norms and residual sums stay float32); not "
             "possible for published Hub encoders; falls back to float32, saying so, on a CPU without bf16 "
             "instructions")
    head: str = option(  # a BiLSTM over the token states (pooled by mean and max for a sentence task)
        "dense", flag="--head", choices=HEADS,
        help="dense: the pooled features (or each word's) straight to the logits; bilstm: a BiLSTM over the token "
             "states first (sentence tasks pool its outputs by mean and max), the BERT paper's reader of frozen "
             "features, with --feature-cache a cache of every token's features (default: %(default)s)",
        refused={"rnn": "the word-vector RNN is its own head (--rnn, --rnn-units)",
                 "text_embedding": "a text-embedding module gives one vector per text, no token states to read"})
    word_vectors: str | None = option(  # word2vec / GloVe file -> an RNN classifier
        None, flag="--word-vectors", refused={"text_embedding": RNN_ONLY["text_embedding"]},
        help="word2vec (text or .bin) / GloVe file for an RNN classifier (default: none)")
    embedding_mode: str = option("init", flag="--embedding-mode", choices=("init", "freeze", "slow", "random"),
                                 help="how the RNN's embedding uses the vectors (random = no vectors)",
                                 refused=RNN_ONLY)
    slow_factor: float = option(0.01, flag="--slow-factor", type=float, refused=RNN_ONLY,
                                help="embedding LR factor for --embedding-mode slow",
                                range=Range(0, None, "a number > 0", low_open=True))
    rnn: str = option("bilstm", flag="--rnn", choices=("bilstm", "lstm", "gru", "bigru"), refused=RNN_ONLY,
                      help="RNN classifier: the recurrent layer")
    rnn_units: int = option(64, flag="--rnn-units", type=int, help="RNN classifier: units", refused=RNN_ONLY,
                            range=Range(1, None, "a whole number >= 1"))
    max_tokens: int = option(20_000, flag="--max-tokens", type=int, help="RNN vocabulary size", refused=RNN_ONLY,
                             range=Range(3, None, "a whole number >= 3"))
    text_embedding: str | None = option(  # a TF Hub text-embedding module (strings -> vectors)
        None, flag="--text-embedding", help="a TF Hub text-embedding module (strings -> vectors) (default: none)",
        refused={"rnn": "give either --word-vectors or --text-embedding"})
    long_text: str = option(  # truncate | windows:STRIDE (overlapping windows, pooled; see preprocessing.text)
        "truncate", flag="--long-text", refused=ENCODER_MODELS_ONLY,
        help="texts longer than --seq-length: truncate, or windows:STRIDE[:logits] (overlapping windows every "
             "STRIDE word pieces, encoded one by one; the mean of their features, or of their logits)")
    pairs: str = option(  # joint | siamese: how a sentence pair is read (preprocessing.text.LongText.apart)
        "joint", flag="--pairs", choices=("joint", "siamese"), refused=ENCODER_MODELS_ONLY,
        help="sentence pairs (--text-b-column): joint reads both texts in one sequence, as BERT reads pairs; "
             "siamese encodes each text on its own and the head reads |u-v|, u*v and the cosine of their pooled "
             "embeddings (as sentence encoders were trained; SBERT) (default: %(default)s)")
    packing: int = option(  # rows of this many word pieces, several examples a row (preprocessing.packing)
        0, flag="--pack", type=int, metavar="ROW_LENGTH", refused=ENCODER_MODELS_ONLY,
        help="train on each batch packed into rows of ROW_LENGTH word pieces, several examples a row "
             "(block-diagonal attention), so almost no token is padding; the same loss and gradients as unpacked. "
             "Encoders this package wrote, mean pooling; e.g. --pack 128; 0: off",
        range=Range(0, None, "a whole number of word pieces per packed row >= 0 (0: no packing)"))


@_documented
@dataclasses.dataclass
class TransferConfig:
    """What the pretrained weights do: the transfer mode and its options.

    Example:
        >>> from tfhub_transfer import TransferConfig
        >>> TransferConfig(mode="gradual").feature_cache
        False
    """

    mode: str = option(  # see tfhub_transfer.transfer.modes; auto chooses from the data (modes/auto.py)
        "auto", flag="--mode", type="transfer_mode",
        help="transfer mode, one of: {modes}; contrastive is few-shot (SetFit): the encoder tuned on every unique "
             "pair of examples (contrastive:N: N positive and N negative per example) for --epochs, then the head "
             "fitted on its embeddings",
        refused={"rnn": "the RNN's transfer mode is --embedding-mode (init, freeze, slow, random)"})
    embedding_lr_multiplier: float | None = option(
        None, flag="--embedding-lr-multiplier", type=float, refused=ENCODER_MODELS_ONLY,
        help="scale the embeddings' learning rate, e.g. 0.01 for slow embeddings (default: the rate the mode "
             "gives them)", range=Range(0, None, "a number > 0", low_open=True))
    feature_cache: bool = option(  # freeze mode: encode once, train the mix + head from the cache
        False, flag="--feature-cache", switch="on", refused=ENCODER_MODELS_ONLY,
        help="freeze mode: encode the data once and train the mix + head from the cache (with --pairs siamese: "
             "each pair's features once, in memory, and the head fitted on them until its loss stops falling)")
    standardize_features: bool = option(  # with the feature cache: the head trains on standardised features
        True, flag="--no-standardize-features", switch="off", refused=ENCODER_MODELS_ONLY,
        help="with --feature-cache: train the head on the raw features (default: standardised, each centred and "
             "scaled by its spread on the training set, folded into the head)")
    tune_head: bool = option(  # with the feature cache: sweep the head's L2 and learning rate, keep the best
        False, flag="--tune-head", switch="on", refused=ENCODER_MODELS_ONLY,
        help="with --feature-cache: sweep the head's L2 and learning rate on the validation set and keep the best "
             "(the chosen values are printed and saved with the metrics)")
    frozen_epochs: float | None = option(  # head-only epochs before the encoder trains; None: the mode's default
        None, flag="--frozen-epochs", type=float, refused=ENCODER_MODELS_ONLY,
        help="epochs (fractions allowed) that train the head alone before the encoder, counted in --epochs; "
             "fastai's fine_tune, or LP-FT with finetune (default: 0)",
        range=Range(0, None, "a number of epochs >= 0 (fractions allowed)"))
    lr_mult: float | None = option(  # discriminative/gradual: top group's rate / bottom group's; None: the mode's
        None, flag="--lr-mult", type=float, refused=ENCODER_MODELS_ONLY,
        help="discriminative / gradual: the top layer group trains at --lr, the embeddings at --lr / LR_MULT, "
             "geometrically between; without --lr the top rate is 5e-5 x sqrt(LR_MULT), centring the spread on "
             "5e-5 (default: 10)", range=Range(1, None, "a number >= 1 (the top group's rate over the embeddings')"))


@_documented
@dataclasses.dataclass
class OptimizationConfig:
    """How the weights are fitted.

    Example:
        >>> from tfhub_transfer import OptimizationConfig
        >>> OptimizationConfig(epochs=3).batch_size
        32
    """

    epochs: int | str = option(  # auto: enough optimizer steps for small data, 1-3 passes for large (budget)
        "auto", flag="--epochs", type="epochs",
        help="passes over the training data, or auto: at least 200 optimizer steps for small data, one to three "
             "passes for large (default: %(default)s)",
        range=Range(1, None, "a whole number >= 1, or auto", also=("auto",)))
    max_steps: int | None = option(  # the schedule ends there too
        None, flag="--max-steps", type=int,
        help="stop after this many optimizer steps; the schedule ends there (default: no limit)")
    batch_size: int = option(32, flag="--batch-size", type=int, help="examples per step (per replica)",
                             range=Range(1, None, "a whole number >= 1"))
    learning_rate: float | None = option(  # None: default_learning_rate(encoder trains)
        None, flag="--lr", dest="lr", type=float, range=Range(0, None, "a number > 0", low_open=True),
        help=f"peak learning rate (default: {ENCODER_LEARNING_RATE:g} when the encoder trains, "
             f"{HEAD_LEARNING_RATE:g} when only a head does: --mode freeze, RNN, text embedding; "
             f"{CONTRASTIVE_LEARNING_RATE:g} for the pair fit of --mode contrastive)")
    optimizer: str = option("adamw", flag="--optimizer", choices=("adamw", "adam", "sgd"),
                            help="optimizer (adamw: Adam with decoupled weight decay)")
    schedule: str = option("linear", flag="--schedule", choices=("linear", "slanted_triangular", "one_cycle",
                                                                  "constant"),
                           help="learning-rate schedule (linear = warmup then linear decay)")
    warmup_fraction: float = option(0.1, flag="--warmup-fraction", type=float, range=Range(0, 1, "between 0 and 1"),
                                    help="share of the steps spent warming the learning rate up")
    weight_decay: float = option(0.01, flag="--weight-decay", type=float, help="AdamW weight decay",
                                 range=Range(0, None, "a number >= 0"))
    head_learning_rate: float | None = option(  # None: 1e-3 (3e-4 for a --feature-cache head to convergence)
        None, flag="--head-lr", dest="head_lr", type=float, refused=ENCODER_MODELS_ONLY,
        range=Range(0, None, "a number > 0", low_open=True),
        help=f"the new head's peak learning rate while the encoder is frozen (--mode freeze, the head-first "
             f"epochs) (default: {HEAD_LEARNING_RATE:g}; {CACHED_HEAD_LEARNING_RATE:g} for a --feature-cache head "
             f"with the default --epochs; in freeze mode --lr if given)")
    head_lr_multiplier: float = option(  # while the encoder trains, the head's rate is this x learning_rate
        1.0, flag="--head-lr-multiplier", type=float, refused=ENCODER_MODELS_ONLY,
        help="while the encoder trains, the head's rate is this x --lr",
        range=Range(0, None, "a number > 0", low_open=True))
    early_stopping: int = option(  # stop after this many epochs without a better validation score (0: never)
        0, flag="--early-stopping", type=int, metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation score and keep the best epoch's weights "
             "(0: train every epoch)", range=Range(0, None, "a whole number of epochs >= 0 (0: never stop early)"))
    class_weight: str | dict | None = option(  # "balanced", "label=weight,..." or {label: weight}
        None, flag="--class-weight",
        help="single_label: 'balanced' (n / (classes x count)) or label=weight pairs, e.g. positive=1,negative=5 "
             "(unnamed classes weigh 1) (default: every class weighs 1)")


@_documented
@dataclasses.dataclass
class RuntimeConfig:
    """Where and how the training loop runs: devices, speed options, faults, seeds, output.

    Example:
        >>> from tfhub_transfer import RuntimeConfig
        >>> RuntimeConfig(seed=1).backup_every_steps
        200
    """

    distribution: str = option(
        "auto", flag="--distribution", choices=("auto", "one_device", "mirrored", "multi_worker", "tpu"),
        help="tf.distribute strategy; auto: TPU if one answers, several GPUs -> mirrored, else one device; "
             "multi_worker reads TF_CONFIG. --batch-size is per replica")
    bucket: bool = option(  # group similar lengths into batches (less padding)
        True, flag="--no-bucket", dest="no_bucket", switch="off",
        help="do not group similar lengths into batches (each batch is still padded only to its own longest row)")
    steps_per_execution: int = option(1, flag="--steps-per-execution", type=int,
                                      help="training steps per tf.function call (fewer Python round trips)",
                                      range=Range(1, None, "a whole number >= 1"))
    jit_compile: bool = option(False, flag="--jit-compile", switch="on",  # XLA; slower on CPU for hub encoders
                               help="XLA-compile the train step (can help on GPU/TPU; slower on CPU)")
    resume: bool | None = option(  # None: resume from a backup in the run directory if there is one
        None, flag="--resume", switch="either",
        help="must resume: continue from the backup of this run (OUT/NAME/run), an error if there is none "
             "(default, neither flag: resume automatically when a backup of this same run exists, else start "
             "fresh)", off_help="start over: discard any backup of this run (default: see --resume)")
    backup_every_steps: int = option(200, flag="--backup-every", dest="backup_every", type=int,
                                     help="back up the training state every N steps (0: never)",
                                     range=Range(0, None, "a whole number >= 0 (0: no backups)"))
    keep_backups: bool = option(  # keep the run's backup (its final state) after it finishes; else deleted
        False, flag="--keep-backups", switch="on",
        help="keep the backup (OUT/NAME/run/backup, the finished state) when the run ends; by default it is "
             "deleted")
    cache_dir: str | Path | None = option(  # None: $TFHUB_TRANSFER_CACHE, else ~/.cache/tfhub_transfer
        None, flag="--cache-dir",
        help="where converted encoders and feature caches are kept (default: $TFHUB_TRANSFER_CACHE, else "
             "~/.cache/tfhub_transfer); see `tfhub-transfer cache list`")
    restore_best: bool = option(True, flag="--no-restore-best", dest="no_restore_best", switch="off",
                                help="keep the last epoch's weights instead of the best validation epoch's")
    time_budget: float | None = option(  # minutes of training at most; then a clean stop with the best weights
        None, flag="--time-budget", type=float, metavar="MINUTES",
        help="stop training cleanly after this many minutes, keep the best weights and export (default: no limit)")
    seed: int = option(0, flag="--seed", type=int, help="seed of data order and weights")
    verbose: int = option(  # 1: progress (bars on a terminal, a line per epoch in a log); 0: header and result
        1, flag="--quiet", dest="quiet", switch="off", off_value=0,
        help="no progress (the one-line header, the speed and the result still print)")
    tensorboard: bool = option(True, flag="--tensorboard", switch="pair",  # logs in OUT/NAME/run/tensorboard
                               help="write TensorBoard logs to OUT/NAME/run/tensorboard (tensorboard --logdir there)")
    callbacks: list = option(default_factory=list)  # extra Keras callbacks for fit (Python API only)


@_documented
@dataclasses.dataclass
class OutputConfig:
    """Where results go: OUT/NAME/VERSION for exports, OUT/NAME/run for the run's state.

    Example:
        >>> from tfhub_transfer import OutputConfig
        >>> OutputConfig(name="sst2").run_dir.as_posix()
        'saved_models/sst2/run'
    """

    name: str = option("classifier", flag="--name", help="model name: exports go to OUT/NAME/VERSION")
    output_dir: str | Path = option(
        "saved_models", flag="--out", dest="out",
        help="output root: exports in OUT/NAME/VERSION, the run (and TensorBoard logs) in OUT/NAME/run")
    export: bool = option(True, flag="--no-export", dest="no_export", switch="off", help="train and report only")
    export_format: str = option(  # see export.formats
        "saved_model", flag="--export-format", choices=("saved_model", "tflite", "onnx"), refused=ENCODER_MODELS_ONLY,
        help="saved_model and tflite take raw strings; onnx takes token ids (its tokenizer is written beside it)")
    quantize: str | None = option(  # int8: dynamic-range int8 weights (tflite, onnx)
        None, flag="--quantize", choices=("int8",), refused=ENCODER_MODELS_ONLY,
        help="tflite / onnx: dynamic-range int8 weights (smaller, usually faster on CPU) (default: float weights)")

    @property
    def run_dir(self) -> Path | str:
        """OUT/NAME/run: a local `Path`, or a URL string (gs://bucket/models/NAME/run) kept as a URL."""
        return storage.join(self.output_dir, self.name, "run")


CONCERNS = {"data": DataConfig, "model": ModelConfig, "transfer": TransferConfig,
            "optimization": OptimizationConfig, "runtime": RuntimeConfig, "output": OutputConfig}
_FIELD_CONCERN = {f.name: concern for concern, cls in CONCERNS.items() for f in dataclasses.fields(cls)}
_FIELDS = {f.name: f for cls in CONCERNS.values() for f in dataclasses.fields(cls)}


def concern_of_field(name: str) -> str | None:
    """The concern (a key of CONCERNS) holding the flat field `name`, None for no field.

    Example:
        >>> concern_of_field("learning_rate")
        'optimization'
    """
    return _FIELD_CONCERN.get(name)


def options(concern: str | None = None) -> dict[str, Option]:
    """The `Option` of every field (of one concern, or of all), by field name, in declaration order.

    Args:
        concern: a key of CONCERNS, or None for every concern.

    Returns:
        {field name: Option}.

    Example:
        >>> [name for name, spec in options("output").items() if spec.switch]
        ['export']
    """
    classes = [CONCERNS[concern]] if concern else CONCERNS.values()
    return {f.name: option_of_field(f) for cls in classes for f in dataclasses.fields(cls)}


def option_of(name: str) -> Option:
    """The `Option` of the flat field `name`.

    Example:
        >>> option_of("learning_rate").flag, option_of("learning_rate").range.what
        ('--lr', 'a number > 0')
    """
    return option_of_field(_FIELDS[name])


def flag(name: str) -> str:
    """The flag that sets field `name`, as every message names it (the field name for API-only fields).

    Example:
        >>> flag("learning_rate"), flag("bucket"), flag("resume")
        ('--lr', '--no-bucket', '--resume/--no-resume')
    """
    if name not in _FIELDS:
        return name
    return option_of(name).message_flag(name, field_default(name))


def check_value(name: str, value) -> None:
    """Raises ConfigError naming the flag when `value` is outside field `name`'s range (None is 'unset').

    Example:
        >>> check_value("dropout", 1.0)
        Traceback (most recent call last):
        ...
        tfhub_transfer.errors.ConfigError: --dropout 1.0: must be in [0, 1)
    """
    allowed = option_of(name).range if name in _FIELDS else None
    if value is None or allowed is None or allowed.admits(value):
        return
    shown = value if isinstance(value, (int, float)) and not isinstance(value, bool) else repr(value)
    raise ConfigError(f"{flag(name)} {shown}: must be {allowed.what}")


def differs(value, default) -> bool:
    """Whether a set value differs from a default (data frames and arrays compare as 'set')."""
    if value is None or default is None:
        return value is not default
    try:
        return bool(value != default)
    except (TypeError, ValueError):
        return True


def field_default(name: str):
    """The one default of a flat field name."""
    field = next(f for f in dataclasses.fields(CONCERNS[_FIELD_CONCERN[name]]) if f.name == name)
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs, by concern. Build it with `TrainConfig.of(**flat_fields)`.

    Args:
        data: a `DataConfig` (where the labelled text comes from).
        model: a `ModelConfig` (the backbone and head).
        transfer: a `TransferConfig` (the transfer mode and its options).
        optimization: an `OptimizationConfig` (how the weights are fitted).
        runtime: a `RuntimeConfig` (devices, speed options, faults, seeds).
        output: an `OutputConfig` (where exports and the run's state go).

    Example:
        >>> from tfhub_transfer import TrainConfig
        >>> config = TrainConfig.of(train="reviews.tsv", epochs=2, mode="gradual")
        >>> config.epochs, config.optimization.epochs, config.changed()["mode"]
        (2, 2, 'gradual')
    """

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    transfer: TransferConfig = dataclasses.field(default_factory=TransferConfig)
    optimization: OptimizationConfig = dataclasses.field(default_factory=OptimizationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)

    @classmethod
    def of(cls, **fields) -> TrainConfig:
        """A config from flat field names (`train=`, `epochs=`, `mode=` ...), each routed to its concern."""
        return cls().replace(**fields)

    def replace(self, **fields) -> TrainConfig:
        """A copy with the given flat fields changed."""
        unknown = sorted(set(fields) - set(_FIELD_CONCERN))
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(_FIELD_CONCERN)}")
        parts = {}
        for concern in CONCERNS:
            changes = {k: v for k, v in fields.items() if _FIELD_CONCERN[k] == concern}
            parts[concern] = dataclasses.replace(getattr(self, concern), **changes)
        return TrainConfig(**parts)

    def flat(self) -> dict[str, Any]:
        """Every field by its flat name."""
        return {name: getattr(getattr(self, concern), name) for name, concern in _FIELD_CONCERN.items()}

    def changed(self) -> dict[str, Any]:
        """The fields that differ from their defaults."""
        return {k: v for k, v in self.flat().items() if k != "train" and differs(v, field_default(k))}

    def __getattr__(self, name: str):
        concern = _FIELD_CONCERN.get(name)
        if concern is None:
            raise AttributeError(name)
        return getattr(self.__dict__[concern], name)

    @property
    def run_dir(self) -> Path | str:
        return self.output.run_dir

    def resolved_architecture(self) -> str:
        model = self.model
        if model.architecture not in ARCHITECTURES:
            raise ConfigError(f"--architecture must be one of {ARCHITECTURES}, not {model.architecture!r}")
        if model.architecture != "auto":
            return model.architecture
        if model.text_embedding:
            return "text_embedding"
        return "rnn" if model.word_vectors else "encoder"
