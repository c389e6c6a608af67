"""`MaskedLM`: the encoder's `mlm` subobject as a task model, for continued masked-LM pretraining.

The loss is the mean cross-entropy over the real masked positions; `write_encoder` saves the
adapted encoder and its preprocessor as a new versioned TF Hub-format pair.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import tensorflow as tf
import tensorflow_hub as hub
import tf_keras

from tfhub_transfer.encoders.build.hub_writer import (
    ENCODER_DIR,
    METADATA_FILE,
    PREPROCESSOR_DIR,
)
from tfhub_transfer.encoders.resolve import EncoderSpec, read_metadata, resolve_encoder
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.files import versioned_directory
from tfhub_transfer.models.backbone import encoder_inputs
from tfhub_transfer.models.base import TaskModel
from tfhub_transfer.preprocessing.masking import MaskingConfig, mlm_dataset
from tfhub_transfer.preprocessing.text import TextPreprocessor
from tfhub_transfer.transfer.modes import TransferMode

PACKED = "pretraining packs consecutive lines into full sequences, so there is no padding to bucket"


@dataclasses.dataclass(frozen=True)
class MaskedLMConfig:
    encoder: str = "default"
    preprocessor: str | None = None
    seq_length: int = 128
    whole_word_masking: bool = False


class MaskedLM(TaskModel):
    """Wraps the encoder's `mlm` subobject (trainable `hub.KerasLayer`); outputs vocabulary logits.

    Args:
      config: a `MaskedLMConfig` (encoder, preprocessor, seq_length, whole-word masking).
    Example:
      >>> from tfhub_transfer import MaskedLM, TaskModel
      >>> MaskedLM.task, issubclass(MaskedLM, TaskModel)
      ('masked_lm', True)
    """

    task = "masked_lm"
    unsupported = {"bucket": PACKED}

    def __init__(self, config: MaskedLMConfig, **kwargs):
        spec = resolve_encoder(config.encoder, config.preprocessor)
        if spec.preprocessor.startswith(("http://", "https://")) or not Path(spec.preprocessor).is_dir():
            raise EncoderError("continued pretraining writes a local copy of the preprocessor: pass a "
                               f"local preprocessor directory, not {spec.preprocessor}")
        preprocessor = TextPreprocessor(spec.preprocessor)
        loaded, layer = _load_mlm(spec)
        inputs = encoder_inputs()
        inputs["masked_lm_positions"] = tf_keras.Input(shape=(None,), dtype=tf.int32, name="masked_lm_positions")
        logits = layer(inputs)["mlm_logits"]
        super().__init__(inputs=inputs, outputs=logits, name=kwargs.pop("name", "masked_lm"), **kwargs)
        self.loaded = loaded
        self.loss_tracker = tf_keras.metrics.Mean(name="loss")
        self._setup(config, TransferMode.parse("finetune"), spec, preprocessor)
        self.masking = MaskingConfig(whole_word=config.whole_word_masking, seq_length=config.seq_length)

    @classmethod
    def from_encoder(cls, encoder: str = "default", **options) -> MaskedLM:
        """A masked LM on `encoder` (it must have an `mlm` subobject, as this package's encoders do)."""
        return cls(MaskedLMConfig(encoder=encoder, **options))

    @property
    def num_outputs(self) -> int:
        return self.preprocessor.vocab_size

    @property
    def metrics(self):
        return [self.loss_tracker, *super().metrics]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
        losses = tf_keras.losses.sparse_categorical_crossentropy(y, y_pred, from_logits=True)
        weights = tf.cast(sample_weight, losses.dtype)
        loss = tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)
        self.loss_tracker.update_state(loss)
        return loss

    def training_stream(self, examples, batch_size, epochs, seed, start, bucket, drop_remainder,
                        static_length, shuffle=True) -> tf.data.Dataset:
        """Packed sequences, masked anew every epoch."""
        return mlm_dataset(examples, self.preprocessor.special_ids, self.masking, batch_size, shuffle, None)

    def evaluation_dataset(self, examples, batch_size: int):
        return mlm_dataset(examples, self.preprocessor.special_ids, self.masking, batch_size, False, None)

    def write_encoder(self, out_root: str | Path, record: dict) -> Path:
        """Writes OUT/<version>/{encoder, preprocessor, metadata}: the same interface as the input."""
        with versioned_directory(out_root) as (tmp, claimed):
            tf.saved_model.save(self.loaded, str(tmp / ENCODER_DIR))
            shutil.copytree(self.spec.preprocessor, tmp / PREPROCESSOR_DIR)
            meta = {**read_metadata(Path(self.spec.encoder).parent), **record}
            (tmp / METADATA_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return claimed.path


def evaluate_mlm(model: MaskedLM, dataset) -> dict:
    """Masked-token accuracy and perplexity over the real masked positions."""
    total_loss, correct, count = 0.0, 0.0, 0.0
    for inputs, ids, weights in dataset:
        logits = model(inputs, training=False)
        losses = tf_keras.losses.sparse_categorical_crossentropy(ids, logits, from_logits=True)
        hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), ids), tf.float32)
        total_loss += float(tf.reduce_sum(losses * weights))
        correct += float(tf.reduce_sum(hits * weights))
        count += float(tf.reduce_sum(weights))
    mean = total_loss / max(count, 1.0)
    return {"masked_accuracy": correct / max(count, 1.0), "loss": mean,
            "perplexity": float(math.exp(min(mean, 50.0))), "masked_tokens": int(count)}



def _load_mlm(spec: EncoderSpec):
    loaded = hub.load(spec.encoder)
    if not hasattr(loaded, "mlm"):
        raise EncoderError(
            f"encoder {spec.encoder} has no `mlm` subobject, so it cannot continue masked-LM "
            f"pretraining. Encoders written by this package (and Model Garden BERT exports) have one."
        )
    return loaded, hub.KerasLayer(loaded.mlm, trainable=True, name="mlm")


