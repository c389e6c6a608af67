"""Encode once: per-layer pooled encoder features, computed once and trained on for every later epoch.

With a frozen encoder the features never change, so `build_feature_cache` runs the
encoder once over the data (with a progress bar) and writes sharded `.npy` files
of per-layer pooled features [examples, layers, hidden] (float16) under the package's
cache (`cache_dir()/features`: `--cache-dir`, else `$TFHUB_TRANSFER_CACHE`, else
~/.cache/tfhub_transfer; a cache on a URL is shared through a local mirror, see `_place`), saying
whether it was a hit or a miss and how big it is. The cache key
hashes the encoder (handle and its weight files), the preprocessor, the sequence
length, the pooling and every input text, so changed inputs never reuse stale
features. Reading streams shard by shard, so memory stays bounded.

The manifest, written last, records each shard's size and CRC-32. An entry is checked when it is
opened: a missing, truncated or altered shard, or one holding Python objects (never unpickled), is
reported in one line and the entry is rebuilt; the command goes on.

Every layer mix is linear in the layers and `first` / `mean` pooling is linear
per layer, so one cache serves every mix: the mix is trained with the head.

Two token-level caches keep rows of varying length (shards of rows back to back, with
each row's length beside them): a tagger's per-word features (`build_token_feature_cache`)
and, for a BiLSTM head (`--head bilstm`), every real token's features from the top layers
the mix reads (`build_sequence_feature_cache`: one layer for `last`, all for `scalar_mix`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer import storage
from tfhub_transfer.cache import (
    FEATURES_DIR,
    cache_dir,
    check_cache_dir,
    directory_size,
    foreign_files,
    format_size,
    is_remote,
    shared_cache_dir,
)
from tfhub_transfer.encoders.resolve import EncoderSpec, on_storage
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import atomic_directory, file_record, record_damage
from tfhub_transfer.layers.layer_mix import stack_layers
from tfhub_transfer.preprocessing.text import TextPreprocessor, make_dataset
from tfhub_transfer.preprocessing.tokens import align_words
from tfhub_transfer.training.callbacks import progress_bar

CACHE_POOLINGS = ("first", "mean")
MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    pooling: str = "mean"
    seq_length: int = 128
    dtype: str = "float16"

    def __post_init__(self):
        if self.pooling not in CACHE_POOLINGS:
            raise ValueError(f"the feature cache pools with {CACHE_POOLINGS}, not {self.pooling!r} "
                             f"(max pooling does not commute with layer mixes)")


def _fingerprint_dir(path: str) -> str:
    """Changes when a SavedModel's graph or weights change (one on storage such as gs:// is read there)."""
    if is_remote(path) and not on_storage(path):
        return path
    digest = hashlib.sha256()
    root = storage.location(path) if on_storage(path) else Path(path)
    for name in ("saved_model.pb", "variables/variables.index"):
        file = storage.join(root, *name.split("/"))
        if storage.exists(file):
            digest.update(name.encode())
            digest.update(storage.read_bytes(file))
    return digest.hexdigest()


def _report(target: Path, verbose: int, wrote: bool = False) -> None:
    if verbose:
        print(f"feature cache: {'wrote' if wrote else 'hit,'} {format_size(directory_size(target))} at {target}",
              flush=True)


def _features_root(root: str | Path | None) -> storage.Location:
    if root:
        return storage.location(root)
    return storage.join(check_cache_dir(shared_cache_dir() or cache_dir()), FEATURES_DIR)


def _place(root: storage.Location, key: str) -> tuple[Path, str | None]:
    """Where an entry is read and written here, and (for a cache on a URL) where it is shared.

    Shards are memory-mapped, which needs local files: an entry of a cache on a URL (`--cache-dir
    gs://...`) is built in, or copied into, a local mirror under the system's temporary directory, and
    published to the URL with its `_COMPLETE` marker last.
    """
    if not storage.is_url(root):
        return Path(root) / key, None
    mirror = Path(tempfile.gettempdir(), "tfhub_transfer-mirror", hashlib.sha256(root.encode()).hexdigest()[:16])
    return mirror / key, storage.join(root, key)


def _fetched(target: Path, remote: str | None) -> None:
    """Makes the local mirror `target` hold the complete entry at `remote` (if there is one); drops a mirror
    copy whose shared entry is gone or incomplete."""
    if remote is None:
        return
    if not storage.exists(storage.join(remote, storage.COMPLETE)) or storage.complete_damage(remote):
        shutil.rmtree(target, ignore_errors=True)  # the mirror's stale copy is never read as a hit
        return
    if (target / MANIFEST).exists() and damage(target) is None:
        return
    with atomic_directory(target, overwrite=True) as tmp:
        storage.download_tree(remote, tmp)
        (tmp / storage.COMPLETE).unlink(missing_ok=True)


def _published(target: Path, remote: str | None) -> None:
    """Shares a finished local entry at `remote`: its files, then `_COMPLETE` last."""
    if remote is not None:
        storage.rmtree(remote)  # an interrupted earlier write (no marker: never read)
        storage.publish_directory(target, remote)


def shard_record(directory: Path) -> dict[str, dict]:
    """Each `.npy` file's size and CRC-32, for the manifest (written after the shards)."""
    return file_record(directory, "*.npy")


def damage(target: Path) -> str | None:
    """What is wrong with the cache entry `target` (a missing, truncated, altered or pickled shard, an
    unreadable manifest), or None when every shard matches its manifest.

    Args:
        target: a feature-cache entry (a directory holding `manifest.json`).

    Returns:
        A short description of the first problem found, or None.

    Example:
        >>> damage(Path("~/.cache/tfhub_transfer/features/0123abcd").expanduser())
    """
    try:
        recorded = json.loads((target / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is unreadable or lists no shard sizes (an older or interrupted write)"
    problem = record_damage(target, recorded, "*.npy")
    if problem is not None:
        return problem
    pickled = [name for name in recorded if _holds_objects(target / name)]
    return f"{pickled[0]} holds Python objects, which are never loaded (no pickles)" if pickled else None


def _holds_objects(path: Path) -> bool:
    """Whether a shard holds Python objects (or is no readable array): memory-mapping reads only its header and
    refuses object arrays, so nothing is ever unpickled."""
    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return True
    return False


def _found(target: Path, verbose: int) -> bool:
    """Whether `target` holds a complete, undamaged cache entry (a hit, reported); else a miss is reported.
    A damaged entry is reported (even when quiet) and left to be rebuilt."""
    if (target / MANIFEST).exists():
        problem = damage(target)
        if problem is None:
            _report(target, verbose)
            return True
        foreign = foreign_files(FEATURES_DIR, target)
        if foreign:
            raise ConfigError(f"feature cache {target} is damaged ({problem}), and it holds {foreign[0]}, which "
                              "tfhub_transfer did not write: move that out, then run again to rebuild the cache")
        print(f"feature cache: {target} is damaged ({problem}); rebuilding it", file=sys.stderr, flush=True)
        return False
    if verbose:
        print(f"feature cache: miss, writing {target}", flush=True)
    return False


def cache_key(spec: EncoderSpec, feature: FeatureSpec, texts: Sequence[str],
              texts_b: Sequence[str] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "encoder": spec.encoder, "encoder_files": _fingerprint_dir(spec.encoder),
        "preprocessor": spec.preprocessor, "preprocessor_files": _fingerprint_dir(spec.preprocessor),
        "feature": dataclasses.asdict(feature), "pairs": texts_b is not None, "examples": len(texts),
    }, sort_keys=True).encode())
    for i, text in enumerate(texts):
        digest.update(text.encode("utf-8") + b"\0")
        if texts_b is not None:
            digest.update(texts_b[i].encode("utf-8") + b"\1")
    return digest.hexdigest()[:32]


def pooled_layers(outputs: dict, input_mask: tf.Tensor, pooling: str) -> tf.Tensor:
    """[batch, layers, hidden]: every layer's `first` or `mean` pooled vector."""
    stacked = stack_layers(outputs, need_embeddings=False)
    if pooling == "first":
        return stacked[:, :, 0, :]
    mask = tf.cast(input_mask, stacked.dtype)[:, tf.newaxis, :, tf.newaxis]
    return tf.reduce_sum(stacked * mask, axis=2) / tf.maximum(tf.reduce_sum(mask, axis=2), 1.0)


_ENCODE_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _pooled_encoder(encoder_layer, pooling: str):
    """One traced `inputs -> pooled layers` function per encoder layer and pooling, so the training and
    validation texts of one model share a trace instead of tracing it once each."""
    functions = _ENCODE_FUNCTIONS.setdefault(encoder_layer, {})
    if pooling not in functions:
        layer = weakref.ref(encoder_layer)  # a strong reference here would keep the key alive for good

        @tf.function(reduce_retracing=True)  # batches differ in length (dynamic padding)
        def encode(inputs):
            return pooled_layers(layer()(inputs, training=False), inputs["input_mask"], pooling)

        functions[pooling] = encode
    return functions[pooling]


def build_feature_cache(
    encoder_layer, preprocessor: TextPreprocessor, spec: EncoderSpec, feature: FeatureSpec,
    texts: Sequence[str], texts_b: Sequence[str] | None = None, root: str | Path | None = None,
    shard_size: int = 2048, batch_size: int = 64, verbose: int = 1,
) -> Path:
    """Returns the cache directory for these inputs, encoding them first if it does not exist."""
    target, remote = _place(_features_root(root), cache_key(spec, feature, texts, texts_b))
    _fetched(target, remote)
    if _found(target, verbose):
        return target
    dataset = make_dataset(texts, None, preprocessor, batch_size, feature.seq_length, cache=False,
                           texts_b=texts_b)
    encode = _pooled_encoder(encoder_layer, feature.pooling)
    progress = progress_bar(len(texts), "texts", verbose)
    buffer, shard, count = [], 0, 0
    with atomic_directory(target, overwrite=True) as tmp:  # our cache: a stale partial entry may go
        for inputs in dataset:
            values = encode(inputs).numpy().astype(feature.dtype)
            buffer.append(values)
            count += len(values)
            progress.update(count)
            if sum(len(b) for b in buffer) >= shard_size:
                np.save(tmp / f"shard_{shard:05d}.npy", np.concatenate(buffer))
                buffer, shard = [], shard + 1
        if buffer:
            np.save(tmp / f"shard_{shard:05d}.npy", np.concatenate(buffer))
            shard += 1
        first = np.load(tmp / "shard_00000.npy", mmap_mode="r", allow_pickle=False)
        manifest = {"examples": count, "shards": shard, "layers": int(first.shape[1]),
                    "hidden": int(first.shape[2]), "feature": dataclasses.asdict(feature),
                    "encoder": spec.encoder, "preprocessor": spec.preprocessor, "files": shard_record(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    _published(target, remote)
    _report(target, verbose, wrote=True)
    return target


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / MANIFEST).read_text())


def cached_dataset(path: str | Path, targets: np.ndarray, batch_size: int = 32, shuffle: bool = False,
                   seed: int = 0) -> tf.data.Dataset:
    """Streams (features, targets) batches from the shards; shuffles within and across shards."""
    path = Path(path)
    manifest = read_manifest(path)
    shards = sorted(path.glob("shard_*.npy"))
    starts = np.cumsum([0] + [np.load(s, mmap_mode="r", allow_pickle=False).shape[0] for s in shards])
    if starts[-1] != len(targets):
        raise ValueError(f"cache {path} holds {starts[-1]} examples but {len(targets)} targets were given")

    def generate():  # whole batches from numpy: a Python loop per row made reading the epoch's bottleneck
        rng = np.random.default_rng(seed + generate.epoch) if shuffle else None
        generate.epoch += 1
        order = rng.permutation(len(shards)) if shuffle else range(len(shards))
        carried = (np.zeros((0, *feature_shape), np.float32), targets[:0])
        for index in order:
            features = np.load(shards[index], allow_pickle=False)
            rows = rng.permutation(len(features)) if shuffle else np.arange(len(features))
            features, shard_targets = features[rows].astype(np.float32), targets[starts[index] + rows]
            if len(carried[0]):  # the last shard's remainder starts this shard's first batch
                features = np.concatenate([carried[0], features])
                shard_targets = np.concatenate([carried[1], shard_targets])
            whole = len(features) - len(features) % batch_size
            for start in range(0, whole, batch_size):
                yield features[start:start + batch_size], shard_targets[start:start + batch_size]
            carried = (features[whole:], shard_targets[whole:])
        if len(carried[0]):
            yield carried

    generate.epoch = 0
    feature_shape = (manifest["layers"], manifest["hidden"])
    target_spec = tf.TensorSpec((None, *targets.shape[1:]), tf.as_dtype(targets.dtype))
    dataset = tf.data.Dataset.from_generator(
        generate, output_signature=(tf.TensorSpec((None, *feature_shape), tf.float32), target_spec))
    batches = -(-len(targets) // batch_size)
    return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


# -- token level (taggers) -------------------------------------------------------------------------
def token_cache_key(spec: EncoderSpec, seq_length: int, sentences: Sequence[Sequence[str]]) -> str:
    joined = ["\u2028".join(words) for words in sentences]
    return "tokens-" + cache_key(spec, FeatureSpec("first", seq_length), joined)


def build_token_feature_cache(
    encoder_layer, preprocessor: TextPreprocessor, spec: EncoderSpec, seq_length: int,
    sentences: Sequence[Sequence[str]], root: str | Path | None = None, shard_size: int = 1024,
    batch_size: int = 32, verbose: int = 1,
) -> Path:
    """Per-layer features of each word's first piece: shards of [words, layers, hidden] + lengths."""
    target, remote = _place(_features_root(root), token_cache_key(spec, seq_length, sentences))
    _fetched(target, remote)
    if _found(target, verbose):
        return target

    @tf.function(reduce_retracing=True)  # batches differ in length (dynamic padding)
    def encode(words):
        inputs, keep = align_words(preprocessor, words, seq_length)
        positions = inputs.pop("word_positions")
        stacked = stack_layers(encoder_layer(inputs, training=False), need_embeddings=False)
        gathered = tf.gather(stacked, positions, axis=2, batch_dims=1)  # [batch, layers, words, hidden]
        kept = tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)
        return tf.transpose(gathered, [0, 2, 1, 3]), kept

    batches = (encode(tf.ragged.constant([list(s) for s in sentences[start : start + batch_size]]))
               for start in range(0, len(sentences), batch_size))
    _write_rows(target, batches, progress_bar(len(sentences), "sentences", verbose), shard_size,
                {"level": "tokens", "encoder": spec.encoder}, "sentences")
    _published(target, remote)
    _report(target, verbose, wrote=True)
    return target


def cached_token_dataset(path: str | Path, tags: Sequence[Sequence[int]], batch_size: int = 32,
                         shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """Batches of ((features [b, words, layers, hidden], word mask), tag ids, weights) from the shards."""
    path = Path(path)
    manifest = read_manifest(path)

    def generate():
        for sentence, features in _rows(path, False, None):
            count = len(features)
            yield (features, np.ones(count, bool)), np.asarray(tags[sentence][:count], np.int32), \
                np.ones(count, np.float32)

    shape = (None, manifest["layers"], manifest["hidden"])
    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        (tf.TensorSpec(shape, tf.float32), tf.TensorSpec([None], tf.bool)),
        tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.float32)))
    if shuffle:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    batches = -(-len(tags) // batch_size)
    return dataset.padded_batch(batch_size).apply(
        tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


# -- rows of varying length (both token-level caches) --------------------------------------------
def _write_rows(target: Path, batches, progress, shard_size: int, about: dict, count_name: str) -> None:
    """Writes (features [batch, items, layers, hidden], item counts [batch]) batches as float16 shards of each
    row's first `count` items back to back, with the counts beside them and a manifest; all or nothing."""
    rows, lengths, shard, done = [], [], 0, 0
    with atomic_directory(target, overwrite=True) as tmp:  # our cache: a stale partial entry may go
        def flush(index):
            np.save(tmp / f"shard_{index:05d}.npy", np.concatenate(rows))
            np.save(tmp / f"lengths_{index:05d}.npy", np.asarray(lengths, np.int32))

        for features, kept in batches:
            for row, count in zip(features.numpy().astype(np.float16), kept.numpy()):
                rows.append(row[:count])
                lengths.append(int(count))
            done += len(kept)
            progress.update(done)
            if len(lengths) >= shard_size:
                flush(shard)
                rows, lengths, shard = [], [], shard + 1
        if lengths:
            flush(shard)
            shard += 1
        first = np.load(tmp / "shard_00000.npy", mmap_mode="r", allow_pickle=False)
        manifest = {count_name: done, "shards": shard, "layers": int(first.shape[1]),
                    "hidden": int(first.shape[2]), **about, "files": shard_record(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))


def _rows(path: Path, shuffle: bool, rng) -> Iterator[tuple[int, np.ndarray]]:
    """(row index, [items, layers, hidden] float32 features) of every cached row; shards and the rows in each
    in a random order with `shuffle`."""
    shards = sorted(path.glob("shard_*.npy"))
    counts = [np.load(shard.with_name(shard.name.replace("shard_", "lengths_")), allow_pickle=False)
              for shard in shards]
    firsts = np.cumsum([0] + [len(c) for c in counts])
    for index in (rng.permutation(len(shards)) if shuffle else range(len(shards))):
        features = np.load(shards[index], allow_pickle=False).astype(np.float32)
        offsets = np.concatenate([[0], np.cumsum(counts[index])])
        for i in (rng.permutation(len(counts[index])) if shuffle else range(len(counts[index]))):
            yield firsts[index] + i, features[offsets[i] : offsets[i + 1]]


# -- token sequences (a BiLSTM head over a sentence's token states) ----------------------------------
def sequence_cache_key(spec: EncoderSpec, seq_length: int, top_layers: int | None, texts: Sequence[str],
                       texts_b: Sequence[str] | None = None) -> str:
    return f"sequence{top_layers or 'all'}-" + cache_key(spec, FeatureSpec("mean", seq_length), texts, texts_b)


def build_sequence_feature_cache(
    encoder_layer, preprocessor: TextPreprocessor, spec: EncoderSpec, seq_length: int, top_layers: int | None,
    texts: Sequence[str], texts_b: Sequence[str] | None = None, root: str | Path | None = None,
    shard_size: int = 1024, batch_size: int = 64, verbose: int = 1,
) -> Path:
    """Every real token's features from the top `top_layers` layers (None: all, embeddings first), as the model
    reads them: shards of [tokens, layers, hidden] + each text's token count."""
    target, remote = _place(_features_root(root), sequence_cache_key(spec, seq_length, top_layers, texts, texts_b))
    _fetched(target, remote)
    if _found(target, verbose):
        return target

    @tf.function(reduce_retracing=True)  # batches differ in length (dynamic padding)
    def encode(inputs):
        stacked = stack_layers(encoder_layer(inputs, training=False), need_embeddings=False)
        kept = stacked[:, -top_layers:] if top_layers else stacked
        return tf.transpose(kept, [0, 2, 1, 3]), tf.reduce_sum(tf.cast(inputs["input_mask"], tf.int32), axis=1)

    dataset = make_dataset(texts, None, preprocessor, batch_size, seq_length, cache=False, texts_b=texts_b)
    _write_rows(target, (encode(inputs) for inputs in dataset), progress_bar(len(texts), "texts", verbose),
                shard_size, {"level": "sequence", "encoder": spec.encoder, "seq_length": seq_length}, "examples")
    _published(target, remote)
    _report(target, verbose, wrote=True)
    return target


def cached_sequence_dataset(path: str | Path, targets: np.ndarray, batch_size: int = 32, shuffle: bool = False,
                            seed: int = 0) -> tf.data.Dataset:
    """Batches of ({"token_features": [b, tokens, layers, hidden], "token_mask": [b, tokens]}, targets), padded
    per batch; with `shuffle`, a new order each epoch."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest["examples"] != len(targets):
        raise ValueError(f"cache {path} holds {manifest['examples']} examples but {len(targets)} targets were given")

    def generate():
        rng = np.random.default_rng(seed + generate.epoch)
        generate.epoch += 1
        for row, features in _rows(path, shuffle, rng):
            yield {"token_features": features, "token_mask": np.ones(len(features), bool)}, targets[row]

    generate.epoch = 0
    shape = (None, manifest["layers"], manifest["hidden"])
    dataset = tf.data.Dataset.from_generator(generate, output_signature=(
        {"token_features": tf.TensorSpec(shape, tf.float32), "token_mask": tf.TensorSpec([None], tf.bool)},
        tf.TensorSpec(targets.shape[1:], tf.as_dtype(targets.dtype))))
    batches = -(-len(targets) // batch_size)
    return dataset.padded_batch(batch_size).apply(
        tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)
