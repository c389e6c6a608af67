"""Packing: the examples of a batch laid end to end in as few rows as fit, so almost no token is padding.

A batch of B padded encoder inputs ([B, L], `input_mask` 0/1) becomes R <= B rows of at most
`row_length` word pieces (a longer example gets a row of its own). In each row, `input_mask` numbers
the examples it holds (1, 2, ... in order; 0 is padding): an encoder that reads packed rows
(`BertConfig.packed_segments`) keeps each example's attention inside its own segment and restarts
its positions there, and `SequencePooling(segments=True)` pools each segment apart, so the model
outputs R x S slots (S: the most examples in one row) in row-major order.

The inputs also carry `EXAMPLE_SLOTS`, each example's slot, and the targets and weights stay as they
were: the training step gathers the slots' outputs back into the batch's order, so the loss, its
gradient and the metrics are the unpacked batch's. Examples go into rows first-fit by decreasing
length (`assign_rows`), a choice that depends only on the lengths, so a seeded stream packs reproducibly.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras

EXAMPLE_SLOTS = "packed_example_slots"  # an input beside the encoder's: where each example's output is


def first_fit(lengths: np.ndarray, row_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Each example's row and its slot in that row: longest first, into the first row with room
    (a new row when none has; an example longer than `row_length` fills a row alone)."""
    rows = np.zeros(len(lengths), np.int32)
    slots = np.zeros(len(lengths), np.int32)
    room: list[int] = []  # free word pieces per row
    held: list[int] = []  # examples per row
    for i in np.argsort(-np.asarray(lengths), kind="stable"):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), len(room))
        if row == len(room):
            room.append(row_length)
            held.append(0)
        rows[i], slots[i] = row, held[row]
        room[row] -= int(lengths[i])
        held[row] += 1
    return rows, slots


def assign_rows(lengths: np.ndarray, row_length: int, tries: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """`first_fit` into rows of at most `row_length` pieces, with the row length that leaves the least
    padding: a batch fills few rows, and a last row half full would pad as much as buckets do. Besides
    `row_length` it tries rows just long enough (and 10 % longer) for the fewest rows that can hold the
    batch and a few more."""
    lengths = np.asarray(lengths)
    total, longest = int(lengths.sum()), int(lengths.max(initial=1))
    fewest = max(1, -(-total // row_length))
    capacities = {row_length} | {min(row_length, -(-int(total * slack) // count))
                                 for count in range(fewest, fewest + tries) for slack in (1.0, 1.1)}
    best = None
    for capacity in sorted(capacities):
        rows, slots = first_fit(lengths, max(longest, capacity))
        padded = (rows.max(initial=0) + 1) * np.bincount(rows, weights=lengths).max(initial=0)
        if best is None or padded < best[0]:
            best = (padded, rows, slots)
    return best[1], best[2]


def pack_batch(inputs: dict, row_length: int = 128) -> dict:
    """One batch of padded encoder inputs -> packed rows, with each example's slot (see the module docstring)."""
    mask = inputs["input_mask"]
    lengths = tf.reduce_sum(tf.cast(mask > 0, tf.int32), axis=1)
    rows, slots = tf.numpy_function(lambda n: assign_rows(n, row_length), [lengths], (tf.int32, tf.int32),
                                    stateful=False)
    rows.set_shape(lengths.shape)
    slots.set_shape(lengths.shape)
    order = tf.argsort(rows * tf.shape(mask)[0] + slots)  # examples in the order they sit in the rows
    row_lengths = tf.math.unsorted_segment_sum(lengths, rows, tf.reduce_max(rows) + 1)

    def laid_out(pieces: tf.RaggedTensor) -> tf.Tensor:
        return tf.RaggedTensor.from_row_lengths(tf.gather(pieces, order).flat_values, row_lengths).to_tensor()

    def real(values: tf.Tensor) -> tf.RaggedTensor:
        return tf.RaggedTensor.from_tensor(values, lengths=lengths)

    segments = tf.RaggedTensor.from_row_lengths(tf.repeat(slots + 1, lengths), lengths)  # each token's slot + 1
    return {"input_word_ids": laid_out(real(inputs["input_word_ids"])), "input_mask": laid_out(segments),
            "input_type_ids": laid_out(real(inputs["input_type_ids"])),
            EXAMPLE_SLOTS: rows * (tf.reduce_max(slots) + 1) + slots}


def packed_batches(dataset: tf.data.Dataset, row_length: int) -> tf.data.Dataset:
    """Batches of (encoder inputs, targets[, weights]) -> the same with the inputs packed (`pack_batch`)."""

    def pack(*element):
        inputs, targets, weights = tf_keras.utils.unpack_x_y_sample_weight(element)
        packed = pack_batch(inputs, row_length)
        return (packed, targets) if weights is None else (packed, targets, weights)

    return dataset.map(pack, num_parallel_calls=tf.data.AUTOTUNE)


def slot_outputs(outputs: tf.Tensor, example_slots: tf.Tensor) -> tf.Tensor:
    """A packed batch's [slots, ...] outputs -> [examples, ...], in the batch's order."""
    return tf.gather(outputs, example_slots)
