"""`TokenClassifier` (NER): encoder (optionally a layer mix) -> each word's first piece -> tag logits.

The model takes the encoder inputs plus `word_positions` ([batch, words], the index of
each word's first piece) and returns one row of tag logits per word. `fit` and `predict`
also take sentences as lists of words (tags as lists of tag names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import ModelConfig, TransferConfig
from tfhub_transfer.data.conll import TaggedSentences
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.export.saved_model import export_tagger
from tfhub_transfer.export.serving import check_format
from tfhub_transfer.layers.heads import (
    GatherWords,
    WordMask,
    check_head,
    deserialize_head,
    serialize_head,
    tagging_head,
)
from tfhub_transfer.models.backbone import apply_transfer_mode, encoder_inputs, load_encoder, token_states
from tfhub_transfer.models.base import TaskModel, register
from tfhub_transfer.models.inputs import Given, check_label_names, check_num_classes
from tfhub_transfer.preprocessing.tokens import make_tagging_dataset, make_tagging_stream
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.modes.auto import DataProfile, resolve_mode


@dataclasses.dataclass(frozen=True)
class TaggerConfig:
    """What a `TokenClassifier` is built from."""

    num_tags: int
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "auto"  # auto: the decision table's rule for token labels (transfer.modes.auto), fixed at build
    layer_mix: str | None = None
    head: str | dict = "dense"  # dense | bilstm (layers.heads), or a head layer of your own as its Keras config
    dropout: float = 0.1
    seq_length: int = 128
    seed: int = 0
    task: str = "tokens"
    embedding_lr_multiplier: float | None = None

    @classmethod
    def from_slices(cls, model: ModelConfig, transfer: TransferConfig, num_tags: int, seed: int = 0) -> TaggerConfig:
        """The tagger config that the `train --task tokens` options' slices describe.

        Args:
          model: the backbone and head options (config.ModelConfig); `dtype` picks the encoder's variant.
          transfer: the transfer mode and its options; with `feature_cache` the layer mix defaults to the last layer.
          num_tags, seed: what the data and the run say.
        Returns:
          A TaggerConfig.
        """
        return cls(num_tags, encoder_variant(model.encoder, model.dtype, model.preprocessor), model.preprocessor,
                   transfer.mode, model.layer_mix or ("last" if transfer.feature_cache else None), model.head,
                   model.dropout, model.seq_length, seed, embedding_lr_multiplier=transfer.embedding_lr_multiplier)


@register
class TokenClassifier(TaskModel):
    """A tagger on a TF Hub encoder; outputs tag logits per word.

    Args:
      config: a `TaggerConfig` (or its dict); `from_encoder` builds one.
      label_names: the tag names (IOB2, `O` first); tag id i is `label_names[i]`.
    Example:
      >>> from tfhub_transfer import TokenClassifier
      >>> model = TokenClassifier.from_encoder("default", tags=["O", "B-PER", "I-PER"], seq_length=32)
      >>> len(model.predict_tags(["John lives in Paris"])[0])
      4
    """

    task = "tokens"
    new_head = True

    def __init__(self, config: TaggerConfig | dict, label_names: Sequence[str] | None = None, **kwargs):
        config = TaggerConfig(**config) if isinstance(config, dict) else config
        check_head(config.head)
        custom = None  # a head layer of your own: dropout, then it maps each word's features to tag logits
        if isinstance(config.head, tf_keras.layers.Layer):
            custom, config = config.head, dataclasses.replace(config, head=serialize_head(config.head))
        elif isinstance(config.head, dict):
            custom = deserialize_head(config.head)
        choice = resolve_mode(TransferMode.parse(config.mode), DataProfile.token_labels())
        if choice is not None:  # auto: token labels get one recipe whatever the data, so it is chosen now
            config = dataclasses.replace(config, mode=choice.mode)
        mode = TransferMode.parse(config.mode, config.embedding_lr_multiplier)
        spec, preprocessor, layer = load_encoder(config, mode)
        inputs = encoder_inputs()
        inputs["word_positions"] = tf_keras.Input(shape=(None,), dtype=tf.int32, name="word_positions")
        states = token_states(layer({k: v for k, v in inputs.items() if k != "word_positions"}), config, spec)
        features = states["sequence_output"] if isinstance(states, dict) else states
        words = GatherWords(name="first_pieces")(features, inputs["word_positions"])
        if custom is not None:
            logits = custom(tf_keras.layers.Dropout(config.dropout, seed=config.seed)(words))
        else:
            logits = tagging_head(words, WordMask()(inputs["word_positions"]), config.num_tags, config.head,
                                  config.dropout, config.seed)
        super().__init__(inputs=inputs, outputs=logits, name=kwargs.pop("name", "tagger"), **kwargs)
        self._setup(config, mode, spec, preprocessor, label_names)
        apply_transfer_mode(self, layer, mode, config.seed)

    @classmethod
    def from_encoder(cls, encoder: str = "default", tags: Sequence[str] | None = None,
                     num_tags: int | None = None, **options) -> TokenClassifier:
        """A tagger for `tags` (IOB2 names, `O` first) or `num_tags`; options are `TaggerConfig` fields.

        `head` is a registered head name (`dense`, `bilstm`) or a tf_keras layer instance that maps each word's
        features [batch, words, hidden] to tag logits [batch, words, num_tags] (registered with
        `tf_keras.utils.register_keras_serializable`, so that `save` / `load` rebuild it). `mode` is `auto` by
        default: the decision table's rule for token labels (every layer trains, `finetune`), chosen when the model
        is built, since it does not depend on the data; any other mode is taken as given.
        """
        tags = check_label_names(tags, "tags")
        num_tags = num_tags if num_tags is not None else (len(tags) if tags else None)
        if num_tags is None:
            raise ConfigError("give the tag names (tags=[...]) or num_tags")
        num_tags = check_num_classes(num_tags, "num_tags")
        if tags and len(tags) != num_tags:
            raise ConfigError(f"tags holds {len(tags)} names but num_tags={num_tags}; give one of them")
        return cls(TaggerConfig(num_tags=num_tags, encoder=encoder, **options), tags)


    @property
    def tag_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names or [])}

    def _sentences(self, x, y=None) -> TaggedSentences:
        if isinstance(x, TaggedSentences):
            return x
        words = [s.split() if isinstance(s, str) else list(s) for s in x]
        return TaggedSentences(words, [list(t) for t in y] if y is not None else None, "<in memory>",
                               list(range(1, len(words) + 1)))

    def _given(self, x, y=None, sample_weight=None, method: str = "fit") -> Given:
        """Sentences (word lists or whitespace-separated strings) with one tag list each, or model inputs."""
        forms = "a list of sentences, each a list of words or a whitespace-separated string"
        if x is None or isinstance(x, (str, bytes)):
            raise ConfigError(f"{method}(x={x!r}): x must be {forms}" + ("" if x is None else " (a list, even of one)"))
        if y is not None and self._is_raw(x) and len(y) != len(x):
            raise DataError(f"x holds {len(x)} sentences but y holds {len(y)} tag lists: give one per sentence")
        if method in ("fit", "evaluate") and isinstance(x, (list, tuple)) and not x:
            raise DataError(f"{method}(): x holds no sentences; give at least one")
        return Given(x, y, sample_weight, raw=False)

    def _is_raw(self, x) -> bool:
        return isinstance(x, TaggedSentences) or (isinstance(x, (list, tuple)) and bool(x)
                                                   and isinstance(x[0], (list, tuple, str)))

    def encode_examples(self, x, y=None, batch_size=32, shuffle=False, seed=0) -> tf.data.Dataset:
        if y is not None and not self.label_names:
            raise ConfigError("fit on tag names needs a tagger built with tags=[...]")
        return make_tagging_dataset(self._sentences(x, y), self.tag_index, self.preprocessor, batch_size,
                                    self.seq_length, shuffle, seed)

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        if static_length:
            raise ConfigError("token classification does not run on TPUs yet (it needs static shapes)")
        return make_tagging_stream(examples, self.tag_index, self.preprocessor, batch_size, self.seq_length,
                                   epochs, seed, start.epoch, start.step, shuffle, bucket, drop_remainder)

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        return make_tagging_dataset(examples, self.tag_index, self.preprocessor, batch_size, self.seq_length)

    def outputs_on(self, dataset: tf.data.Dataset) -> list[np.ndarray]:
        return per_word_outputs(self, dataset)

    def predict_tags(self, sentences, batch_size: int = 32) -> list[list[str]]:
        """Tags per word (sentences as word lists or whitespace-separated strings); words cut by seq_length get `O`."""
        sentences = self._sentences(sentences)
        rows = self.outputs_on(self.evaluation_dataset(sentences, batch_size))
        return tags_from_outputs(rows, self.label_names, sentences)

    def export(self, out_dir: str | Path, name: str | None = None, version: int | None = None,
               format: str = "saved_model", quantize: str | None = None, **options) -> Path:
        """Writes a SavedModel whose `serving_default` maps sentences to a tag per whitespace word."""
        check_format(format, quantize)
        if format != "saved_model":
            raise ConfigError(f"--format {format} exports sentence classifiers; a tagger exports as saved_model")
        return export_tagger(self, self.label_names, out_dir, name or self.name, version, **options)


def per_word_outputs(model: tf_keras.Model, dataset: tf.data.Dataset) -> list[np.ndarray]:
    """Per-sentence tag logits for the words that fit in seq_length, in order (batches differ in width)."""
    rows = []
    for inputs, _, weights in dataset:
        logits = model(inputs, training=False).numpy()
        rows += [row[: int(w.sum())] for row, w in zip(logits, weights.numpy())]
    return rows


def tags_from_outputs(rows: Sequence[np.ndarray], tag_names: Sequence[str],
                      sentences: TaggedSentences) -> list[list[str]]:
    """Tag names per word from per-word logits; words cut by seq_length get `O`."""
    return [[tag_names[i] for i in np.argmax(row, axis=-1)] + ["O"] * (len(words) - len(row))
            for row, words in zip(rows, sentences.words)]
