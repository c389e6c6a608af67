"""A post-layer-norm BERT encoder in tf_keras, with the variable names of TF Model Garden.

Variable names follow Model Garden's published Hub encoders (`word_embeddings`,
`transformer/layer_<i>/...`, `pooler_transform`) so that one grouping rule serves
the package's own encoders and published ones alike.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras

from tfhub_transfer.encoders.build.config import BertConfig


def _init(config: BertConfig) -> tf_keras.initializers.Initializer:
    """A fresh initializer per layer (Keras warns when one unseeded instance is shared)."""
    return tf_keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def exact_gelu(x: tf.Tensor) -> tf.Tensor:
    """GELU with erf, as in the original BERT (the tanh approximation differs by ~1e-3)."""
    return tf_keras.activations.gelu(x, approximate=False)


class PositionEmbedding(tf_keras.layers.Layer):
    """Learned absolute position embeddings, sliced to the input's length."""

    def __init__(self, max_length: int, initializer, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.initializer = initializer

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            "embeddings", shape=[self.max_length, input_shape[-1]], initializer=self.initializer
        )
        super().build(input_shape)

    def call(self, inputs, positions=None):
        """[1, seq, hidden] for positions 0..seq-1, or [batch, seq, hidden] for given `positions`."""
        if positions is not None:
            return tf.cast(tf.gather(self.embeddings, positions), inputs.dtype)
        length = tf.shape(inputs)[1]
        return tf.cast(self.embeddings[tf.newaxis, :length, :], inputs.dtype)


def relative_position_bucket(relative: tf.Tensor, num_buckets: int, max_distance: int) -> tf.Tensor:
    """MPNet's (T5's bidirectional) bucket of each key-minus-query distance: half the buckets per direction,
    exact up to a quarter of them, log-spaced beyond up to `max_distance`."""
    n = -relative
    half = num_buckets // 2
    bucket = tf.cast(n < 0, tf.int32) * half
    n = tf.abs(n)
    exact = half // 2
    scaled = tf.math.log(tf.cast(tf.maximum(n, 1), tf.float32) / exact) / math.log(max_distance / exact)
    large = tf.minimum(exact + tf.cast(scaled * (half - exact), tf.int32), half - 1)
    return bucket + tf.where(n < exact, n, large)


class RelativeBiasAttention(tf_keras.layers.MultiHeadAttention):
    """Multi-head attention that adds `position_bias` ([batch or 1, heads, query, key]) to the scores before
    the masked softmax (MPNet)."""

    def call(self, query, value, attention_mask=None, training=None, position_bias=None):
        self._position_bias = position_bias  # read by _masked_softmax within this call's trace
        try:
            return super().call(query, value, attention_mask=attention_mask, training=training)
        finally:
            self._position_bias = None

    def _masked_softmax(self, attention_scores, attention_mask=None):
        bias = getattr(self, "_position_bias", None)
        if bias is not None:
            attention_scores = attention_scores + tf.cast(bias, attention_scores.dtype)
        return super()._masked_softmax(attention_scores, attention_mask)


def _matmul_policy(config: BertConfig) -> str | None:
    """The Keras dtype policy of the attention and feed-forward matmul layers (None: the global policy)."""
    return None if config.compute_dtype == "float32" else f"mixed_{config.compute_dtype}"


class TransformerBlock(tf_keras.layers.Layer):
    """Self-attention and feed-forward sublayers, each with residual and post layer norm."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(**kwargs)
        eps = config.layer_norm_epsilon
        matmuls = _matmul_policy(config)
        # The whole attention sublayer (projections, scores, softmax, attention dropout) computes in the
        # matmul dtype: on a bf16 CPU its softmax and dropout are no slower in bfloat16 (benchmarks/RESULTS.md).
        attention = RelativeBiasAttention if config.relative_attention_buckets else tf_keras.layers.MultiHeadAttention
        self.self_attention = attention(
            dtype=matmuls,
            num_heads=config.num_heads,
            key_dim=config.head_size,
            dropout=config.attention_dropout,
            kernel_initializer=_init(config),
            name="self_attention",
        )
        self.attention_dropout = tf_keras.layers.Dropout(config.hidden_dropout)
        self.attention_layer_norm = tf_keras.layers.LayerNormalization(
            epsilon=eps, name="self_attention_layer_norm"
        )
        # GELU stays in the matmul layer: oneDNN fuses matmul + bias + GELU (a separate float32 GELU measured slower).
        self.intermediate = tf_keras.layers.Dense(
            config.intermediate_size, activation=exact_gelu, kernel_initializer=_init(config),
            name="intermediate", dtype=matmuls,
        )
        self.output_dense = tf_keras.layers.Dense(
            config.hidden_size, kernel_initializer=_init(config), name="output", dtype=matmuls
        )
        self.output_dropout = tf_keras.layers.Dropout(config.hidden_dropout)
        self.output_layer_norm = tf_keras.layers.LayerNormalization(
            epsilon=eps, name="output_layer_norm"
        )

    def call(self, x, attention_mask, training=None, position_bias=None):
        extra = {} if position_bias is None else {"position_bias": position_bias}
        attended = self.self_attention(x, x, attention_mask=attention_mask, training=training, **extra)
        x = self.attention_layer_norm(x + self.attention_dropout(attended, training=training))
        hidden = self.output_dense(self.intermediate(x))
        return self.output_layer_norm(x + self.output_dropout(hidden, training=training))


def pool_sequence(sequence: tf.Tensor, mask: tf.Tensor, mode: str) -> tf.Tensor:
    """Pools [batch, seq, hidden] over the real tokens as sentence-transformers' Pooling module does:
    `mean` (sum / count of real tokens), `max`, or `first` (the [CLS] vector)."""
    if mode == "first":
        return sequence[:, 0, :]
    weights = tf.cast(mask, sequence.dtype)[:, :, tf.newaxis]
    if mode == "mean":
        count = tf.maximum(tf.reduce_sum(weights, axis=1), tf.cast(1e-9, sequence.dtype))
        return tf.reduce_sum(sequence * weights, axis=1) / count
    lowest = tf.cast(-1e9 if sequence.dtype == tf.float32 else -3e4, sequence.dtype)
    return tf.reduce_max(sequence + (1.0 - weights) * lowest, axis=1)


def segment_attention_mask(segments: tf.Tensor) -> tf.Tensor:
    """[batch, seq] segment ids (0 padding) -> [batch, seq, seq]: a real token attends to the real tokens
    of its own segment (block-diagonal); a padding query attends to every real key, as it does unpacked."""
    query, key = segments[:, :, tf.newaxis], segments[:, tf.newaxis, :]
    return (key > 0) & ((query == key) | (query == 0))


def segment_positions(segments: tf.Tensor) -> tf.Tensor:
    """[batch, seq] segment ids (contiguous, 1, 2, ... from the row's start; 0 padding at the end) ->
    each token's position within its segment (padding keeps its row position).

    A segment starts after every real token of the segments before it, so its start is a count of
    those ([batch, seq, seq] comparisons, the attention mask's size; ops every export format has)."""
    query, key = segments[:, :, tf.newaxis], segments[:, tf.newaxis, :]
    starts = tf.reduce_sum(tf.cast((key > 0) & (key < query), tf.int32), axis=-1)
    return tf.range(tf.shape(segments)[1])[tf.newaxis, :] - starts


class BertEncoder(tf_keras.Model):
    """Maps the three BERT input tensors to the TF Hub encoder outputs.

    Call it with a dict of int32 `input_word_ids`, `input_mask`, `input_type_ids`
    ([batch, seq], any seq up to `max_position_embeddings`). It returns
    `sequence_output`, `pooled_output`, `default` (= pooled), `cls_pooled_output` (the
    tanh pooler over [CLS]), `encoder_outputs` (one tensor per transformer layer) and
    `embedding_output`. `pooled_output` is the pooler's output for BERT checkpoints and the
    sentence embedding (`config.pooled_output`, e.g. the masked mean) for sentence-transformers ones.
    With `config.packed_segments`, `input_mask` may number several examples packed into a row
    (`segment_attention_mask`, `segment_positions`); the pooled outputs then read the whole row.
    """

    def __init__(self, config: BertConfig, **kwargs):
        kwargs.setdefault("name", "bert_encoder")
        super().__init__(**kwargs)
        self.config = config
        self.word_embeddings = tf_keras.layers.Embedding(
            config.vocab_size, config.embedding_width, embeddings_initializer=_init(config),
            name="word_embeddings",
        )
        self.position_embedding = PositionEmbedding(
            config.max_position_embeddings, _init(config), name="position_embedding"
        )
        self.type_embeddings = tf_keras.layers.Embedding(
            config.type_vocab_size, config.embedding_width, embeddings_initializer=_init(config),
            name="type_embeddings",
        )
        self.embedding_layer_norm = tf_keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, name="embeddings/layer_norm"
        )
        self.embedding_dropout = tf_keras.layers.Dropout(config.hidden_dropout)
        # Model Garden's name for ELECTRA's / ALBERT's projection, so layer groups place it in `embeddings`.
        self.embedding_projection = None if config.embedding_width == config.hidden_size else (
            tf_keras.layers.Dense(config.hidden_size, kernel_initializer=_init(config),
                                  name="embedding_projection"))
        # Named under position_embedding so that layer groups put it with the embeddings (all layers share it).
        self.relative_attention_bias = tf_keras.layers.Embedding(
            config.relative_attention_buckets, config.num_heads, embeddings_initializer=_init(config),
            name="position_embedding_relative_bias") if config.relative_attention_buckets else None
        self.blocks = [
            TransformerBlock(config, name=f"transformer/layer_{i}") for i in range(config.num_layers)
        ]
        self.pooler = tf_keras.layers.Dense(
            config.hidden_size, activation="tanh", kernel_initializer=_init(config),
            name="pooler_transform",
        )

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config: dict) -> BertEncoder:
        return cls(BertConfig.from_dict(config["config"]), name=config.get("name"))

    def embed(self, word_ids, type_ids, training=None, positions=None):
        words = self.word_embeddings(word_ids)
        x = words + self.position_embedding(words, positions) + self.type_embeddings(type_ids)
        x = self.embedding_dropout(self.embedding_layer_norm(x), training=training)
        return x if self.embedding_projection is None else self.embedding_projection(x)

    def call(self, inputs, training=None):
        word_ids = inputs["input_word_ids"]
        mask = inputs["input_mask"]
        if self.config.packed_segments:
            x = self.embed(word_ids, inputs["input_type_ids"], training, segment_positions(mask))
            attention_mask = segment_attention_mask(mask)
            mask = tf.minimum(mask, 1)
        else:
            x = self.embed(word_ids, inputs["input_type_ids"], training=training)
            # [batch, 1, seq]: every query position may attend to the real key positions.
            attention_mask = tf.cast(mask, tf.bool)[:, tf.newaxis, :]
        embedding_output = x
        bias = self.position_bias(word_ids, inputs["input_mask"])
        layer_outputs = []
        for block in self.blocks:
            x = block(x, attention_mask, training=training, position_bias=bias)
            layer_outputs.append(x)
        cls_pooled = self.pooler(x[:, 0, :])
        pooled = cls_pooled if self.config.pooled_output == "pooler" else pool_sequence(
            x, mask, self.config.pooled_output)
        return {
            "sequence_output": x,
            "pooled_output": pooled,
            "default": pooled,
            "cls_pooled_output": cls_pooled,
            "encoder_outputs": layer_outputs,
            "embedding_output": embedding_output,
        }

    def position_bias(self, word_ids: tf.Tensor, mask: tf.Tensor) -> tf.Tensor | None:
        """MPNet's relative position bias, [1, heads, seq, seq] ([batch, ...] for packed rows, whose positions
        restart in each segment); None for encoders without one."""
        if self.relative_attention_bias is None:
            return None
        if self.config.packed_segments:
            positions = segment_positions(mask)
            relative = positions[:, tf.newaxis, :] - positions[:, :, tf.newaxis]
        else:
            positions = tf.range(tf.shape(word_ids)[1])
            relative = (positions[tf.newaxis, :] - positions[:, tf.newaxis])[tf.newaxis]
        buckets = relative_position_bucket(relative, self.config.relative_attention_buckets,
                                           self.config.relative_max_distance)
        return tf.transpose(self.relative_attention_bias(buckets), [0, 3, 1, 2])

    def dummy_inputs(self, batch: int = 2, length: int = 8) -> dict[str, tf.Tensor]:
        ones = tf.ones([batch, length], tf.int32)
        return {"input_word_ids": ones, "input_mask": ones, "input_type_ids": 0 * ones}


class MaskedLMHead(tf_keras.layers.Layer):
    """BERT's masked-LM head: dense + GELU + layer norm, output tied to the word embeddings."""

    def __init__(self, config: BertConfig, embedding_table: tf.Variable, **kwargs):
        kwargs.setdefault("name", "mlm")
        super().__init__(**kwargs)
        self.embedding_table = embedding_table
        # Its output is multiplied by the word embeddings, so it has their width (ELECTRA's is narrower).
        self.transform = tf_keras.layers.Dense(
            config.embedding_width, activation=exact_gelu, kernel_initializer=_init(config),
            name="transform",
        )
        self.layer_norm = tf_keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, name="transform_layer_norm"
        )
        self.vocab_size = config.vocab_size

    def build(self, input_shape):
        self.output_bias = self.add_weight(
            "output_bias", shape=[self.vocab_size], initializer="zeros"
        )
        super().build(input_shape)

    def call(self, sequence_output, masked_positions):
        gathered = tf.gather(sequence_output, masked_positions, batch_dims=1)
        hidden = self.layer_norm(self.transform(gathered))
        table = tf.cast(self.embedding_table, hidden.dtype)
        logits = tf.matmul(hidden, table, transpose_b=True)
        return logits + tf.cast(self.output_bias, logits.dtype)


def build_bert(config: BertConfig) -> tuple[BertEncoder, MaskedLMHead]:
    """Creates an encoder and its MLM head, with all variables built."""
    encoder = BertEncoder(config)
    outputs = encoder(encoder.dummy_inputs())
    head = MaskedLMHead(config, encoder.word_embeddings.embeddings)
    head(outputs["sequence_output"], tf.zeros([2, 1], tf.int32))
    return encoder, head
