"""`StringInputModel`: a task model whose first layer takes raw strings (an RNN on word vectors, a TF Hub
text-embedding module); its batches are the strings themselves."""

from __future__ import annotations

import tensorflow as tf

from tfhub_transfer.config import HEAD_LEARNING_RATE
from tfhub_transfer.models.adaptation import streamed_batches
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.preprocessing.text import make_string_dataset, make_training_dataset


class StringInputModel(TaskModel):
    """A task model whose first layer takes raw strings (TextVectorization, a text-embedding module)."""

    takes_texts = True

    def default_learning_rate(self) -> float:
        return HEAD_LEARNING_RATE  # small models (an RNN, a bag of word vectors) train well at the head's rate

    def encode_examples(self, x, y=None, batch_size=32, shuffle=False, seed=0, sample_weight=None) -> tf.data.Dataset:
        return make_string_dataset(list(x), self.encode_labels(y), batch_size, shuffle, seed, sample_weight)

    def _takes_strings(self, dataset: tf.data.Dataset) -> bool:
        return False  # strings are this model's inputs

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        if getattr(examples, "streamed", False):  # raw string batches are already this model's inputs
            return streamed_batches(examples, batch_size, epochs, seed, start, drop_remainder, shuffle)
        dataset, _ = make_training_dataset(examples.texts, examples.targets, None, batch_size, 0, epochs,
                                           seed=seed, shuffle=shuffle, bucket=False, start_epoch=start.epoch,
                                           start_step=start.step, drop_remainder=drop_remainder)
        return dataset

    def evaluation_dataset(self, examples, batch_size: int) -> tf.data.Dataset:
        if getattr(examples, "streamed", False):
            return examples.evaluation_batches(batch_size)
        return make_string_dataset(examples.texts, examples.targets, batch_size)
