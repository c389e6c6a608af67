"""`TextClassifier`: strings -> TF Hub encoder -> (layer mix) -> pooling -> head, as one Keras model.

    model = TextClassifier.from_encoder("default", labels=["neg", "pos"])  # mode="auto"
    model.fit(texts, labels)             # auto chooses the recipe from the labels, rebuilds the model for it
    model = TextClassifier.from_encoder("default", labels=["neg", "pos"], mode="gradual")
    model.compile()                      # AdamW, warmup + linear decay, per-group LRs of the mode
    model.fit(texts, labels, epochs=2)   # strings and label names; tokenised in tf.data
    model.predict(["a sentence"])        # logits
    model.export("saved_models/reviews") # raw-string SavedModel
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import ModelConfig, TransferConfig, field_default
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.errors import ConfigError, DataError
from tfhub_transfer.layers.heads import check_head, deserialize_head, head_class, serialize_head
from tfhub_transfer.layers.pooling import PairFeatures, SequencePooling
from tfhub_transfer.models.adaptation import DEFAULT_BATCH_SIZE, streamed_batches
from tfhub_transfer.models.backbone import (
    apply_transfer_mode,
    encoder_inputs,
    load_encoder,
    pooling_of,
    string_batch_encoder,
    token_states,
    transfer_mode_of,
    unused_groups,
)
from tfhub_transfer.models.base import TaskModel, register
from tfhub_transfer.models.contrastive import TEXT_FIT_OPTIONS, fit_contrastive, fit_head, fit_on_texts
from tfhub_transfer.models.inputs import check_label_names, check_num_classes
from tfhub_transfer.preprocessing.packing import EXAMPLE_SLOTS, packed_batches, slot_outputs
from tfhub_transfer.preprocessing.text import AUTOTUNE, LongText, make_dataset, make_training_dataset
from tfhub_transfer.training.tasks import task_names, task_spec
from tfhub_transfer.transfer.modes import TransferMode
from tfhub_transfer.transfer.modes.auto import Auto, Choice, DataProfile, label_counts


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """What a `TextClassifier` is built from; stored with every saved model so it can be rebuilt."""

    num_classes: int
    encoder: str = "default"
    preprocessor: str | None = None
    mode: str = "auto"  # a TransferMode spec: auto (chosen at the first fit), freeze, finetune, partial:3, gradual, ...
    embedding_lr_multiplier: float | None = None
    pooling: str | None = None  # None: the encoder's own recommendation (mean with a layer mix)
    dropout: float = 0.1
    seq_length: int = 128
    seed: int | None = None
    task: str = "single_label"  # single_label | multi_label | regression
    layer_mix: str | None = None  # None: the encoder's last layer / pooled output; see layers.layer_mix
    pair: bool = False  # two text inputs (text_a, text_b)
    pairs: str = "joint"  # joint: one sequence per pair; siamese: each text encoded apart (layers.pooling.PairFeatures)
    frozen_epochs: float | None = None  # head-only epochs before the encoder trains; None: the mode's default
    lr_mult: float | None = None  # discriminative / gradual: top group's rate over the bottom one's
    long_text: str = "truncate"  # or windows:STRIDE[:logits], see preprocessing.text.LongText
    packing: int = 0  # train on packed rows of this many word pieces (preprocessing.packing); 0: one example a row
    # dense: pooled features -> logits; bilstm: a BiLSTM over the tokens, mean and max pooled (layers.heads);
    # a head layer of your own is stored as its Keras config (a dict), see `head_layer_of`.
    head: str | dict = "dense"

    @classmethod
    def from_slices(cls, model: ModelConfig, transfer: TransferConfig, num_classes: int, task: str = "single_label",
                    pair: bool = False, seed: int | None = None) -> ClassifierConfig:
        """The classifier config that the `train` options' slices describe (one place maps them).

        Args:
          model: the backbone and head options (config.ModelConfig); `dtype` picks the encoder's variant.
          transfer: the transfer mode and its options (config.TransferConfig); with `feature_cache` the layer
            mix defaults to the last layer, mean-pooled under a dense head.
          num_classes, task, pair, seed: what the data and the run say.
        Returns:
          A ClassifierConfig.
        Example:
          >>> ClassifierConfig.from_slices(ModelConfig(encoder="default"), TransferConfig(mode="gradual"), 2)
        """
        cached = transfer.feature_cache
        return cls(
            num_classes=num_classes, encoder=encoder_variant(model.encoder, model.dtype, model.preprocessor),
            preprocessor=model.preprocessor, mode=transfer.mode,
            embedding_lr_multiplier=transfer.embedding_lr_multiplier,
            pooling=model.pooling or ("mean" if cached and model.head == "dense" else None), dropout=model.dropout,
            seq_length=model.seq_length, seed=seed, task=task,
            layer_mix=model.layer_mix or ("last" if cached else None), pair=pair,
            frozen_epochs=transfer.frozen_epochs, lr_mult=transfer.lr_mult, long_text=model.long_text,
            packing=model.packing, head=model.head, pairs=model.pairs)


class FlattenWindows(tf_keras.layers.Layer):
    """[batch, windows, seq] encoder inputs -> [batch x windows, seq]: every window is encoded on its own."""

    def call(self, inputs: dict) -> dict:
        return {name: tf.reshape(value, [-1, tf.shape(value)[-1]]) for name, value in inputs.items()}


class WindowMean(tf_keras.layers.Layer):
    """[batch x windows, dims] per-window values -> [batch, dims]: their mean over each example's windows
    (padding windows, whose mask is all 0, left out)."""

    def call(self, values: tf.Tensor, input_mask: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(input_mask)
        values = tf.reshape(values, tf.concat([shape[:2], tf.shape(values)[-1:]], 0))
        present = tf.cast(tf.reduce_any(input_mask > 0, axis=-1), values.dtype)[..., tf.newaxis]
        return tf.reduce_sum(values * present, axis=1) / tf.maximum(tf.reduce_sum(present, axis=1), 1.0)


def encoder_features(outputs: dict, input_mask, config: ClassifierConfig, spec, head=None) -> tf.Tensor:
    """Features for the head: the token states pooled, or read by the head's own token reader (the BiLSTM's)."""
    states = token_states(outputs, config, spec)
    reader = head.token_reader() if hasattr(head, "token_reader") else None
    if reader is not None:
        sequence = states["sequence_output"] if isinstance(states, dict) else states
        return reader(sequence, input_mask)
    packed = bool(getattr(config, "packing", 0))
    return SequencePooling(pooling_of(config, spec), packed, name="pooling")(states, input_mask)


def head_layer_of(config: ClassifierConfig, outputs: int) -> tuple[ClassifierConfig, tf_keras.layers.Layer]:
    """The config (a head layer instance stored as its Keras config) and the head layer to build with:
    the given instance, one rebuilt from a stored config, or the registered head's class (named `head`)."""
    if isinstance(config.head, tf_keras.layers.Layer):
        return dataclasses.replace(config, head=serialize_head(config.head)), config.head
    if isinstance(config.head, dict):
        return config, deserialize_head(config.head)
    return config, head_class(config.head)(outputs, config.dropout, config.seed, name="head")


def check_head_options(config: ClassifierConfig, mode: TransferMode) -> None:
    """A head that reads the token states (the BiLSTM) pools its own outputs and reads single rows of them;
    a head layer of your own cannot be contrastive's fixed-embedding logistic regression."""
    check_head(config.head)
    if not isinstance(config.head, str):
        if mode.brings_own_fit:
            raise ConfigError(f"head=<a layer> does not apply to mode={mode.name!r}: its second fit trains the "
                              "dense head on fixed sentence embeddings; use head='dense'")
        return
    if not getattr(head_class(config.head), "reads_tokens", False):
        return
    clash = (("--pooling", "it pools its BiLSTM's outputs by their mean and max") if config.pooling else
             ("--pairs siamese", "the head reads the two texts' pooled embeddings") if config.pairs == "siamese" else
             ("--pack", "its BiLSTM would read across the examples of a packed row") if config.packing else
             (f"--mode {mode.name}", "the pair fit tunes mean-pooled sentence embeddings")
             if mode.reads_sentence_embeddings else None)
    if clash:
        raise ConfigError(f"{clash[0]} does not apply to --head {config.head}: {clash[1]}; drop one of them")


def check_packing(config: ClassifierConfig, mode: TransferMode, long_text: LongText) -> None:
    """Packing's needs: whole examples in a row, one mean per example, and training through `fit`."""
    if not config.packing:
        return
    if long_text.rows_per_example or mode.reads_sentence_embeddings:
        what, reason = ((f"--long-text {long_text}", "it encodes each window apart") if long_text.windowed else
                        ("--pairs siamese", "it encodes each text of a pair apart") if long_text.apart else
                        (f"--mode {mode.name}", "its pair fit reads single sentences"))
        raise ConfigError(f"--pack does not apply to {what}: {reason}; drop one of them")
    pooling = pooling_of(config, resolve_encoder(config.encoder, config.preprocessor))
    if pooling != "mean":
        raise ConfigError(f"--pack pools each packed example by its mean, not by {pooling!r} pooling: use "
                          "--pooling mean (or drop --pack)")


def is_auto(config: ClassifierConfig) -> bool:
    """Whether the config leaves the mode to `auto` (chosen at the first `fit`, from its data)."""
    return isinstance(transfer_mode_of(config), Auto)


@dataclasses.dataclass
class ClassifierGraph:
    """A classifier's Keras graph (inputs -> logits) with what it was built from."""

    config: ClassifierConfig  # as built: the mode's pooling, the head layer stored as its config
    mode: TransferMode
    spec: object  # encoders.resolve.EncoderSpec
    preprocessor: object  # preprocessing.text.TextPreprocessor
    layer: tf_keras.layers.Layer  # the TF Hub encoder
    long_text: LongText
    inputs: dict
    logits: tf.Tensor


def classifier_graph(config: ClassifierConfig, encoder: tf_keras.layers.Layer | None = None) -> ClassifierGraph:
    """strings' encoder inputs -> encoder -> (layer mix) -> pooling -> (pair features) -> head, for `config`
    (mode `auto`: the mode it builds in before it sees data, `Auto.before_data`); `encoder`: reuse that
    loaded encoder layer."""
    if is_auto(config):
        config = dataclasses.replace(config, mode=Auto.before_data())
    mode = transfer_mode_of(config)
    long_text = LongText.parse(config.long_text, config.seq_length, config.pair, config.pairs)
    check_head_options(config, mode)
    if mode.reads_sentence_embeddings and config.pooling is None and config.layer_mix is None:
        config = dataclasses.replace(config, pooling="mean")  # SetFit's mean-pooled sentence embeddings
    check_packing(config, mode, long_text)
    outputs = config.num_classes if task_spec(config.task).target != "number" else 1
    config, head = head_layer_of(config, outputs)
    spec, preprocessor, layer = load_encoder(config, mode, encoder)
    inputs = encoder_inputs(windowed=long_text.rows_per_example)
    encoded = FlattenWindows(name="flatten_windows")(inputs) if long_text.rows_per_example else inputs
    features = encoder_features(layer(encoded), encoded["input_mask"], config, spec, head)
    if long_text.apart:
        features = PairFeatures(name="pair_features")(features)
    if mode.reads_sentence_embeddings:  # the head reads the direction the pair fit tuned, not the length
        features = tf_keras.layers.UnitNormalization(name="unit_norm")(features)
    if long_text.windowed and long_text.pool == "features":
        features = WindowMean(name="window_mean")(features, inputs["input_mask"])
    logits = head(features)
    if long_text.windowed and long_text.pool == "logits":
        logits = WindowMean(name="window_mean")(logits, inputs["input_mask"])
    return ClassifierGraph(config, mode, spec, preprocessor, layer, long_text, inputs, logits)


@register
class TextClassifier(TaskModel):
    """A sentence(-pair) classifier or regressor on a TF Hub encoder; outputs logits (or a score).

    Args:
      config: a `ClassifierConfig` (or its dict, as `get_config` stores it); `from_encoder` builds one.
      label_names: the class names (class id i is `label_names[i]`); None: "0".."n-1".
    Example:
      >>> from tfhub_transfer import TextClassifier
      >>> model = TextClassifier.from_encoder("default", labels=["neg", "pos"], seq_length=32)
      >>> model.predict(["a great film"], verbose=0).shape
      (1, 2)
    """

    new_head = True
    takes_texts = True

    def __init__(self, config: ClassifierConfig | dict, label_names: Sequence[str] | None = None, **kwargs):
        config = ClassifierConfig(**config) if isinstance(config, dict) else config
        check_head(config.head)
        spec = task_spec(config.task)
        if spec.per_token or not spec.trainable:
            sentence_tasks = [name for name in task_names() if not task_spec(name).per_token]
            raise ConfigError(f"task must be a sentence task of {sentence_tasks}, not {config.task!r}")
        check_num_classes(config.num_classes, regression=spec.target == "number")
        label_names = check_label_names(label_names, "label_names")
        if label_names and len(label_names) != config.num_classes and spec.target != "number":
            raise ConfigError(f"label_names holds {len(label_names)} names for num_classes={config.num_classes}; "
                              "give one name per class")
        graph = classifier_graph(config)
        super().__init__(inputs=graph.inputs, outputs=graph.logits, name=kwargs.pop("name", "classifier"), **kwargs)
        self._adopt(graph, config, label_names)

    def _adopt(self, graph: ClassifierGraph, config: ClassifierConfig, label_names) -> None:
        """Takes `graph`'s mode, encoder and preprocessor as this model's and applies the transfer mode; the
        config kept is the graph's, with mode `auto` kept until a fit has chosen (see `choose_recipe`)."""
        kept = dataclasses.replace(graph.config, mode=config.mode) if is_auto(config) else graph.config
        self._setup(kept, graph.mode, graph.spec, graph.preprocessor, label_names)
        self.task = config.task
        self.long_text = graph.long_text
        self.unused_groups = unused_groups(graph.config, graph.spec)
        apply_transfer_mode(self, graph.layer, graph.mode, config.seed or 0)

    @classmethod
    def from_encoder(cls, encoder: str = "default", num_classes: int | None = None,
                     labels: Sequence[str] | None = None, **options) -> TextClassifier:
        """Builds a classifier on `encoder` (`default`, a catalogue name, a local directory or a hub handle).

        Give `num_classes` (a whole number >= 2; the classes are then named "0".."n-1") or the label names
        (`labels`: distinct strings, whose order defines the class ids; `y` may then hold names or ids).
        Bad values are one ConfigError naming the argument.
        Options are `ClassifierConfig` fields: `mode` (`auto`, the default: the first `fit` chooses the recipe
        from its data and rebuilds the model for it, see `fit`; or freeze, finetune, partial:K, gradual[:STEPS],
        discriminative[:DECAY], slow_embeddings:FACTOR, reinit, contrastive[:ITERATIONS]), `task` (single_label,
        multi_label, regression), `pair`, `pooling`, `layer_mix`, `dropout`, `seq_length`,
        `preprocessor`, `seed`, `embedding_lr_multiplier`, the recipe's `frozen_epochs` (head-only
        epochs first) and `lr_mult` (discriminative spread), `long_text` (`truncate` or `windows:STRIDE`), and
        `packing` (train on rows of that many word pieces holding several examples; 0: off), `pairs` (with
        `pair=True`: `joint`, both texts in one sequence, or `siamese`, each text encoded apart and the head
        reading |u-v|, u*v and their cosine; see layers.pooling.PairFeatures), and `head` (`dense`, or
        `bilstm`: a BiLSTM over the token states, its outputs mean- and max-pooled; the BERT paper's reader of
        frozen features; or a tf_keras layer instance mapping the pooled features [batch, hidden] to logits
        [batch, outputs], as Model Garden's `BertClassifier(network, cls_head=...)`: register its class with
        `tf_keras.utils.register_keras_serializable` so that `save` / `load` and `from_config` rebuild it).
        """
        if not isinstance(encoder, (str, os.PathLike)) or not str(encoder):
            raise ConfigError(f"from_encoder(encoder={encoder!r}): give an encoder name ('default', a catalogue "
                              "name), a local directory or a TF Hub handle")
        labels = check_label_names(labels)
        regression = task_spec(options.get("task", "single_label")).target == "number"
        if num_classes is None:
            num_classes = len(labels) if labels else (1 if regression else 2)
        num_classes = check_num_classes(num_classes, regression=regression)
        if labels and len(labels) != num_classes:
            raise ConfigError(f"labels holds {len(labels)} names but num_classes={num_classes}; give one of them "
                              "(or one name per class)")
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(ClassifierConfig)})
        if unknown:
            raise ConfigError(f"from_encoder(): unknown option(s) {unknown}; options are ClassifierConfig fields: "
                              f"{[f.name for f in dataclasses.fields(ClassifierConfig)][2:]}")
        encoder = str(encoder)
        return cls(ClassifierConfig(num_classes=num_classes, encoder=encoder, **options), labels)

    auto_choice: Choice | None = None  # what `auto` chose at the first fit (None: the mode was given)
    fixed_features = False  # fit the head on the encoder's fixed features (auto's recipe for few pairs)

    def fit(self, x=None, y=None, **kwargs):
        """`TaskModel.fit`; in `contrastive` mode, the pair fit then the head fit on texts and labels
        (models.contrastive: `epochs`, `batch_size` and the compiled learning rate are the pair fit's).

        In mode `auto` (the default) the first fit chooses the recipe from its data (transfer.modes.auto's table:
        labelled examples per class, task, pairs, the encoder), prints the choice, and rebuilds the model for it;
        `batch_size` left unset takes the recipe's and `epochs` left unset is `"auto"`: enough optimizer steps for
        small data (training.budget.auto_epochs). Nothing is held out unless `validation_data` is given.
        """
        if kwargs.get("validation_data") is not None:  # checked before a recipe is chosen or anything trains
            self._validation_dataset(kwargs["validation_data"], kwargs.get("batch_size") or DEFAULT_BATCH_SIZE)
        if is_auto(self.config):
            kwargs = self.choose_recipe(x, y, kwargs)
        if self.auto_choice is not None:
            kwargs.setdefault("epochs", "auto")
        if self.mode.brings_own_fit or self.fixed_features:
            given = self._given(x, y, None, "fit")
            return fit_on_texts(self, given.x, given.y, fit=fit_contrastive if self.mode.brings_own_fit else fit_head,
                                **kwargs)
        return super().fit(x, y, **kwargs)

    def choose_recipe(self, x, y, fit_options: dict) -> dict:
        """`auto`'s choice for the data of this fit: the model rebuilt in the mode chosen (still the pretrained
        encoder and a new head), the choice printed and kept as `auto_choice`; returns `fit_options` with the
        recipe's batch size where none was given.

        Args:
          x, y: the fit's data, in any form `fit` takes.
          fit_options: the other arguments of `fit`.
        Returns:
          The fit's options to train with.
        """
        given = self._given(x, y, fit_options.get("sample_weight"), "fit")
        profile = self.data_profile(given, fit_options)
        choice = transfer_mode_of(self.config).resolve(profile)
        pairs = choice.pairs if choice.pairs and self.config.pairs == field_default("pairs") else self.config.pairs
        self._rebuild(dataclasses.replace(self.config, mode=choice.mode, pairs=pairs))
        self.auto_choice = choice
        self.fixed_features = profile.texts_in_memory and profile.single_vector_head and (
            choice.tuned_cached_head or (choice.feature_cache and pairs == "siamese"))
        if choice.batch_size and fit_options.get("batch_size") is None and given.batch_size is None:
            fit_options = {**fit_options, "batch_size": choice.batch_size}
        if fit_options.get("verbose", "auto") != 0:
            held = "validation_data given" if profile.validation_given else "no labels held out"
            once = "; fit() fits that head once, standardised, without the sweep" if choice.tuned_cached_head and \
                self.fixed_features else ""
            print(f"{choice.describe()}; {held}{once}", flush=True)
        return fit_options

    def data_profile(self, given, fit_options: dict) -> DataProfile:
        """What `auto` sees of a fit's data (`given`, as models.inputs reads it) and of the model."""
        if given.y is None:
            raise ConfigError("mode='auto' chooses the recipe from the labels, and this fit's are inside a dataset of "
                              "encoder inputs: pass texts and labels (or a dataset of strings), or give the model a "
                              "mode, e.g. TextClassifier.from_encoder(..., mode='gradual')")
        targets = self.encode_labels(given.y)
        # the pair recipes and the fixed-feature fits take texts and labels, and no other fit option
        plain = not {k for k, v in fit_options.items() if v is not None} - set(TEXT_FIT_OPTIONS)
        return DataProfile.from_counts(
            label_counts(targets, task_spec(self.task).target, self.num_outputs), len(targets), task=self.task,
            pair=self.config.pair, windowed=self.long_text.windowed, sentence_encoder=self.spec.pooling == "mean",
            validation_given=fit_options.get("validation_data") is not None, texts_in_memory=given.raw and plain,
            single_vector_head=self.config.head == "dense" and not self.config.packing)

    def _rebuild(self, config: ClassifierConfig) -> None:
        """This model's graph built again for `config` on the same encoder layer (Keras' Sequential re-runs
        `_init_graph_network` the same way), compiled again with the same arguments if it was compiled."""
        compiled = self._compile_options
        if isinstance(config.head, dict):  # a head layer of the user's own: the very instance they gave stays
            config = dataclasses.replace(config, head=self.get_layer(config.head["config"]["name"]))
        with self.distribute_strategy.scope():  # a new head's variables live where the model's others do
            graph = classifier_graph(config, self._encoder_layer())
        self._init_graph_network(graph.inputs, graph.logits)
        self.train_function = self.test_function = self.predict_function = None
        self._adopt(graph, config, self.__dict__.get("_given_label_names"))
        if compiled is not None:
            self.compile(**compiled)

    def packed_for_training(self, x):
        """With `packing`, the training batches packed into rows (preprocessing.packing): the same loss and
        gradients as the batches themselves, with (almost) no padding."""
        if not self.config.packing:
            return x
        if not isinstance(x, tf.data.Dataset):
            raise ConfigError("a packing model trains on texts or a tf.data dataset of (inputs, targets) "
                              "batches, not on arrays of encoder inputs")
        if self.distribute_strategy.num_replicas_in_sync > 1:
            raise ConfigError("--pack does not apply under a distribution strategy with several replicas: "
                              "a packed batch's rows cannot be split evenly between them; drop --pack")
        return packed_batches(x, self.config.packing)

    def training_outputs(self, x) -> tf.Tensor:
        """On packed batches, the outputs of the examples' slots, in the batch's order."""
        if not (isinstance(x, dict) and EXAMPLE_SLOTS in x):
            return super().training_outputs(x)
        inputs = {name: value for name, value in x.items() if name != EXAMPLE_SLOTS}
        return slot_outputs(self(inputs, training=True), x[EXAMPLE_SLOTS])

    # -- data in ----------------------------------------------------------------------------------
    def _texts(self, x) -> tuple[list[str], list[str] | None]:
        if self.config.pair:
            if isinstance(x, dict):
                return list(x["text_a"]), list(x["text_b"])
            if isinstance(x, tuple) and len(x) == 2:
                return list(x[0]), list(x[1])
            raise ConfigError("a pair model takes (texts_a, texts_b) or {'text_a': ..., 'text_b': ...}")
        return list(x), None

    def encode_labels(self, y):
        if y is None or self.task != "multi_label" or not self.label_names:
            return super().encode_labels(y)
        index = {name: i for i, name in enumerate(self.label_names)}
        rows = np.zeros((len(y), len(self.label_names)), np.float32)
        for row, names in enumerate(y):
            names = names.decode("utf-8") if isinstance(names, bytes) else names  # from a tf.data dataset
            names = [n.strip() for n in names.split(",") if n.strip()] if isinstance(names, str) else names
            if all(isinstance(n, str) for n in names):
                for name in names:
                    if name not in index:
                        raise DataError(f"y[{row}] names the label {name!r}, which is not among the model's "
                                        f"{self.label_names}")
                    rows[row, index[name]] = 1.0
            else:
                rows[row] = np.asarray(names, np.float32)
        return rows

    def encode_examples(self, x, y=None, batch_size=32, shuffle=False, seed=0, sample_weight=None) -> tf.data.Dataset:
        texts, texts_b = self._texts(x)
        targets = self.encode_labels(y)
        return make_dataset(texts, targets, self.preprocessor, batch_size, self.seq_length, shuffle=shuffle,
                            seed=seed, texts_b=texts_b, weights=sample_weight, long_text=self.long_text)

    def encode_dataset(self, dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
        return make_dataset(dataset, None, self.preprocessor, batch_size, self.seq_length,
                            long_text=self.long_text)

    def training_stream(self, examples, batch_size: int, epochs: int, seed: int, start, bucket: bool,
                        drop_remainder: bool, static_length: bool, shuffle: bool = True) -> tf.data.Dataset:
        """The resumable training stream the one loop uses (see preprocessing.make_training_dataset); a
        streamed source's string batches get the same per-batch encoding (no length bucketing)."""
        if getattr(examples, "streamed", False):
            encode = string_batch_encoder(self.preprocessor, self.seq_length, self.long_text, static_length)
            return streamed_batches(examples, batch_size, epochs, seed, start, drop_remainder, shuffle, encode)
        dataset, _ = make_training_dataset(
            examples.texts, examples.targets, self.preprocessor, batch_size, self.seq_length, epochs,
            seed=seed, shuffle=shuffle, bucket=bucket, start_epoch=start.epoch, start_step=start.step,
            texts_b=examples.texts_b, drop_remainder=drop_remainder, static_length=static_length,
            long_text=self.long_text)
        return dataset

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        if getattr(examples, "streamed", False):
            encode = string_batch_encoder(self.preprocessor, self.seq_length, self.long_text)
            return examples.evaluation_batches(batch_size).map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
        return make_dataset(examples.texts, examples.targets, self.preprocessor, batch_size, self.seq_length,
                            texts_b=examples.texts_b, long_text=self.long_text)
