"""Few-shot transfer, `--mode contrastive` (SetFit's recipe), in two fits through the one training loop.

1. `PairEncoderModel`: the classifier's own encoder and pooling applied to both texts of a pair
   (siamese: one set of weights) -> their cosine similarity, fitted with mean squared error against
   1 (same class) or 0 (different classes) on pairs drawn from the labels (transfer.contrastive).
   The optimisation options (epochs, batch size, learning rate, default 2e-5, schedule) are this fit's.
2. The tuned encoder embeds the labelled texts once (inference mode) and `FeatureHead`, the
   classifier's head on those embeddings, is fitted until its training loss stops falling: a
   logistic regression, as SetFit fits one, at its own fixed recipe. It is copied onto the classifier,
   which then predicts, saves and exports raw strings like any other.

    model = TextClassifier.from_encoder("default", labels=["neg", "pos"], mode="contrastive")
    model.fit(texts, labels, epochs=3, batch_size=16)   # 8 examples per class are enough
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from tfhub_transfer.config import CONTRASTIVE_LEARNING_RATE, OptimizationConfig, RuntimeConfig
from tfhub_transfer.data.tables import Examples
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.layers.heads import ClassificationHead
from tfhub_transfer.models.base import DEFAULT_BATCH_SIZE, TaskModel
from tfhub_transfer.preprocessing.text import AUTOTUNE, make_dataset, without_autotune
from tfhub_transfer.training.loop import FitOutcome, fit_task, predict_outputs
from tfhub_transfer.training.tasks import TaskSpec, task_spec
from tfhub_transfer.transfer.contrastive import PairExamples, build_pairs, pair_dataset
from tfhub_transfer.transfer.modes import TransferMode

NO_BACKUPS = "contrastive few-shot training keeps no backups (it runs for minutes at most)"
# The head on fixed embeddings is an L2-regularised logistic regression (scikit-learn's C=1, as SetFit
# fits): a convex problem, trained until its loss stops falling. Each of its epochs is at least
# HEAD_EPOCH_STEPS steps (the examples repeated), run in one call.
HEAD_LEARNING_RATE = 1e-2
HEAD_EPOCH_STEPS = 25
HEAD_MAX_EPOCHS = 40
HEAD_PATIENCE = 2  # epochs without the training loss falling by HEAD_MIN_DELTA
HEAD_MIN_DELTA = 1e-4


def sentence_encoder(model: TaskModel) -> tf_keras.Model:
    """The classifier's inputs -> the features its head reads (its own layers: training one trains the other)."""
    return tf_keras.Model(model.input, model.get_layer("head").input, name="sentence_encoder")


class InterleavedCosine(tf_keras.layers.Layer):
    """[2 x pairs, hidden] embeddings of interleaved pairs (a0, b0, a1, b1, ...) -> [2 x pairs, 1]: each
    pair's cosine similarity, on both of its rows (the rows' targets repeat it too)."""

    def call(self, embeddings: tf.Tensor) -> tf.Tensor:
        embeddings = tf.cast(embeddings, tf.float32)
        pairs = tf.math.l2_normalize(tf.reshape(embeddings, [-1, 2, tf.shape(embeddings)[-1]]), axis=-1)
        cosine = tf.reduce_sum(pairs[:, 0] * pairs[:, 1], axis=-1, keepdims=True)
        return tf.repeat(cosine, 2, axis=0)


class PairEncoderModel(TaskModel):
    """Two texts -> the cosine of their embeddings by one shared sentence encoder (the classifier's)."""

    task = "similarity"
    unsupported = {"resume": NO_BACKUPS, "backup_every_steps": NO_BACKUPS}

    def __init__(self, classifier: TaskModel):
        encoder = sentence_encoder(classifier)
        # Both texts of every pair in one batch (neighbouring rows): one encoder call a step, not two, so the
        # train step's graph holds the encoder once (half the tracing and graph optimisation of a siamese pair).
        inputs = {name: tf_keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in classifier.input}
        cosine = InterleavedCosine(name="cosine", dtype="float32")(encoder(inputs))
        super().__init__(inputs=inputs, outputs=cosine, name="pair_encoder")
        self._setup(classifier.config, classifier.mode, classifier.spec, classifier.preprocessor)
        # The same variables as the classifier's encoder, so its groups and LR multipliers apply as they are.
        self.layer_groups = classifier.layer_groups
        self.lr_multipliers = dict(classifier.lr_multipliers)
        self.frozen_groups = tuple(classifier.frozen_groups)
        self.unused_groups = tuple(getattr(classifier, "unused_groups", ()))

    @property
    def objective(self) -> TaskSpec:
        return task_spec(self.task)

    def default_learning_rate(self) -> float:
        return CONTRASTIVE_LEARNING_RATE

    def compile(self, optimizer="adamw", loss="auto", metrics="auto", **kwargs) -> None:
        """`TaskModel.compile` with mean squared error between the cosine and the pair's target."""
        loss = tf_keras.losses.MeanSquaredError() if loss == "auto" else loss
        super().compile(optimizer, loss, [] if metrics == "auto" else metrics, **kwargs)

    def training_stream(self, examples: PairExamples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        return pair_dataset(examples, self.preprocessor, batch_size, self.seq_length, epochs, seed, start.epoch,
                            start.step, shuffle, drop_remainder, static_length)

    def evaluation_dataset(self, examples: PairExamples, batch_size: int) -> tf.data.Dataset:
        return pair_dataset(examples, self.preprocessor, batch_size, self.seq_length, shuffle=False)


@dataclasses.dataclass
class FeatureExamples:
    """Fixed embeddings of labelled texts with their targets (and per-example training weights)."""

    features: np.ndarray
    targets: np.ndarray
    weights: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)

    def repeated(self, times: int) -> FeatureExamples:
        """The examples `times` over, so that one epoch of a small set is several steps."""
        tile = (lambda a: None if a is None else np.concatenate([a] * times)) if times > 1 else (lambda a: a)
        return FeatureExamples(tile(self.features), tile(self.targets), tile(self.weights))


class FeatureHead(TaskModel):
    """The classifier's head (same layer name and shapes) on fixed embeddings [batch, hidden]."""

    unsupported = {"resume": NO_BACKUPS, "backup_every_steps": NO_BACKUPS}

    def __init__(self, model: TaskModel, hidden: int, l2: float = 0.0, centre: np.ndarray | None = None,
                 scale: np.ndarray | None = None):
        features = tf_keras.Input(shape=(hidden,), name="features")
        self.centre = centre  # the training features' mean, taken off them before the head (folded back on copy)
        self.scale = scale  # their spread, divided out after the centring (folded back on copy)
        head = ClassificationHead(model.num_outputs, 0.0, model.config.seed, name="head")
        logits = head(features)
        super().__init__(inputs=features, outputs=logits, name="feature_head")
        if l2:
            self.add_loss(lambda: l2 * tf.reduce_sum(tf.square(head.logits.kernel)))
        self._setup(model.config, TransferMode.parse("freeze"), model.spec, None, model.label_names)
        self.task = model.task

    def training_stream(self, examples: FeatureExamples, batch_size, epochs, seed, start, bucket,
                        drop_remainder, static_length, shuffle=True) -> tf.data.Dataset:
        rows = tf.data.Dataset.from_tensor_slices((examples.features, examples.targets))
        if shuffle:
            rows = rows.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        return without_autotune(rows.batch(batch_size, drop_remainder=drop_remainder).repeat(epochs).prefetch(AUTOTUNE))

    def evaluation_dataset(self, examples: FeatureExamples, batch_size: int) -> tf.data.Dataset:
        return without_autotune(tf.data.Dataset.from_tensor_slices((examples.features, examples.targets))
                                .batch(batch_size))

    def copy_weights_to(self, model: TaskModel) -> None:
        """The head's weights onto `model`'s head, a standardisation folded in: W (x - m) / s + b = (W / s) x + b -
        m (W / s)."""
        kernel, bias = self.get_layer("head").get_weights()
        if self.scale is not None:
            kernel = kernel / self.scale[:, np.newaxis]
        if self.centre is not None:
            bias = bias - self.centre @ kernel
        model.get_layer("head").set_weights([kernel, bias])


def embed(model: TaskModel, texts: Sequence[str], batch_size: int = 64,
          texts_b: Sequence[str] | None = None) -> np.ndarray:
    """[examples, features]: what the model's head reads for `texts` (and `texts_b`, for a pair model: with
    `--pairs siamese`, |u-v|, u*v and the cosine of the two texts' pooled embeddings), encoder in inference mode."""
    with model.distribute_strategy.scope():
        encoder = sentence_encoder(model)
    dataset = make_dataset(list(texts), None, model.preprocessor, batch_size, model.seq_length, cache=False,
                           texts_b=None if texts_b is None else list(texts_b),
                           long_text=getattr(model, "long_text", None))
    return np.asarray(predict_outputs(encoder, without_autotune(dataset)), np.float32)


def features_of(model: TaskModel, examples: Examples, batch_size: int) -> FeatureExamples:
    """`examples` as the fixed features the head reads (see `embed`), with their targets and weights."""
    return FeatureExamples(embed(model, examples.texts, batch_size, getattr(examples, "texts_b", None)),
                           examples.targets, getattr(examples, "weights", None))


def feature_standardisation(model: TaskModel, features: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None,
                                                                           float]:
    """What the head's fit takes off the fixed features (their mean, their spread; None: nothing) and its L2 factor
    (scikit-learn's C=1, 1 / (2 n), unless said otherwise)."""
    if task_spec(model.task).target == "classes":
        # Multi-label, a label in a few dozen texts: with the L2 of C=1 on raw embeddings the head predicted no label
        # at all (GoEmotions at 8 per label, one draw, macro-F1 0.000; centred: 0.000); standardised with no L2 it
        # scored 0.106 (the CLI's cached, tuned head: 0.124), as a probe reads features (models.cached_heads;
        # benchmarks/multi_label_feature_head.py).
        return features.mean(axis=0), features.std(axis=0) + 1e-6, 0.0
    if getattr(getattr(model, "long_text", None), "apart", False):
        # Pair features (|u-v|, u*v, the cosine) are all of one sign: uncentred, Adam's per-coordinate steps on
        # small batches move their common offset like a bias, and where the fit stops decides the predictions
        # (RTE at 16 per class: 54.9 on one draw against 61.7-62.5 centred; RESULTS.md, "Sentence pairs read apart").
        return features.mean(axis=0), None, 1 / (2 * len(features))
    return None, None, 1 / (2 * len(features))


def fit_head(model: TaskModel, train: Examples, valid: Examples | None, optimization: OptimizationConfig,
             runtime: RuntimeConfig, job: str = "--mode contrastive", extra_callbacks: tuple = (),
             shuffle: bool = True) -> FitOutcome:
    """Fits `model`'s head on its encoder's fixed embeddings of `train` (a logistic regression with
    scikit-learn's default L2) until the training loss stops falling, through the one loop, and copies
    it onto `model`. Also the frozen encoder's fit for sentence pairs read apart (`--pairs siamese
    --feature-cache`): the head then reads the pairs' fixed features."""
    replicas = model.distribute_strategy.num_replicas_in_sync
    batch = max(1, min(optimization.batch_size, len(train) // replicas))
    steps = -(-len(train) // (batch * replicas))
    repeats = -(-HEAD_EPOCH_STEPS // steps)
    train_features = features_of(model, train, batch)
    valid_features = dataclasses.replace(features_of(model, valid, batch), weights=None) if valid else None
    centre, scale, l2 = feature_standardisation(model, train_features.features)
    for features in (train_features, valid_features):
        if features is not None and centre is not None:
            features.features = (features.features - centre) / (1.0 if scale is None else scale)
    train_features = train_features.repeated(repeats)
    with model.distribute_strategy.scope():
        head = FeatureHead(model, train_features.features.shape[-1], l2=l2, centre=centre, scale=scale)
    recipe = dataclasses.replace(optimization, epochs=HEAD_MAX_EPOCHS, learning_rate=HEAD_LEARNING_RATE,
                                 optimizer="adamw", schedule="constant", warmup_fraction=0.0, weight_decay=0.0,
                                 batch_size=batch)
    epoch_steps = max(1, len(train_features) // (batch * replicas))
    quiet = dataclasses.replace(runtime, verbose=0, callbacks=[], steps_per_execution=epoch_steps)
    stop = tf_keras.callbacks.EarlyStopping("loss", min_delta=HEAD_MIN_DELTA, patience=HEAD_PATIENCE)
    outcome = fit_task(head, train_features, valid_features, recipe, quiet, None, job=job, shuffle=shuffle,
                       extra_callbacks=(stop, *extra_callbacks))
    head.copy_weights_to(model)
    if runtime.verbose:
        scores = ", ".join(f"{k} {v[-1]:.4f}" for k, v in outcome.history.items())
        print(f"head fitted on the fixed embeddings for {len(outcome.history['loss'])} epochs: {scores}", flush=True)
    return outcome


def fit_contrastive(model: TaskModel, train: Examples, valid: Examples | None, optimization: OptimizationConfig,
                    runtime: RuntimeConfig, job: str = "--mode contrastive", shuffle: bool = True,
                    extra_callbacks: tuple = ()) -> FitOutcome:
    """Tunes `model`'s encoder on pairs of `train` (optimization's epochs, batch, rate), then fits its head.

    The history holds `contrastive_loss` per pair epoch and the head's own keys per head epoch; the
    validation outputs and best epoch are the head's.
    """
    model.mode.check_applies(model.task, getattr(model.config, "pair", False),
                             getattr(model, "long_text", None) is not None and model.long_text.windowed)
    pairs = PairExamples(list(train.texts), build_pairs(train.targets, model.mode.pair_iterations, runtime.seed))
    with model.distribute_strategy.scope():
        pair_model = PairEncoderModel(model)
    if runtime.verbose:
        print(f"contrastive: {model.mode.describe_pairs(len(pairs), len(train))}", flush=True)
    # Pairs are balanced by construction and have no validation set: class weights and early stopping
    # are the head's.
    pair_options = dataclasses.replace(optimization, class_weight=None, early_stopping=0,
                                       epochs=model.mode.pair_epochs(optimization.epochs))
    tuned = fit_task(pair_model, pairs, None, pair_options, runtime, None, job=job, shuffle=shuffle,
                     extra_callbacks=extra_callbacks)
    head = fit_head(model, train, valid, optimization, runtime, job)
    history = {"contrastive_loss": tuned.history["loss"], **head.history}
    return FitOutcome(history, head.valid_outputs, tuned.seconds + head.seconds, head.best_epoch, tuned.speed)


def _optimization_from(model: TaskModel, epochs: int, batch_size: int) -> OptimizationConfig:
    """The pair fit's options from the model's `compile(...)` arguments, if it was compiled."""
    options = {k: v for k, v in (model._compile_options or {}).items() if v is not None}
    optimizer = options.get("optimizer", "adamw")
    if not isinstance(optimizer, str):
        raise ConfigError("contrastive mode builds its own optimizers for the pair and head fits: compile with "
                          "an optimizer name (adamw, adam, sgd) and learning_rate=, not an optimizer object")
    chosen = {k: options[k] for k in ("learning_rate", "schedule", "warmup_fraction", "weight_decay") if k in options}
    return OptimizationConfig(epochs=epochs, batch_size=batch_size, optimizer=optimizer, **chosen)


def _examples(model: TaskModel, x, y) -> Examples:
    """Texts (texts_a, texts_b for pairs) and labels as the model's Examples."""
    texts, texts_b = model._texts(x)
    return Examples(texts, model.encode_labels(y), texts_b)


# What `model.fit` passes on to a fit on texts and labels (the pair fit's, or the head's on fixed features).
TEXT_FIT_OPTIONS = ("batch_size", "epochs", "verbose", "callbacks", "validation_data", "shuffle", "seed")


def fit_on_texts(model: TaskModel, x, y, batch_size: int | None = None, epochs: int | str = 1, verbose="auto",
                 callbacks=None, validation_data=None, shuffle: bool = True, seed: int = 0, *,
                 fit=fit_contrastive, **others) -> tf_keras.callbacks.History:
    """`model.fit(texts, labels, ...)` by a fit on the texts themselves, a Keras History back: `fit_contrastive`
    (`--mode contrastive`: the pair fit, then the head) or `fit_head` (the head on the encoder's fixed features,
    as `auto` fits sentence pairs read apart)."""
    what = "--mode contrastive: it draws its own pairs" if fit is fit_contrastive else \
        "a head fitted on the encoder's fixed features: it embeds"
    given = {k: v for k, v in others.items() if v is not None}
    if given:
        raise ConfigError(f"fit options {sorted(given)} do not apply to {what} from texts and labels")
    if isinstance(x, tf.data.Dataset) or not model._is_raw(x) or y is None:
        raise ConfigError(f"{what} from texts and their labels, fit(texts, labels) (not from a dataset of "
                          "encoder inputs)")
    train = _examples(model, x, y)
    valid = None
    if validation_data is not None:
        if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
            raise ConfigError("validation_data here is (texts, labels)")
        valid = _examples(model, *validation_data)
    optimization = _optimization_from(model, epochs, batch_size or DEFAULT_BATCH_SIZE)
    level = 1 if verbose == "auto" else int(verbose)
    runtime = RuntimeConfig(seed=seed, verbose=level, callbacks=list(callbacks or []))
    outcome = fit(model, train, valid, optimization, runtime, job="fit() on texts", shuffle=shuffle)
    if model.optimizer is None:
        model.compile()  # evaluate() works on the fitted classifier as on any other
    history = tf_keras.callbacks.History()
    history.history = outcome.history
    history.epoch = list(range(len(outcome.history["loss"])))
    history.model = model
    return history
