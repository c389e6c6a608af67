"""Dynamic masked-LM inputs with tensorflow-text.

BERT's recipe: 15 % of tokens chosen; of those 80 % become [MASK], 10 % a random token, 10 % stay.

Masking runs inside the tf.data pipeline, so every epoch sees a new mask.
[CLS], [SEP] and [PAD] are never selected. With whole-word masking the
selection unit is a word (all its word pieces together).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf
import tensorflow_text as text

from tfhub_transfer.preprocessing.text import TextPreprocessor


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    selection_rate: float = 0.15
    mask_token_rate: float = 0.8
    random_token_rate: float = 0.1
    whole_word: bool = False
    seq_length: int = 128

    @property
    def max_predictions(self) -> int:
        # Whole words can carry several pieces each; leave room for them.
        factor = 2.0 if self.whole_word else 1.0
        return int(math.ceil(self.seq_length * self.selection_rate * factor)) + 2


def add_special_tokens(words: tf.RaggedTensor, cls_id: int, sep_id: int) -> tf.RaggedTensor:
    """[batch, words, pieces] -> the same with [CLS] and [SEP] as one-piece words at the ends."""
    batch = words.nrows()
    cls = tf.RaggedTensor.from_uniform_row_length(
        tf.RaggedTensor.from_row_lengths(tf.fill([batch], cls_id), tf.ones([batch], tf.int64)), 1)
    sep = tf.RaggedTensor.from_uniform_row_length(
        tf.RaggedTensor.from_row_lengths(tf.fill([batch], sep_id), tf.ones([batch], tf.int64)), 1)
    return tf.concat([cls, tf.cast(words, tf.int32), sep], axis=1)


def mask_batch(
    words: tf.RaggedTensor, special_ids: dict[str, int], config: MaskingConfig,
    seed: int | None = None,
) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """Packs and masks a batch of [batch, words, pieces] token ids (already trimmed to fit).

    Returns (encoder inputs with `masked_lm_positions`, masked_lm_ids, masked_lm_weights).
    """
    cls, sep, pad = (special_ids["start_of_sequence_id"], special_ids["end_of_segment_id"],
                     special_ids["padding_id"])
    sequences = add_special_tokens(words, cls, sep)
    if not config.whole_word:
        sequences = sequences.merge_dims(1, 2)
    selector = text.RandomItemSelector(
        max_selections_per_batch=config.max_predictions,
        # tf-text selects ceil(rate * selectable) items; in float32, 0.15 * 100 rounds up to 16.
        selection_rate=config.selection_rate - 1e-6,
        unselectable_ids=[cls, sep, pad],
        shuffle_fn=(lambda x: tf.random.shuffle(x, seed=seed)) if seed is not None else None,
    )
    chooser = text.MaskValuesChooser(
        special_ids["vocab_size"], special_ids["mask_id"],
        mask_token_rate=config.mask_token_rate, random_token_rate=config.random_token_rate,
    )
    masked, positions, originals = text.mask_language_model(sequences, selector, chooser, axis=1)
    word_ids, input_mask = text.pad_model_inputs(masked, config.seq_length, pad_value=pad)
    positions = positions[:, : config.max_predictions]
    originals = originals[:, : config.max_predictions]
    lm_positions, lm_weights = text.pad_model_inputs(positions, config.max_predictions)
    lm_ids, _ = text.pad_model_inputs(originals, config.max_predictions)
    inputs = {
        "input_word_ids": tf.cast(word_ids, tf.int32),
        "input_mask": tf.cast(input_mask, tf.int32),
        "input_type_ids": tf.zeros_like(tf.cast(word_ids, tf.int32)),
        "masked_lm_positions": tf.cast(lm_positions, tf.int32),
    }
    return inputs, tf.cast(lm_ids, tf.int32), tf.cast(lm_weights, tf.float32)


@dataclasses.dataclass(frozen=True)
class PackedSequences:
    """Training sequences packed from corpus lines: a [sequences, words, pieces] RaggedTensor of token ids."""

    ragged: tf.RaggedTensor

    def __len__(self) -> int:
        return int(self.ragged.nrows())

    def take(self, indices) -> PackedSequences:
        return PackedSequences(tf.gather(self.ragged, indices))

    def lengths(self) -> np.ndarray:
        """Word pieces per sequence."""
        return self.ragged.merge_dims(1, 2).row_lengths().numpy()


def pack_words(lines: list[str], preprocessor: TextPreprocessor, budget: int,
               chunk: int = 4096) -> PackedSequences:
    """Greedily packs consecutive lines' words into sequences of at most `budget` word pieces (a word
    longer than the budget keeps its first `budget` pieces)."""
    pieces, word_lengths = [], []
    for start in range(0, len(lines), chunk):  # tokenized in chunks; packed on flat arrays, not Python lists
        words = preprocessor.module.tokenize(tf.constant(lines[start : start + chunk])).merge_dims(0, 1)
        lengths = words.row_lengths().numpy()
        keep = np.arange(int(words.values.shape[0])) - np.repeat(words.row_starts().numpy(), lengths)
        pieces.append(words.flat_values.numpy()[keep < budget])
        word_lengths.append(np.minimum(lengths, budget))
    word_lengths = np.concatenate(word_lengths or [np.zeros(0, np.int64)])
    flat = np.concatenate(pieces or [np.zeros(0, np.int32)]).astype(np.int32)
    ragged = tf.RaggedTensor.from_nested_row_lengths(
        flat, [_words_per_sequence(word_lengths.tolist(), budget), word_lengths.astype(np.int64)])
    return PackedSequences(ragged)


def _words_per_sequence(word_lengths: list[int], budget: int) -> np.ndarray:
    counts, words, used = [], 0, 0
    for length in word_lengths:
        if used + length > budget and words:
            counts.append(words)
            words, used = 0, 0
        words += 1
        used += length
    if words:
        counts.append(words)
    return np.asarray(counts, np.int64)


def mlm_dataset(sequences: PackedSequences, special_ids, masking: MaskingConfig, batch_size: int,
                shuffle: bool, seed: int | None = None) -> tf.data.Dataset:
    """Batches of (inputs, masked_lm_ids, masked_lm_weights), masked anew each epoch."""
    dataset = tf.data.Dataset.from_tensor_slices(sequences.ragged)
    if shuffle:
        dataset = dataset.shuffle(len(sequences), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.ragged_batch(batch_size)
    dataset = dataset.map(lambda words: mask_batch(words, special_ids, masking, seed),
                          num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def fixed_heldout(sequences: PackedSequences, special_ids, masking: MaskingConfig, batch_size: int, seed: int) -> list:
    """The held-out set masked once and kept, so `before` and `after` see the same masks."""
    tf.random.set_seed(seed)
    return list(mlm_dataset(sequences, special_ids, masking, batch_size, False, seed))
