"""Strings to encoder inputs, in the tf.data pipeline rather than in the training graph.

The preprocessing SavedModel (TF Hub text API) tokenises; batches are padded only
to their own longest row (dynamic padding), never beyond `seq_length`.

Texts longer than `seq_length` are cut (`truncate`), or split into overlapping windows
(`LongText`, `--long-text windows:STRIDE`): window k holds word pieces k x STRIDE ..
k x STRIDE + seq_length - 3, packed with [CLS] and [SEP]; a batch becomes
[texts, windows, seq] inputs (padding windows have an all-zero mask) that the model
encodes window by window and pools.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (registers the ops the preprocessing SavedModel uses)
from google.protobuf.message import DecodeError

from tfhub_transfer.cache import check_handle_available
from tfhub_transfer.errors import ConfigError, EncoderError

AUTOTUNE = tf.data.AUTOTUNE
TOKENIZE_BATCH = 512
SHUFFLE_BUFFER = 10_000
# Length bucketing sorts this many batches' worth of examples by length, then batches them.
BUCKET_CHUNK_BATCHES = 16


@dataclasses.dataclass(frozen=True)
class LongText:
    """How texts are laid into encoder rows. Texts longer than `seq_length` are cut (`truncate`), or split
    into windows that start every `stride` word pieces, encoded one by one and pooled (`pool`: the mean of the
    window `features` before the head, or of the window `logits` after it). Sentence pairs share one row
    (BERT's [CLS] a [SEP] b [SEP]), or with `apart` each text has its own (a siamese reading)."""

    stride: int | None = None  # None: truncate
    pool: str = "features"
    # Sentence pairs read apart (`--pairs siamese`): each text packed on its own row, [pairs, 2, seq].
    apart: bool = False

    @property
    def windowed(self) -> bool:
        return self.stride is not None

    @property
    def rows_per_example(self) -> bool:
        """Whether an example's inputs are [rows, seq] (windows, or a pair's texts apart), not [seq]."""
        return self.windowed or self.apart

    @classmethod
    def parse(cls, spec: str | LongText | None, seq_length: int, pair: bool = False,
              pairs: str = "joint") -> LongText:
        """`truncate`, `windows:STRIDE` or `windows:STRIDE:logits` (`:features` is the default); `pairs`
        (`joint` or `siamese`) says how a sentence pair is read."""
        if isinstance(spec, LongText):
            return spec
        if pairs not in ("joint", "siamese"):
            raise ConfigError(f"--pairs {pairs}: give joint (both texts in one sequence) or siamese (each apart)")
        if pairs == "siamese" and not pair:
            raise ConfigError("--pairs siamese reads sentence pairs: name the second text's column with "
                              "--text-b-column (Python: pair=True), or drop --pairs")
        parts = str(spec or "truncate").split(":")
        if parts == ["truncate"]:
            return cls(apart=pairs == "siamese")
        content = seq_length - 2  # [CLS] and [SEP]
        usage = (f"--long-text {spec}: give truncate, windows:STRIDE or windows:STRIDE:logits, with STRIDE "
                 f"a whole number from 1 to {content} (seq_length - 2; a larger stride would skip word pieces)")
        if parts[0] != "windows" or len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ConfigError(usage)
        stride, pool = int(parts[1]), parts[2] if len(parts) == 3 else "features"
        if not 1 <= stride <= content or pool not in ("features", "logits"):
            raise ConfigError(usage)
        if pair:
            raise ConfigError(f"--long-text {spec} does not apply to sentence pairs (--text-b-column): windows "
                              "split one text")
        return cls(stride, pool)

    def __str__(self) -> str:
        if not self.windowed:
            return "truncate" + (" (pairs apart)" if self.apart else "")
        return f"windows:{self.stride}" + (":logits" if self.pool == "logits" else "")


def split_windows(tokens: tf.RaggedTensor, length: int, stride: int) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """[texts, (pieces)] -> ([windows, (at most `length` pieces)], the text each window comes from).

    A text of n pieces gives 1 + ceil(max(n - length, 0) / stride) windows, starting every `stride`
    pieces; the last one ends with the text. An empty text gives one empty window.
    """
    counts = tokens.row_lengths()
    windows = 1 + (tf.maximum(counts - length, 0) + stride - 1) // stride
    starts = tf.ragged.range(windows) * stride
    owner = starts.value_rowids()
    first = starts.flat_values
    last = tf.minimum(first + length, tf.gather(counts, owner))
    pieces = tf.ragged.range(first, last) + tf.gather(tokens.row_starts(), owner)[:, tf.newaxis]
    return tf.gather(tokens.flat_values, pieces), owner


_LOADED: dict[tuple, object] = {}


def _load_preprocessor(handle: str):
    """`hub.load(handle)`, once per process for each version of the files: a preprocessor holds no
    trainable state, and loading one (its tokenizer graphs) takes seconds that compare/study runs
    would otherwise pay for every model."""
    saved = Path(handle) / "saved_model.pb"
    key = (str(Path(handle).resolve()), saved.stat().st_mtime_ns) if saved.exists() else None
    if key is None:
        return hub.load(handle)
    if key not in _LOADED:
        _LOADED[key] = hub.load(handle)
    return _LOADED[key]


class TextPreprocessor:
    """Wraps a preprocessing SavedModel: tokenize, pack, and build tf.data pipelines."""

    def __init__(self, handle: str):
        check_handle_available(handle)
        self.handle = handle
        try:
            self.module = _load_preprocessor(handle)
        except (OSError, ValueError, IndexError, tf.errors.OpError, DecodeError) as err:
            raise EncoderError(f"cannot load the preprocessor {handle}: its files look damaged or incomplete "
                               f"({type(err).__name__}: {str(err).strip()[:200]}). Write or download it "
                               "again.") from None
        for name in ("tokenize", "bert_pack_inputs"):
            if not hasattr(self.module, name):
                raise EncoderError(
                    f"{handle} is not a TF Hub text preprocessor: it has no `{name}` subobject."
                )
        special = self.module.tokenize.get_special_tokens_dict()
        self.special_ids = {k: int(v.numpy()) for k, v in special.items()}

    @property
    def vocab_size(self) -> int:
        return self.special_ids["vocab_size"]

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """A batch of strings to word-piece ids, [batch, (tokens)]."""
        tokens = self.module.tokenize(strings)
        if tokens.shape.rank == 3:
            tokens = tokens.merge_dims(-2, -1)
        return tf.cast(tokens, tf.int32)

    def pack(self, segments: Sequence[tf.RaggedTensor], seq_length: int,
             static_length: bool = False) -> dict[str, tf.Tensor]:
        """Packs 1 or 2 tokenised segments, padded to the longest row (at most `seq_length`).

        With `static_length` every row is padded to `seq_length` (one shape, for TPUs).
        """
        if static_length:
            return self.module.bert_pack_inputs(list(segments), seq_length=seq_length)
        total = tf.add_n([s.row_lengths() for s in segments])
        longest = tf.cast(tf.reduce_max(tf.concat([total, [0]], 0)), tf.int32)
        length = tf.minimum(longest + len(segments) + 1, seq_length)
        return self.module.bert_pack_inputs(list(segments), seq_length=length)

    def pack_windows(self, tokens: tf.RaggedTensor, seq_length: int, stride: int,
                     static_length: bool = False) -> dict[str, tf.Tensor]:
        """Tokenised texts to [texts, windows, seq] encoder inputs (see `split_windows`); padding
        windows are all zeros, so their mask says they hold nothing."""
        windows, owner = split_windows(tokens, seq_length - 2, stride)
        packed = self.pack([windows], seq_length, static_length)
        return {name: tf.RaggedTensor.from_value_rowids(value, owner, nrows=tokens.nrows()).to_tensor()
                for name, value in packed.items()}

    def pack_apart(self, segments: Sequence[tf.RaggedTensor], seq_length: int,
                   static_length: bool = False) -> dict[str, tf.Tensor]:
        """A pair's two tokenised segments to [pairs, 2, seq] encoder inputs: each text packed on its own row
        ([CLS] text [SEP]), both rows padded to the batch's longest text."""
        rows = tf.stack(list(segments), axis=1).merge_dims(0, 1)  # a0, b0, a1, b1, ...
        packed = self.pack([rows], seq_length, static_length)
        return {name: tf.reshape(value, [-1, 2, tf.shape(value)[-1]]) for name, value in packed.items()}

    def pack_for(self, segments: Sequence[tf.RaggedTensor], seq_length: int, long_text: LongText | None = None,
                 static_length: bool = False) -> dict[str, tf.Tensor]:
        """Tokenised segments to encoder inputs as `long_text` lays them out (windows, pairs apart, or one row)."""
        if long_text is not None and long_text.windowed:
            return self.pack_windows(segments[0], seq_length, long_text.stride, static_length)
        if long_text is not None and long_text.apart:
            return self.pack_apart(segments, seq_length, static_length)
        return self.pack(segments, seq_length, static_length)

    def encode(self, strings, seq_length: int = 128, strings_b=None,
               long_text: LongText | None = None) -> dict[str, tf.Tensor]:
        """Raw strings (and a second segment for pairs) to encoder inputs ([texts, windows, seq] when
        `long_text` splits them into windows; [pairs, 2, seq] when it reads pairs apart)."""
        budget = segment_budget(seq_length, 1 if strings_b is None else 2, long_text)
        segments = [self.tokenize(tf.convert_to_tensor(strings))[:, :budget]]
        if strings_b is not None:
            segments.append(self.tokenize(tf.convert_to_tensor(strings_b))[:, :budget])
        return self.pack_for(segments, seq_length, long_text)


def segment_budget(seq_length: int, segments: int, long_text: LongText | None = None) -> int | None:
    """The word pieces each segment keeps: whole for windows, `seq_length - 2` for a text on its own row,
    `seq_length - segments - 1` for segments sharing one row (None: keep all)."""
    if long_text is not None and long_text.windowed:
        return None
    if long_text is not None and long_text.apart:
        return seq_length - 2
    return seq_length - segments - 1


def _tokenized(dataset: tf.data.Dataset, preprocessor: TextPreprocessor, seq_length: int,
               long_text: LongText | None = None):
    """((texts...), label) elements to ((token ids...), label), each segment cut to fit seq_length as
    `long_text` lays them out (kept whole for windows)."""

    def tokenize(segments, labels):
        budget = segment_budget(seq_length, len(segments), long_text)
        return tuple(preprocessor.tokenize(s)[:, :budget] for s in segments), labels

    return dataset.batch(TOKENIZE_BATCH).map(tokenize, num_parallel_calls=AUTOTUNE).unbatch()


def _tokenized_segments(texts, labels, preprocessor, seq_length, texts_b=None, long_text=None) -> tf.data.Dataset:
    """((token ids...), label) per example, tokenised once (parallel map) then cached in memory."""
    if isinstance(texts, tf.data.Dataset):
        dataset = texts.map(lambda text, label: ((text,), label))
    else:
        dummy = np.zeros(len(texts), np.int32) if labels is None else labels
        segments = (list(texts),) if texts_b is None else (list(texts), list(texts_b))
        dataset = tf.data.Dataset.from_tensor_slices((segments, dummy))
    return _tokenized(dataset, preprocessor, seq_length, long_text)


def _packer(preprocessor: TextPreprocessor, seq_length: int, static_length: bool = False,
            long_text: LongText | None = None):
    def pack(tokens, batch_labels):
        return preprocessor.pack_for(list(tokens), seq_length, long_text, static_length), batch_labels

    return pack


def make_dataset(
    texts: Sequence[str] | tf.data.Dataset,
    labels: np.ndarray | None,
    preprocessor: TextPreprocessor,
    batch_size: int = 32,
    seq_length: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool = True,
    texts_b: Sequence[str] | None = None,
    weights: np.ndarray | None = None,
    long_text: LongText | None = None,
) -> tf.data.Dataset:
    """Builds batches of (encoder inputs, targets) from texts (or text pairs) and targets.

    `texts` may be a sequence of strings (with `labels` an array of class ids,
    multi-hot rows or floats, or None for prediction; `texts_b` for sentence pairs)
    or a tf.data.Dataset of (string, label) elements. Tokenisation runs once
    (cached); shuffling runs every epoch; each batch is padded to its own longest row.
    For training runs that must resume exactly, use `make_training_dataset`. With per-example
    `weights` (and labels) the batches are (inputs, targets, weights).
    """
    labels = _with_weights(labels, weights)
    if isinstance(texts, tf.data.Dataset) and texts.element_spec[0].shape.rank == 1:
        texts = texts.unbatch()  # batches of (strings, labels): rebatched below to `batch_size` (count unknown)
    dataset = _tokenized_segments(texts, labels, preprocessor, seq_length, texts_b, long_text)
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.ragged_batch(batch_size).map(_packer(preprocessor, seq_length, long_text=long_text),
                                                   num_parallel_calls=AUTOTUNE)
    count = int(texts.cardinality()) if isinstance(texts, tf.data.Dataset) else len(texts)
    if count >= 0:
        # Unbatching loses the size; restoring it gives Keras real progress bars (and schedules a length).
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    if labels is None and not isinstance(texts, tf.data.Dataset):
        dataset = dataset.map(lambda inputs, _: inputs)
    return _weights_apart(dataset, weights).prefetch(AUTOTUNE)


def _with_weights(labels, weights):
    """Labels and weights travel together through the pipeline, as (labels, weights) pairs."""
    if weights is None:
        return labels
    if labels is None:
        raise ValueError("sample weights need labels")
    if len(weights) != len(labels):
        raise ValueError(f"{len(weights)} sample weights for {len(labels)} examples")
    return labels, np.asarray(weights, np.float32)


def _weights_apart(dataset: tf.data.Dataset, weights) -> tf.data.Dataset:
    return dataset if weights is None else dataset.map(lambda inputs, both: (inputs, *both))


def make_training_dataset(
    texts: Sequence[str],
    labels: np.ndarray,
    preprocessor: TextPreprocessor | None,
    batch_size: int,
    seq_length: int,
    epochs: int,
    seed: int = 0,
    shuffle: bool = True,
    bucket: bool = True,
    start_epoch: int = 0,
    start_step: int = 0,
    texts_b: Sequence[str] | None = None,
    drop_remainder: bool = False,
    static_length: bool = False,
    long_text: LongText | None = None,
) -> tuple[tf.data.Dataset, int]:
    """All training batches of epochs `start_epoch..epochs-1` as one stream; returns it with steps/epoch.

    Epoch e's order depends only on (`seed`, e), and the stream starts `start_step`
    batches into `start_epoch`, so a resumed run sees exactly the batches the
    interrupted one would have. With `bucket`, each chunk of 16 batches' worth of
    examples is sorted by length before batching (less padding), and the chunk's
    batches are then shuffled. Pass `steps_per_epoch` to `fit` with this dataset.
    With `preprocessor=None` the batches hold raw strings (models that tokenise inside).

    Several replicas need `drop_remainder`: a short last batch splits unevenly, and
    replicas whose sparse (embedding) gradients differ in shape cannot be gathered.
    TPUs need `static_length` too: every batch padded to `seq_length`, one compiled shape.
    """
    if preprocessor is None:
        cached = tf.data.Dataset.from_tensor_slices((list(texts), labels))
    else:
        cached = _tokenized_segments(texts, labels, preprocessor, seq_length, texts_b, long_text).cache()
    steps_per_epoch = len(texts) // batch_size if drop_remainder else -(-len(texts) // batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"{len(texts)} training examples do not fill one batch of {batch_size}")

    def batches(dataset: tf.data.Dataset, epoch_seed: int) -> tf.data.Dataset:
        if preprocessor is None:
            return dataset.batch(batch_size, drop_remainder=drop_remainder)
        if bucket:
            return length_bucketed(dataset, batch_size, epoch_seed, drop_remainder)
        return dataset.ragged_batch(batch_size, drop_remainder=drop_remainder)

    dataset = epoch_stream(cached, len(texts), batches, epochs, seed, start_epoch, start_step, shuffle)
    if preprocessor is not None:
        dataset = dataset.map(_packer(preprocessor, seq_length, static_length, long_text),
                              num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE), steps_per_epoch


def epoch_stream(examples: tf.data.Dataset, count: int, batches, epochs: int, seed: int = 0,
                 start_epoch: int = 0, start_step: int = 0, shuffle: bool = True) -> tf.data.Dataset:
    """The batches of epochs `start_epoch..epochs-1` as one stream, starting `start_step` batches in.

    Epoch e's order depends only on (`seed`, e): `batches(shuffled examples, epoch_seed)`
    batches one epoch. A resumed run therefore sees exactly the batches the interrupted
    one would have.
    """

    def one_epoch(epoch: int) -> tf.data.Dataset:
        dataset, epoch_seed = examples, seed * 100_003 + epoch
        if shuffle:
            dataset = dataset.shuffle(min(SHUFFLE_BUFFER, max(count, 1)), seed=epoch_seed,
                                      reshuffle_each_iteration=False)
        return batches(dataset, epoch_seed)

    # Python-level epochs: tf.data takes shuffle seeds as Python ints, not tensors.
    per_epoch = [one_epoch(epoch) for epoch in range(start_epoch, max(epochs, start_epoch + 1))]
    return functools.reduce(lambda a, b: a.concatenate(b), per_epoch).skip(start_step)


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off (parallel calls and prefetch at their static defaults).

    For short fits only: under Keras `fit`, freeing the iterator of an autotuned stream at the end now and then
    waited ~5 s (the few-shot pair fit, SST-2 at 8 per class, 12 jobs each way: 4 stalls of 5-6 s with
    autotuning, none without; mean job 14.5 s against 12.7 s; RESULTS.md, "the few-shot job's fixed time").

    Example:
        >>> [int(x) for x in without_autotune(tf.data.Dataset.range(3))]
        [0, 1, 2]
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def length_bucketed(dataset: tf.data.Dataset, batch_size: int, seed: int,
                    drop_remainder: bool = False) -> tf.data.Dataset:
    """Batches of similar lengths: sort each chunk of examples by length, batch, shuffle the batches.

    Elements are (ragged token rows or a tuple of them, ...); length is the first part's total.
    """

    def sorted_batches(tokens, *rest):
        parts = tokens if isinstance(tokens, tuple) else (tokens,)
        lengths = tf.add_n([t.row_lengths() for t in parts])
        order = tf.argsort(lengths, stable=True)
        chunk = (tf.nest.map_structure(lambda t: tf.gather(t, order), tokens),
                 *(tf.gather(r, order) for r in rest))
        return tf.data.Dataset.from_tensor_slices(chunk).ragged_batch(batch_size, drop_remainder)

    chunks = dataset.ragged_batch(batch_size * BUCKET_CHUNK_BATCHES)
    return chunks.flat_map(sorted_batches).shuffle(BUCKET_CHUNK_BATCHES, seed=seed,
                                                   reshuffle_each_iteration=False)


def make_string_dataset(
    texts: Sequence[str], labels: np.ndarray | None, batch_size: int = 32, shuffle: bool = False,
    seed: int = 0, weights: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of raw strings (and labels, and per-example weights), for models whose first layer handles text."""
    paired = _with_weights(labels, weights)
    dummy = np.zeros(len(texts), np.int32) if labels is None else paired
    dataset = tf.data.Dataset.from_tensor_slices((list(texts), dummy))
    if shuffle:
        dataset = dataset.shuffle(max(len(texts), 1), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if labels is None:
        dataset = dataset.map(lambda text, _: text)
    return _weights_apart(dataset, weights).prefetch(AUTOTUNE)
