"""Length bucketing, steps_per_execution and bfloat16 encoder copies."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders.build.bert import build_bert
from tfhub_transfer.encoders.build.config import BertConfig
from tfhub_transfer.encoders.build.hub_writer import METADATA_FILE
from tfhub_transfer.encoders.variants import encoder_variant
from tfhub_transfer.errors import EncoderError
from tfhub_transfer.jobs.train import train
from tfhub_transfer.preprocessing.text import TextPreprocessor, make_training_dataset

WORDS = "the film was good bad dull great plot story actors".split()
TEXTS = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(1 + (i * 7) % 23)) for i in range(200)]
LABELS = np.arange(200, dtype=np.int32)


@pytest.fixture(scope="module")
def preprocessor(tiny_encoder):
    return TextPreprocessor(str(tiny_encoder / "preprocessor"))


def stream(preprocessor, **kwargs):
    dataset, steps = make_training_dataset(TEXTS, LABELS, preprocessor, 16, 64, **kwargs)
    return [(x["input_word_ids"].numpy(), y.numpy()) for x, y in dataset], steps


def test_each_epoch_sees_every_example_once_in_a_seeded_order(preprocessor):
    batches, steps = stream(preprocessor, epochs=2, seed=3)
    assert steps == 13 and len(batches) == 26
    epochs = [np.concatenate([y for _, y in batches[:13]]), np.concatenate([y for _, y in batches[13:]])]
    for ids in epochs:
        assert sorted(ids.tolist()) == list(range(200))
    assert not np.array_equal(epochs[0], epochs[1])
    again, _ = stream(preprocessor, epochs=2, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(batches, again))


def test_bucketing_pads_less_than_plain_dynamic_padding(preprocessor):
    bucketed, _ = stream(preprocessor, epochs=1, bucket=True)
    plain, _ = stream(preprocessor, epochs=1, bucket=False)
    cells = [sum(x.size for x, _ in run) for run in (bucketed, plain)]
    assert cells[0] < 0.8 * cells[1]
    real = sum(int((x > 0).sum()) for x, _ in plain)
    assert real == sum(int((x > 0).sum()) for x, _ in bucketed)  # same tokens, less padding


def test_a_resumed_stream_is_the_tail_of_the_full_stream(preprocessor):
    full, _ = stream(preprocessor, epochs=3, seed=1)
    tail, _ = stream(preprocessor, epochs=3, seed=1, start_epoch=1, start_step=5)
    assert len(tail) == len(full) - 13 - 5
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(tail, full[18:]))


@pytest.mark.slow
def test_steps_per_execution_gives_the_same_weights(tiny_encoder_no_dropout, tmp_path, demo_data):
    weights = []
    for steps in (1, 4):
        result = train(TrainConfig.of(mode="finetune",
                                      train=demo_data, encoder=str(tiny_encoder_no_dropout), dropout=0.0,
                                   epochs=1, batch_size=8, learning_rate=3e-3, steps_per_execution=steps,
                                   output_dir=tmp_path, name=f"spe{steps}", export=False, verbose=0))
        weights.append([w.numpy() for w in result.model.weights])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, atol=1e-6)


BF16_CPU = {"avx512f", "avx512_bf16"}  # as if this CPU had bf16 instructions (else --dtype bfloat16 falls back)


def test_bfloat16_copy_is_written_once_and_matches_float32(tiny_encoder, preprocessor, tmp_path):
    source = tmp_path / "tiny"
    shutil.copytree(tiny_encoder, source)
    copy = encoder_variant(str(source), "bfloat16", cpu_flags=BF16_CPU)
    assert copy == str(tmp_path / "tiny-bfloat16")
    stamp = (tmp_path / "tiny-bfloat16" / "encoder" / "saved_model.pb").stat().st_mtime_ns
    assert encoder_variant(str(source), "bfloat16", cpu_flags=BF16_CPU) == copy
    assert (tmp_path / "tiny-bfloat16" / "encoder" / "saved_model.pb").stat().st_mtime_ns == stamp
    inputs = preprocessor.encode(TEXTS[:8], 64)
    full = hub.KerasLayer(str(source / "encoder"))(inputs)["sequence_output"]
    half = hub.KerasLayer(copy + "/encoder")(inputs)["sequence_output"]
    assert half.dtype == tf.float32
    cosine = tf.reduce_sum(tf.math.l2_normalize(full, -1) * tf.math.l2_normalize(half, -1), -1)
    assert float(tf.reduce_min(cosine)) > 0.99
    assert float(tf.reduce_max(tf.abs(full - half))) > 0  # it really computes in bfloat16


def test_bfloat16_on_a_published_style_encoder_explains_hub_466(tiny_encoder, tmp_path):
    bare = tmp_path / "bare_encoder"
    shutil.copytree(tiny_encoder / "encoder", bare)
    with pytest.raises(EncoderError, match="tensorflow/hub#466"):
        encoder_variant(str(bare), "bfloat16", preprocessor=str(tiny_encoder / "preprocessor"), cpu_flags=BF16_CPU)


def test_a_bfloat16_encoder_keeps_layer_norms_and_the_residual_stream_in_float32():
    config = BertConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                        compute_dtype="bfloat16")
    encoder, _ = build_bert(config)
    block = encoder.blocks[0]
    matmuls = (block.self_attention, block.self_attention._query_dense, block.self_attention._softmax,
               block.intermediate, block.output_dense)
    assert {layer.compute_dtype for layer in matmuls} == {"bfloat16"}
    assert {layer.compute_dtype for layer in (block.attention_layer_norm, block.output_layer_norm,
                                              block.output_dropout, encoder.word_embeddings)} == {"float32"}
    assert {v.dtype for v in encoder.variables} == {tf.float32}
    outputs = encoder(encoder.dummy_inputs())
    assert outputs["sequence_output"].dtype == tf.float32
    assert block.intermediate(outputs["sequence_output"]).dtype == tf.bfloat16
    with pytest.raises(ValueError, match="compute_dtype"):
        BertConfig(vocab_size=50, compute_dtype="float16")


def test_a_bfloat16_copy_written_by_an_older_recipe_is_rewritten(tiny_encoder, tmp_path):
    source = tmp_path / "tiny"
    shutil.copytree(tiny_encoder, source)
    copy = Path(encoder_variant(str(source), "bfloat16", cpu_flags=BF16_CPU))
    meta = json.loads((copy / METADATA_FILE).read_text())
    assert meta["config"]["compute_dtype"] == "bfloat16"
    del meta["config"]["compute_dtype"]  # as the whole-model mixed_bfloat16 copies of earlier versions
    (copy / METADATA_FILE).write_text(json.dumps(meta))
    assert encoder_variant(str(source), "bfloat16", cpu_flags=BF16_CPU) == str(copy)
    assert json.loads((copy / METADATA_FILE).read_text())["config"]["compute_dtype"] == "bfloat16"
