"""Contrastive pairs for few-shot transfer (SetFit's recipe): pairs of labelled texts that share a class or not.

By default every unique pair of examples is taken once and the rarer kind (same class or not) is
repeated until the kinds are balanced, as SetFit 1.x's default sampling does; past PAIR_BUDGET a
balanced sample of them. With `iterations`, each iteration gives every example one positive partner
(another example of its class) and one negative partner (an example of another class), so positives
and negatives are exactly balanced and every class takes part in proportion to its examples. A
sentence encoder fine-tuned to give positive pairs cosine 1 and negative pairs cosine 0 pulls each
class together before a head is fitted on its embeddings (Tunstall et al. 2022, "Efficient Few-Shot
Learning Without Prompts").

`pair_dataset` streams the pairs as batches of interleaved texts (a pair's two texts are neighbouring
rows, so the encoder runs once a batch), each text tokenised once up front; epoch e's order depends only
on (seed, e), as in every training stream.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.preprocessing.text import AUTOTUNE, TextPreprocessor, epoch_stream, without_autotune
from tfhub_transfer.transfer.modes.contrastive import CONTRASTIVE_ITERATIONS, PAIR_BUDGET


@dataclasses.dataclass(frozen=True)
class ContrastivePairs:
    """Index pairs into the labelled examples and their target cosine (1.0 same class, 0.0 not)."""

    first: np.ndarray
    second: np.ndarray
    similarity: np.ndarray

    def __len__(self) -> int:
        return len(self.first)


def _same_class_groups(targets: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(members, non-members) per class of single-label targets."""
    classes = np.unique(targets)
    return [(np.flatnonzero(targets == c), np.flatnonzero(targets != c)) for c in classes]


def build_pairs(targets: Sequence | np.ndarray, iterations: int | None = None, seed: int = 0,
                budget: int = PAIR_BUDGET) -> ContrastivePairs:
    """Balanced positive and negative pairs of the examples, drawn reproducibly from `seed`.

    Args:
        targets: class ids (single-label) or multi-hot rows (multi-label: a pair is positive when the two
            examples share a label).
        iterations: None: every unique pair once, the rarer kind repeated to balance, at most `budget`
            pairs (a balanced sample past it); N: N positive and N negative partners per example.
        seed: the draw's seed.
        budget: the most pairs drawn when `iterations` is None.

    Returns:
        The pairs as index arrays and target cosines. A class with one example pairs it with itself as
        its positive.

    Example:
        >>> len(build_pairs([0, 0, 0, 1, 1, 1]))  # 6 same-class pairs, 9 across: 9 + 9
        18
    """
    targets = np.asarray(targets)
    if iterations is not None and iterations < 1:
        raise ConfigError(f"contrastive pair iterations must be a whole number >= 1, not {iterations}")
    if targets.ndim == 2:
        iterations = iterations or max(1, min(CONTRASTIVE_ITERATIONS, budget // max(2 * len(targets), 1)))
        return _multi_label_pairs(targets, iterations, seed)
    if targets.ndim != 1 or len(np.unique(targets)) < 2:
        raise ConfigError("contrastive mode needs labelled examples of at least two classes (it pairs "
                          "texts of the same class against texts of other classes)")
    if iterations is None:
        if len(targets) * (len(targets) - 1) // 2 <= UNIQUE_PAIRS_LISTED:
            return _unique_pairs(targets, seed, budget)
        iterations = max(1, budget // (2 * len(targets)))  # too many to list: the same balanced draw, sampled
    return _iterated_pairs(targets, iterations, seed)


# Listing every unique pair costs memory in examples squared; past this many, build_pairs samples instead.
UNIQUE_PAIRS_LISTED = 8 * PAIR_BUDGET


def _unique_pairs(targets: np.ndarray, seed: int, budget: int) -> ContrastivePairs:
    """Every unique pair once, the rarer kind repeated to balance (past `budget`: budget / 2 of each kind)."""
    rng = np.random.default_rng(seed)
    first, second = np.triu_indices(len(targets), k=1)
    same = targets[first] == targets[second]
    positives, negatives = np.flatnonzero(same), np.flatnonzero(~same)
    count = min(max(len(positives), len(negatives)), max(budget // 2, 1))
    if not len(positives):  # every class has one example: each pairs with itself
        itself = np.arange(len(targets))
        first, second = np.concatenate([first, itself]), np.concatenate([second, itself])
        positives = np.arange(len(same), len(first))
        same = np.concatenate([same, np.ones(len(targets), bool)])
    picked = np.concatenate([_balanced(positives, count, rng), _balanced(negatives, count, rng)])
    return ContrastivePairs(first[picked], second[picked], same[picked].astype(np.float32))


def _balanced(kind: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` of `kind`: a sample without repeats when there are enough, else all of them and repeats."""
    if count <= len(kind):
        return rng.choice(kind, count, replace=False)
    return np.concatenate([kind, rng.choice(kind, count - len(kind), replace=True)])


def _iterated_pairs(targets: np.ndarray, iterations: int, seed: int) -> ContrastivePairs:
    rng = np.random.default_rng(seed)
    first, second, similarity = [], [], []
    for _ in range(iterations):
        for members, others in _same_class_groups(targets):
            size = len(members)
            # A random other member of the class: shift each member's position by 1..size-1 (itself if alone).
            shift = rng.integers(1, size, size=size) if size > 1 else np.zeros(1, np.int64)
            positives = members[(np.arange(size) + shift) % size]
            negatives = others[rng.integers(0, len(others), size=size)]
            first += [members, members]
            second += [positives, negatives]
            similarity += [np.ones(size, np.float32), np.zeros(size, np.float32)]
    return ContrastivePairs(np.concatenate(first), np.concatenate(second), np.concatenate(similarity))


def _multi_label_pairs(rows: np.ndarray, iterations: int, seed: int) -> ContrastivePairs:
    shared = (rows.astype(np.float32) @ rows.T.astype(np.float32)) > 0
    anchors = [i for i in range(len(rows)) if not shared[i].all()]
    if not anchors:
        raise ConfigError("contrastive mode needs examples that share no label (every pair here shares one)")
    rng = np.random.default_rng(seed)
    first, second, similarity = [], [], []
    for _ in range(iterations):
        for i in anchors:
            positives = np.flatnonzero(shared[i] & (np.arange(len(rows)) != i))
            negatives = np.flatnonzero(~shared[i])
            first += [i, i]
            second += [int(rng.choice(positives)) if len(positives) else i, int(rng.choice(negatives))]
            similarity += [1.0, 0.0]
    return ContrastivePairs(np.asarray(first), np.asarray(second), np.asarray(similarity, np.float32))


@dataclasses.dataclass
class PairExamples:
    """The texts and the pairs drawn from them: what the pair encoder trains on (its length counts pairs)."""

    texts: list[str]
    pairs: ContrastivePairs

    def __len__(self) -> int:
        return len(self.pairs)


def pair_dataset(examples: PairExamples, preprocessor: TextPreprocessor, batch_size: int, seq_length: int,
                 epochs: int = 1, seed: int = 0, start_epoch: int = 0, start_step: int = 0,
                 shuffle: bool = True, drop_remainder: bool = False,
                 static_length: bool = False) -> tf.data.Dataset:
    """Batches of (encoder inputs [2 x batch, length], [2 x batch, 1] target cosine) for epochs
    `start_epoch..epochs-1`, starting `start_step` batches in.

    A pair's two texts are neighbouring rows (a0, b0, a1, b1, ...), each row carrying its pair's target,
    so the encoder runs once per batch and any even split across replicas keeps the pairs whole.
    """
    tokens = preprocessor.tokenize(tf.constant(list(examples.texts)))[:, : seq_length - 2]
    pairs = examples.pairs
    rows = tf.data.Dataset.from_tensor_slices(
        (pairs.first.astype(np.int32), pairs.second.astype(np.int32), pairs.similarity[:, None]))

    def batches(dataset: tf.data.Dataset, epoch_seed: int) -> tf.data.Dataset:
        return dataset.batch(batch_size, drop_remainder=drop_remainder)

    def pack(first, second, similarity):
        interleaved = tf.reshape(tf.stack([first, second], axis=1), [-1])
        packed = preprocessor.pack([tf.gather(tokens, interleaved)], seq_length, static_length)
        return packed, tf.repeat(similarity, 2, axis=0)

    stream = epoch_stream(rows, len(pairs), batches, epochs, seed, start_epoch, start_step, shuffle)
    # A pair fit lasts seconds to minutes: autotuning gains nothing there and its iterator's end could stall it.
    return without_autotune(stream.map(pack, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE))
