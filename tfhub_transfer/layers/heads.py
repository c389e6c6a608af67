"""Task heads as layers, in a registry: `head="dense"` / `head="bilstm"` or your own tf_keras layer.

A head is a `tf_keras` layer that maps the sentence features a task model pools ([batch, hidden]) to its
logits ([batch, outputs]); Model Garden's `BertClassifier(network, cls_head=...)`. A registered head class
(`@register_head("name")`) may also

- read the token states itself instead of the model's pooling: `token_reader()` returns a layer called as
  `reader(token_states, input_mask)` that gives the features (the BiLSTM head's `bilstm_pooling`);
- build the tagger's per-word head: `tag_words(words, mask, num_tags, dropout, seed)` gives tag logits.

A new head is one class here plus its test; config.HEADS lists the names the CLI's `--head` offers.
Registered heads are also registered with `tf_keras.utils.register_keras_serializable` (package
`tfhub_transfer`), so a model holding one rebuilds from its config; a head of your own given as an instance
must be registered the same way (or be deserialisable inside `tf_keras.utils.custom_object_scope`).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.layers.pooling import SequencePooling

BILSTM_UNITS = 128  # per direction
_HEADS: dict[str, type] = {}


def register_head(name: str):
    """Registers a head class under `name` (and for Keras serialization); a class decorator.

    Example:
      >>> @register_head("dense")
      ... class ClassificationHead(tf_keras.layers.Layer): ...
    """
    def decorate(cls):
        cls.head_name = name
        _HEADS[name] = cls
        return tf_keras.utils.register_keras_serializable(package="tfhub_transfer")(cls)

    return decorate


def head_names() -> tuple[str, ...]:
    """The registered head names, in registration order."""
    return tuple(_HEADS)


def check_head(head) -> None:
    """A registered head name or a tf_keras layer instance; anything else is one ConfigError naming `head=`."""
    if isinstance(head, tf_keras.layers.Layer) or (isinstance(head, dict) and "class_name" in head):
        return  # a layer instance, or one stored as its Keras config
    if isinstance(head, str) and head in _HEADS:
        return
    raise ConfigError(f"head={head!r} (--head): unknown head; it must be one of {list(_HEADS)}, or a tf_keras "
                      "layer instance that maps the pooled features [batch, hidden] to logits")


def head_class(name: str) -> type:
    """The registered head class called `name` (see `check_head` for the error)."""
    check_head(name)
    return _HEADS[name]


def serialize_head(layer: tf_keras.layers.Layer) -> dict:
    """A head layer as a JSON-able Keras config (stored in a model config; `deserialize_head` rebuilds it)."""
    return tf_keras.utils.serialize_keras_object(layer)


def deserialize_head(config: dict) -> tf_keras.layers.Layer:
    """A fresh head layer from `serialize_head`'s config; its class must be registered with Keras."""
    try:
        return tf_keras.utils.deserialize_keras_object(config)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"head: cannot rebuild the head layer {config.get('class_name')!r} ({err}); register "
                          "its class with tf_keras.utils.register_keras_serializable, or load inside "
                          "tf_keras.utils.custom_object_scope") from None


@register_head("dense")
class ClassificationHead(tf_keras.layers.Layer):
    """Dropout then a dense layer to one logit per class (`head="dense"`)."""

    reads_tokens = False  # True: `token_reader()` reads the token states instead of the model's pooling

    def __init__(self, num_classes: int, dropout: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.dropout_rate = dropout
        self.dropout = tf_keras.layers.Dropout(dropout, seed=seed)
        self.logits = tf_keras.layers.Dense(
            num_classes,
            kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02, seed=seed),
            name="logits",
        )

    def call(self, features, training=None):
        return self.logits(self.dropout(features, training=training))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout_rate}

    def token_reader(self):
        """None: the head reads the model's pooled features (see layers.pooling)."""
        return None

    @staticmethod
    def tag_words(words: tf.Tensor, mask: tf.Tensor, num_tags: int, dropout: float = 0.1,
                  seed: int | None = None) -> tf.Tensor:
        """The tagger's head: dropout and per-word tag logits (a layer named `tags`)."""
        words = tf_keras.layers.Dropout(dropout, seed=seed)(words)
        return tf_keras.layers.Dense(num_tags, name="tags")(words)


class RecurrentPooling(tf_keras.layers.Layer):
    """[batch, seq, hidden] token states -> [batch, 4 x units]: dropout, a BiLSTM over the real tokens, then the
    mean and the max of its outputs over them, side by side.

    The BERT paper's feature-based recipe (section 5.3) reads frozen token states with a BiLSTM: it sees word
    order and negation, which a mean of frozen states washes out, and it trains on a frozen encoder's cache.
    """

    def __init__(self, units: int = BILSTM_UNITS, dropout: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout_rate = units, dropout
        self.dropout = tf_keras.layers.Dropout(dropout, seed=seed)
        self.bilstm = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(units, return_sequences=True), name="bilstm")
        self.mean, self.max = SequencePooling("mean"), SequencePooling("max")

    def call(self, sequence, input_mask, training=None):
        sequence = tf.cast(sequence, self.compute_dtype)  # a bfloat16 encoder's states feed a float32 LSTM
        mask = tf.cast(input_mask, tf.bool)
        states = self.bilstm(self.dropout(sequence, training=training), mask=mask, training=training)
        return tf.concat([self.mean(states, mask), self.max(states, mask)], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units, "dropout": self.dropout_rate}


class GatherWords(tf_keras.layers.Layer):
    def call(self, features, positions):
        return tf.gather(features, positions, batch_dims=1)


class WordMask(tf_keras.layers.Layer):
    """Real words have a first-piece position >= 1 ([CLS] is 0); padding words have 0."""

    def call(self, positions):
        return tf.not_equal(positions, 0)


@register_head("bilstm")
class BiLSTMHead(ClassificationHead):
    """`head="bilstm"`: a BiLSTM reads the token states (`RecurrentPooling`, the layer `bilstm_pooling`), its
    outputs mean- and max-pooled, then dropout and a dense layer to the logits; for a tagger, a masked BiLSTM
    over the words before the per-word logits."""

    reads_tokens = True

    def __init__(self, num_classes: int, dropout: float = 0.1, seed: int | None = None, **kwargs):
        super().__init__(num_classes, dropout, seed, **kwargs)
        self.seed = seed

    def token_reader(self):
        return RecurrentPooling(dropout=self.dropout_rate, seed=self.seed, name="bilstm_pooling")

    @staticmethod
    def tag_words(words: tf.Tensor, mask: tf.Tensor, num_tags: int, dropout: float = 0.1,
                  seed: int | None = None) -> tf.Tensor:
        words = tf_keras.layers.Dropout(dropout, seed=seed)(words)
        words = tf_keras.layers.Bidirectional(tf_keras.layers.LSTM(BILSTM_UNITS, return_sequences=True),
                                              name="bilstm")(words, mask=mask)
        return tf_keras.layers.Dense(num_tags, name="tags")(words)


def tagging_head(words: tf.Tensor, mask: tf.Tensor, num_tags: int, head: str = "dense", dropout: float = 0.1,
                 seed: int | None = None) -> tf.Tensor:
    """Per-word tag logits by the registered head `head` (dropout, a masked BiLSTM for `bilstm`, a dense layer)."""
    return head_class(head).tag_words(words, mask, num_tags, dropout, seed)
