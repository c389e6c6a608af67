"""`fit`, `evaluate`, `predict` and `lr_find` of a task model: the Keras methods that also take raw strings
(and label names), compile with the defaults, size the default schedule and add the transfer mode's phases.

- `fit()` takes model inputs, or raw strings (and label names) that the input pipeline
  tokenises; it adds the mode's phases itself (the head alone first, gradual unfreezing).
- `lr_find()` is fastai's learning-rate range test, with frozen groups and per-group rates as in `fit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfhub_transfer.errors import ConfigError
from tfhub_transfer.files import replace_file
from tfhub_transfer.models.adaptation import DEFAULT_BATCH_SIZE
from tfhub_transfer.training.budget import auto_epochs
from tfhub_transfer.training.callbacks import EarlyStopping, fit_progress, summary_verbosity
from tfhub_transfer.training.loop import inputs_only
from tfhub_transfer.training.lr_finder import LRFinderResult, range_test
from tfhub_transfer.transfer.unfreezing import TransferPhases, phase_callback


class Fitting:
    """Mixin of `TaskModel`: the Keras entry points on every input form (models.adaptation reads them)."""

    def packed_for_training(self, x):
        """What a training step reads from `x`'s batches: the batches themselves, unless the model packs
        them (see TextClassifier)."""
        return x

    # -- fit / evaluate / predict -----------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_data=None, shuffle=True, steps_per_epoch=None, seed: int = 0, *, class_weight=None,
            sample_weight=None, early_stopping: int = 0, **kwargs):
        """`tf_keras.Model.fit` that also takes raw strings and label names, compiles with the
        defaults when not compiled, sizes the default schedule, and adds gradual unfreezing.

        `class_weight`: {label name or class id: weight} (unnamed classes weigh 1), `label=weight,...`,
        or `balanced` (n / (classes x count), from `y`); single-label tasks only. `sample_weight`: one
        weight per example, also with raw strings (it rides through the input pipeline).
        `epochs="auto"`: enough optimizer steps for small data, one to three passes for large (`--epochs auto`,
        training.budget.auto_epochs). `early_stopping=PATIENCE`: stop after that many epochs without a better
        validation score (`objective.monitor`) and end with the best epoch's weights.

        `x` takes every form Keras users pass (see models.inputs): texts as a list, array, Series or string
        tensor with `y` their label names or class ids; a DataFrame with `text` (`text_b` for pairs) and
        `label` columns; a tf.data dataset of (strings, labels) or (strings, labels, weights), batched (its
        batch size is used unless `batch_size` is given; it is read in its own order) or not. Bad input gets
        one ConfigError / DataError naming the argument (`x`, `y`, `sample_weight`) before any training.
        """
        given = self._given(x, y, sample_weight, "fit")
        x, y, sample_weight = given.x, given.y, given.sample_weight
        if given.from_dataset:
            batch_size, shuffle = batch_size or given.batch_size, False  # Keras reads a dataset as it comes
        if self.optimizer is None:
            self.compile()
        elif self._stale_compile:
            self.compile(**self._compile_options)
        batch = batch_size or DEFAULT_BATCH_SIZE
        per_class = self.class_weight_vector(class_weight, y)
        dataset = self._inputs_from(x, y, batch, shuffle, seed, sample_weight)
        if dataset is not None:
            x, y, batch_size, sample_weight = dataset, None, None, None
        x, sample_weight = self._weighted(x, y, sample_weight, per_class)
        x = self.packed_for_training(x)
        validation_data = self._validation_dataset(validation_data, batch)
        steps = self._epoch_steps(x, batch, steps_per_epoch)
        epochs = self._fit_epochs(epochs, steps, batch)
        phases = self.transfer_callbacks(callbacks or [], steps, epochs)
        head_steps = phases[0].frozen_steps if phases and phases[0].frozen_steps else 0
        self._size_schedule(steps, epochs, head_steps)
        callbacks = [*phases, *(callbacks or [])]
        if early_stopping:
            if validation_data is None:
                raise ConfigError("early_stopping watches the validation score: pass validation_data")
            callbacks.append(EarlyStopping(early_stopping, self.objective.monitor, self.objective.monitor_mode))
        verbose, progress = fit_progress(verbose, epochs)  # lines, not `\r` bars, when logged to a file
        return super().fit(x, y, batch_size=batch_size, epochs=epochs, verbose=verbose,
                           callbacks=callbacks + progress,
                           validation_data=validation_data, shuffle=shuffle, steps_per_epoch=steps_per_epoch,
                           sample_weight=sample_weight, **kwargs)

    @staticmethod
    def _fit_epochs(epochs, steps: int | None, batch: int) -> int:
        """`epochs` as given, or for `"auto"` the step budget of `--epochs auto` (training.budget.auto_epochs)."""
        if epochs != "auto":
            return epochs
        if steps is None:
            raise ConfigError("fit(epochs='auto') sizes the budget from the batches in an epoch, and this input does "
                              "not say how many: pass texts, a dataset of known length, or steps_per_epoch (or a "
                              "number of epochs)")
        return auto_epochs(steps * batch, batch)

    @staticmethod
    def _epoch_steps(x, batch, steps_per_epoch) -> int | None:
        """Steps per epoch of a fit on `x`, or None when the input does not say."""
        if steps_per_epoch is not None:
            return int(steps_per_epoch)
        if isinstance(x, tf.data.Dataset):
            cardinality = int(x.cardinality())
            return cardinality if cardinality > 0 else None
        if x is not None:
            return -(-len(tf.nest.flatten(x)[0]) // batch)
        return None

    def _size_schedule(self, steps: int | None, epochs: int, head_steps: int = 0) -> None:
        """Sizes the default schedule for this fit; a head-only phase of `head_steps` gets its own cycle."""
        if self._schedule is None:
            return
        start = int(self.optimizer.iterations.numpy())
        # Unknown length: keep the last one, but start this fit's own warmup and decay where it begins.
        total = steps * epochs if steps else self._schedule.total_steps
        if self._schedule.set_total_steps(total, start, head_steps):
            self.train_function = None

    def transfer_callbacks(self, given: Sequence, steps_per_epoch: int | None = None, epochs: int = 1) -> list:
        """The callbacks the transfer mode needs (its phases: the head alone first, gradual unfreezing) for
        a fit of `epochs` x `steps_per_epoch`, unless `given` already holds such a callback."""
        if self.layer_groups is None or any(isinstance(c, TransferPhases) for c in given):
            return []
        callback = phase_callback(self.mode, self.layer_groups, self.unused_groups, steps_per_epoch, epochs)
        return [callback] if callback is not None else []

    def lr_find(self, x, y=None, start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
                batch_size: int | None = None, *, stop_factor: float = 4.0, sample_weight=None, class_weight=None,
                seed: int = 0, plot_to: str | Path | None = None, verbose: int = 1) -> LRFinderResult:
        """Smith's learning-rate range test (fastai's `lr_find`): which base learning rate to train at.

        Trains on up to `num_steps` batches of `x` (the same inputs as `fit`; repeated when shorter)
        while the rate grows exponentially from `start_lr` to `end_lr`, stopping once the smoothed
        loss passes `stop_factor` x its best. Frozen groups stay frozen and per-group multipliers
        apply, as in `fit`. The weights, frozen groups and optimizer state are then put back.
        Returns the curve with the `valley` (the `suggestion`) and `steepest` rates; `plot_to`
        writes the loss-vs-rate PNG (`result.plot_png()` gives its bytes).
        """
        given = self._given(x, y, sample_weight, "lr_find")
        x, y, sample_weight = given.x, given.y, given.sample_weight
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        per_class = self.class_weight_vector(class_weight, y)
        dataset = self._inputs_from(x, y, batch, True, seed, sample_weight)
        if dataset is None:  # model inputs as arrays
            parts = tuple(part for part in (x, y, sample_weight) if part is not None)
            dataset = tf.data.Dataset.from_tensor_slices(parts).shuffle(4096, seed=seed).batch(batch)
        dataset, _ = self._weighted(dataset, None, None, per_class)
        result = range_test(self, self.packed_for_training(dataset).repeat(), start_lr, end_lr, num_steps,
                            stop_factor, verbose)
        if plot_to is not None:
            replace_file(plot_to, lambda handle: handle.write(result.plot_png()))
        return result

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        """`tf_keras.Model.evaluate`; `x` and `y` take the forms `fit` takes (texts go through the input
        pipeline); no texts, or no labels, is a DataError naming the argument."""
        given = self._given(x, y, kwargs.pop("sample_weight", None), "evaluate")
        kwargs["verbose"] = summary_verbosity(kwargs.get("verbose", "auto"))
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        dataset = self._inputs_from(given.x, given.y, batch, False, sample_weight=given.sample_weight)
        if dataset is not None:
            return super().evaluate(dataset, None, batch_size=None, **kwargs)
        return super().evaluate(given.x, given.y, batch_size=batch_size, sample_weight=given.sample_weight,
                                **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        """`tf_keras.Model.predict`: logits, [examples, classes] (a score for regression), in `x`'s order.

        `x` takes the forms `fit` takes (labels in it are ignored). One string is a batch of one (one row
        back); an empty list gives an empty [0, classes] array. Texts must be str (UTF-8 bytes are decoded):
        anything else is one ConfigError / DataError naming `x`.
        """
        given = self._given(x, None, None, "predict")
        kwargs["verbose"] = summary_verbosity(kwargs.get("verbose", "auto"))
        if given.raw and given.count == 0:
            return np.zeros((0, self.num_outputs), np.float32)
        batch = batch_size or given.batch_size or DEFAULT_BATCH_SIZE
        dataset = self._inputs_from(given.x, None, batch, False)
        if dataset is not None:
            return super().predict(dataset.map(inputs_only), batch_size=None, **kwargs)
        return super().predict(given.x, batch_size=batch_size, **kwargs)

    def predict_labels(self, x, batch_size: int = 32) -> list[str]:
        """The predicted label name of each text (single-label models), in `x`'s order.

        `x` takes the forms `predict` takes. A model built with `num_classes` names its classes
        "0".."n-1" (give `labels=[...]` to name them).

        Example:
          >>> model.predict_labels(["great film", "dull"])
          ['pos', 'neg']
        """
        if self.task != "single_label" or not self.label_names:
            raise ConfigError(f"predict_labels picks one class per text: it applies to single-label models, not "
                              f"task={self.task!r}; use predict() for its scores")
        names = self.label_names
        ids = np.argmax(self.predict(x, batch_size=batch_size, verbose=0), axis=-1)
        return [names[i] for i in ids]
