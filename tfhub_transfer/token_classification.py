"""Token classification (NER): CoNLL reader, word-to-word-piece alignment, tagger model, entity F1, export.

Word-level tags are predicted at the first word piece of each word. The model
takes the encoder inputs plus `word_positions` ([batch, words], the index of each
word's first piece) and returns one row of tag logits per word. Words that do not
fit in `seq_length` are cut (and predicted `O` by the export).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.handles import resolve_encoder
from tfhub_transfer.encoders.loading import check_compatible, load_encoder_layer
from tfhub_transfer.errors import DataError
from tfhub_transfer.layer_mix import LayerMix, StackLayers
from tfhub_transfer.model import apply_transfer_mode, encoder_inputs
from tfhub_transfer.preprocessing import AUTOTUNE, TextPreprocessor
from tfhub_transfer.transfer_model import TransferModel
from tfhub_transfer.transfer_modes import TransferMode


# -- data ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TaggedSentences:
    words: list[list[str]]
    tags: list[list[str]] | None
    source: str
    lines: list[int]  # the line each sentence starts on

    def __len__(self) -> int:
        return len(self.words)

    def subset(self, indices) -> TaggedSentences:
        pick = list(indices)
        return TaggedSentences([self.words[i] for i in pick],
                               None if self.tags is None else [self.tags[i] for i in pick],
                               self.source, [self.lines[i] for i in pick])


def read_conll(path: str | Path, tag_column: int = -1, max_sentences: int | None = None) -> TaggedSentences:
    """Reads CoNLL column format: one `word ... tag` line per token, blank lines between sentences."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist")
    words, tags, lines, current, current_tags, start = [], [], [], [], [], 1
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if current:
                    words.append(current), tags.append(current_tags), lines.append(start)
                    if max_sentences and len(words) >= max_sentences:
                        break
                current, current_tags, start = [], [], number + 1
                continue
            if len(fields) < 2:
                raise DataError(f"{path}: line {number} has no tag column: {line.strip()!r}")
            if not current:
                start = number
            current.append(fields[0])
            current_tags.append(fields[tag_column])
    if current and not (max_sentences and len(words) >= max_sentences):
        words.append(current), tags.append(current_tags), lines.append(start)
    if not words:
        raise DataError(f"{path} has no sentences")
    return TaggedSentences(words, [to_iob2(t) for t in tags], str(path), lines)


def to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (or already IOB2) tags to IOB2: an entity always starts with B-."""
    out, previous = [], "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def entity_spans(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) spans of an IOB2 sequence; a stray I- starts a new span, as seqeval does."""
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        if kind is not None and not (tag.startswith("I-") and tag[2:] == kind):
            spans.add((kind, start, i))
            kind = None
        if tag.startswith("B-") or (tag.startswith("I-") and kind is None):
            kind, start = tag[2:], i
    return spans


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision / recall / F1 (CoNLL evaluation)."""
    tp = fp = fn = 0
    for g, p in zip(gold, predicted):
        gs, ps = entity_spans(g), entity_spans(p)
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "entities": tp + fn}


# -- alignment -------------------------------------------------------------------------------------
def align_words(preprocessor: TextPreprocessor, words: tf.RaggedTensor, seq_length: int):
    """Word pieces of each word, cut to fit; returns (encoder inputs + word_positions, words kept)."""
    pieces = preprocessor.module.tokenize(words.flat_values)
    if pieces.shape.rank == 3:
        pieces = pieces.merge_dims(-2, -1)
    pieces = tf.cast(pieces, tf.int32)
    counts = tf.maximum(pieces.row_lengths(), 1)  # a word with no pieces still holds a slot
    unk = preprocessor.special_ids["unknown_id"]
    pieces = tf.where(tf.expand_dims(pieces.row_lengths() > 0, -1), pieces.to_tensor(unk), unk)
    pieces = tf.RaggedTensor.from_tensor(pieces, lengths=counts)
    per_sentence_counts = tf.RaggedTensor.from_row_lengths(counts, words.row_lengths())
    ends = tf.math.cumsum(per_sentence_counts, axis=1)
    keep = ends <= seq_length - 2
    kept_counts = tf.ragged.boolean_mask(per_sentence_counts, keep)
    by_sentence = tf.RaggedTensor.from_row_lengths(pieces, words.row_lengths())
    kept_pieces = tf.ragged.boolean_mask(by_sentence, keep).merge_dims(1, 2)
    positions = 1 + tf.math.cumsum(kept_counts, axis=1, exclusive=True)
    packed = preprocessor.pack([kept_pieces], seq_length)
    packed["word_positions"] = tf.cast(positions.to_tensor(0), tf.int32)
    return packed, keep


# -- model -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TaggerConfig:
    num_tags: int
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"
    layer_mix: str | None = None
    head: str = "dense"  # dense | bilstm
    dropout: float = 0.1
    seq_length: int = 128
    seed: int = 0
    task: str = "tokens"


class GatherWords(tf_keras.layers.Layer):
    def call(self, features, positions):
        return tf.gather(features, positions, batch_dims=1)


class WordMask(tf_keras.layers.Layer):
    """Real words have a first-piece position >= 1 ([CLS] is 0); padding words have 0."""

    def call(self, positions):
        return tf.not_equal(positions, 0)


def tagging_head(words: tf.Tensor, mask: tf.Tensor, config: TaggerConfig) -> tf.Tensor:
    """Dropout, an optional masked BiLSTM, and per-word tag logits (shared by both tagger models)."""
    words = tf_keras.layers.Dropout(config.dropout, seed=config.seed)(words)
    if config.head == "bilstm":
        words = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(128, return_sequences=True),
                                              name="bilstm")(words, mask=mask)
    return tf_keras.layers.Dense(config.num_tags, name="tags")(words)


def build_tagger(config: TaggerConfig) -> TransferModel:
    """Encoder (optionally a layer mix) -> first-piece features per word -> dense or BiLSTM -> tag logits."""
    mode = TransferMode.parse(config.mode)
    spec = resolve_encoder(config.encoder, config.preprocessor)
    preprocessor = TextPreprocessor(spec.preprocessor)
    layer = load_encoder_layer(spec, trainable=mode.encoder_trainable)
    check_compatible(layer, spec, preprocessor.vocab_size, config.seq_length)
    inputs = encoder_inputs()
    inputs["word_positions"] = tf_keras.Input(shape=(None,), dtype=tf.int32, name="word_positions")
    outputs = layer({k: v for k, v in inputs.items() if k != "word_positions"})
    if config.layer_mix:
        stacked = StackLayers(config.layer_mix == "embeddings", name="stack_layers")(outputs)
        features = LayerMix(config.layer_mix, int(stacked.shape[1]), spec.has_embedding_output,
                            name="layer_mix")(stacked)
    else:
        features = outputs["sequence_output"]
    words = GatherWords(name="first_pieces")(features, inputs["word_positions"])
    logits = tagging_head(words, WordMask()(inputs["word_positions"]), config)
    model = TransferModel(inputs=inputs, outputs=logits, name="tagger")
    model.spec, model.preprocessor, model.config, model.mode = spec, preprocessor, config, mode
    apply_transfer_mode(model, layer, mode, config.seed)
    return model


def make_tagging_dataset(sentences: TaggedSentences, tag_index: dict[str, int] | None,
                         preprocessor: TextPreprocessor, batch_size: int, seq_length: int,
                         shuffle: bool = False, seed: int = 0) -> tf.data.Dataset:
    """Batches of (inputs with word_positions, tag ids [batch, words], weights [batch, words])."""
    words = tf.ragged.constant(sentences.words, dtype=tf.string)
    if sentences.tags is not None and tag_index is not None:
        tags = tf.ragged.constant([[tag_index.get(t, 0) for t in row] for row in sentences.tags], tf.int32)
    else:
        tags = tf.ragged.constant([[0] * len(row) for row in sentences.words], tf.int32)
    dataset = tf.data.Dataset.from_tensor_slices((words, tags))
    if shuffle:
        dataset = dataset.shuffle(len(sentences), seed=seed, reshuffle_each_iteration=True)

    def prepare(batch_words, batch_tags):
        inputs, keep = align_words(preprocessor, batch_words, seq_length)
        kept_tags = tf.ragged.boolean_mask(batch_tags, keep)
        weights = tf.ones_like(kept_tags, tf.float32).to_tensor(0.0)
        return inputs, kept_tags.to_tensor(0), weights

    return dataset.ragged_batch(batch_size).map(prepare, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def predict_tags(model: TransferModel, dataset: tf.data.Dataset, tag_names: Sequence[str],
                 sentences: TaggedSentences) -> list[list[str]]:
    """Tags per word; words cut by seq_length get `O`."""
    out, offset = [], 0
    for inputs, _, weights in dataset:
        ids = np.argmax(model(inputs, training=False).numpy(), axis=-1)
        for row, w in zip(ids, weights.numpy()):
            n_words = len(sentences.words[offset])
            kept = int(w.sum())
            out.append([tag_names[i] for i in row[:kept]] + ["O"] * (n_words - kept))
            offset += 1
    return out


# -- training ----------------------------------------------------------------------------------------
@dataclasses.dataclass
class TaggerTrainConfig:
    """`train_tagger`'s inputs; `tfhub-transfer train-tagger` flags map onto these fields."""

    train: str | Path
    valid: str | Path | None = None
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "finetune"
    layer_mix: str | None = None
    head: str = "dense"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None
    seq_length: int = 128
    max_train_sentences: int | None = None
    max_valid_sentences: int | None = None
    feature_cache: bool = False  # freeze mode: encode once, train mix + head from the cache
    seed: int = 0
    name: str = "tagger"
    output_dir: str | Path = "saved_models"
    export: bool = True
    verbose: int = 1
    distribution: str = "auto"  # see tfhub_transfer.distribution; batch_size is per replica
    dtype: str = "float32"  # encoder compute dtype (bfloat16: encoders this package wrote)


@dataclasses.dataclass
class TaggerResult:
    model: TransferModel
    tag_names: list[str]
    metrics: dict
    history: dict
    export_path: Path | None


def tag_vocabulary(sentences: TaggedSentences) -> list[str]:
    names = sorted({t for row in sentences.tags for t in row} - {"O"}, key=lambda t: (t[2:], t))
    return ["O", *names]


def train_tagger(config: TaggerTrainConfig) -> TaggerResult:
    """Fine-tunes (or trains a head on a frozen) encoder for CoNLL-style tagging; entity F1 on validation."""
    from tfhub_transfer.distribution import global_batch_size, make_distribution
    from tfhub_transfer.encoders.dtypes import encoder_with_dtype
    from tfhub_transfer.export import export_tagger
    from tfhub_transfer.optimizers import optimizer_factory
    from tfhub_transfer.schedules import make_schedule

    strategy = make_distribution(config.distribution)
    batch = global_batch_size(config.batch_size, strategy)
    tf_keras.utils.set_random_seed(config.seed)
    train_sents = read_conll(config.train, max_sentences=config.max_train_sentences)
    if config.valid:
        valid_sents = read_conll(config.valid, max_sentences=config.max_valid_sentences)
    else:
        order = np.random.default_rng(config.seed).permutation(len(train_sents))
        cut = max(1, len(order) // 10)
        train_sents, valid_sents = train_sents.subset(order[cut:]), train_sents.subset(order[:cut])
    names = tag_vocabulary(train_sents)
    index = {n: i for i, n in enumerate(names)}
    unseen = sorted({t for row in valid_sents.tags for t in row} - set(index))
    if unseen:
        raise DataError(f"{valid_sents.source}: tags {unseen} never occur in {train_sents.source}")
    layer_mix = config.layer_mix or ("last" if config.feature_cache else None)
    encoder = encoder_with_dtype(config.encoder, config.dtype, config.preprocessor)
    with strategy.scope():
        model = build_tagger(TaggerConfig(len(names), encoder, config.preprocessor, config.mode,
                                          layer_mix, config.head, seq_length=config.seq_length,
                                          seed=config.seed))
    if config.feature_cache:
        return _train_tagger_from_cache(model, config, train_sents, valid_sents, names, index)
    pre = model.preprocessor
    train_ds = make_tagging_dataset(train_sents, index, pre, batch, config.seq_length, True, config.seed)
    valid_ds = make_tagging_dataset(valid_sents, index, pre, batch, config.seq_length)
    steps = -(-len(train_sents) // batch) * config.epochs
    frozen = model.mode.kind == "freeze"
    rate = config.learning_rate or (1e-3 if frozen else 5e-5)
    with strategy.scope():
        model.compile_transfer(
            optimizer_factory("adamw"), make_schedule("linear", rate, steps),
            loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            weighted_metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
        )
    history = model.fit(train_ds, validation_data=valid_ds, epochs=config.epochs, verbose=config.verbose)
    predicted = predict_tags(model, valid_ds, names, valid_sents)
    metrics = {**entity_f1(valid_sents.tags, predicted), "sentences": len(valid_sents)}
    export_path = None
    if config.export:
        export_path = export_tagger(model, names, config.output_dir, config.name,
                                    info={"validation": metrics})
    return TaggerResult(model, names, metrics,
                        {k: [float(x) for x in v] for k, v in history.history.items()}, export_path)


def _train_tagger_from_cache(model, config: TaggerTrainConfig, train_sents, valid_sents, names, index):
    from tfhub_transfer.cached_training import build_cached_tagger_head, copy_tagger_weights
    from tfhub_transfer.export import export_tagger
    from tfhub_transfer.feature_cache import build_token_feature_cache, cached_token_dataset, read_manifest
    from tfhub_transfer.optimizers import optimizer_factory
    from tfhub_transfer.schedules import make_schedule

    if model.mode.kind != "freeze":
        raise DataError("the feature cache needs transfer mode `freeze` (the encoder must not change)")
    encoder = model.get_layer("encoder")
    paths = [build_token_feature_cache(encoder, model.preprocessor, model.spec, config.seq_length,
                                       sents.words, verbose=config.verbose)
             for sents in (train_sents, valid_sents)]
    manifest = read_manifest(paths[0])
    head = build_cached_tagger_head(model, manifest["layers"], manifest["hidden"])
    tag_ids = [[[index[t] for t in row] for row in sents.tags] for sents in (train_sents, valid_sents)]
    train_ds = cached_token_dataset(paths[0], tag_ids[0], config.batch_size, True, config.seed)
    valid_ds = cached_token_dataset(paths[1], tag_ids[1], config.batch_size)
    steps = -(-len(train_sents) // config.batch_size) * config.epochs
    head.compile_transfer(
        optimizer_factory("adamw"), make_schedule("linear", config.learning_rate or 1e-3, steps),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="token_accuracy")],
    )
    history = head.fit(train_ds, validation_data=valid_ds, epochs=config.epochs, verbose=config.verbose)
    copy_tagger_weights(head, model)
    predicted = predict_tags(head, valid_ds, names, valid_sents)
    metrics = {**entity_f1(valid_sents.tags, predicted), "sentences": len(valid_sents)}
    export_path = (export_tagger(model, names, config.output_dir, config.name, info={"validation": metrics})
                   if config.export else None)
    return TaggerResult(model, names, metrics,
                        {k: [float(x) for x in v] for k, v in history.history.items()}, export_path)
