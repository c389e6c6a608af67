"""Serving formats (TFLite on raw strings, ONNX on token ids, int8) and the bfloat16 fallback."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from tfhub_transfer.cli.main import main
from tfhub_transfer.config import TrainConfig
from tfhub_transfer.encoders import dtypes
from tfhub_transfer.errors import ConfigError
from tfhub_transfer.export.formats import open_export
from tfhub_transfer.export.onnx import OnnxClassifier
from tfhub_transfer.export.serving import check_exportable, check_format
from tfhub_transfer.export.tflite import MODEL_FILE, TFLiteClassifier
from tfhub_transfer.export.tokenizer import ServingTokenizer
from tfhub_transfer.jobs.options import check_options
from tfhub_transfer.jobs.train import classifier_config, train

PROBES = [
    "The film was wonderful, and I loved every minute.",
    "This phone was terrible, and I regret it.",
    "",
    "GREAT!!! Café déjà vu, naïve résumé",
    "unknownwordzzz qqq",
    "a wonderful day " * 20,  # longer than seq_length: trimmed the same way everywhere
]


@pytest.fixture(scope="module")
def trained(tiny_encoder_no_dropout, demo_data, tmp_path_factory):
    """One short training run exported as TFLite by `train`, plus a SavedModel of the same weights."""
    out = tmp_path_factory.mktemp("serving")
    result = train(TrainConfig.of(mode="finetune",
                                  train=demo_data, encoder=str(tiny_encoder_no_dropout), epochs=3, batch_size=16,
                                  learning_rate=3e-3, seq_length=32, output_dir=out, name="reviews", verbose=0,
                                  export_format="tflite"))
    saved_model = result.model.export(out, "reviews_saved_model")
    return result, out, open_export(saved_model).predict(PROBES)


@pytest.mark.slow
def test_serving_tokenizer_gives_the_preprocessor_ids(trained, demo_data):
    model = trained[0].model
    tokenizer = ServingTokenizer.of_model(model)
    texts = [line.split("\t")[0] for line in demo_data.read_text("utf-8").splitlines()[1:]] + PROBES
    for seq_length, second in ((32, None), (16, texts[::-1]), (5, texts[3:] + texts[:3])):
        ours = tokenizer.encode(texts, seq_length, second)
        reference = model.preprocessor.encode(texts, seq_length, second)
        for name in ours:
            np.testing.assert_array_equal(ours[name].numpy(), reference[name].numpy(), err_msg=name)


def test_tflite_export_runs_in_the_interpreter_and_matches_the_savedmodel(trained):
    result, _, reference = trained
    content = (result.export_path / MODEL_FILE).read_bytes()
    assert b"Flex" not in content and b"HashTable" not in content  # builtins + tensorflow-text's kernels only
    served = open_export(result.export_path)
    assert isinstance(served, TFLiteClassifier) and served.info["format"] == "tflite"
    got = served.predict(PROBES, batch_size=4)
    assert got["labels"] == reference["labels"]
    np.testing.assert_allclose(got["probabilities"], reference["probabilities"], atol=1e-4)
    assert len(set(reference["labels"])) == 2  # trained: both classes are predicted, the labels say something


def test_onnx_export_from_the_cli_matches_the_savedmodel(trained, capsys):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed: pip install 'tfhub_transfer[onnx]'")
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed: pip install 'tfhub_transfer[onnx]'")
    from tfhub_transfer.export.onnx import quantize_int8, session

    result, out, reference = trained
    assert main(["export", "--run", str(result.run_dir), "--out", str(out), "--name", "reviews_onnx",
                 "--format", "onnx"]) == 0
    path = out / "reviews_onnx" / "1"
    served = open_export(path)
    assert isinstance(served, OnnxClassifier)
    got = served.predict(PROBES)
    np.testing.assert_allclose(got["probabilities"], reference["probabilities"], atol=1e-4)
    assert got["labels"] == reference["labels"]
    # On token ids from the model's own preprocessor too: tokenisation outside the graph is the documented path.
    ids = {k: v.numpy() for k, v in result.model.preprocessor.encode(PROBES, 32).items()}
    np.testing.assert_allclose(served.run(ids)["probabilities"], reference["probabilities"], atol=1e-4)

    quantized = path / "int8.onnx"
    quantized.write_bytes(quantize_int8((path / "model.onnx").read_bytes()))
    assert quantized.stat().st_size < (path / "model.onnx").stat().st_size
    int8 = session(quantized).run(["probabilities"], {k: v.astype(np.int32) for k, v in ids.items()})[0]
    assert np.abs(int8 - reference["probabilities"]).max() < 0.05


def test_format_options_are_checked():
    with pytest.raises(ConfigError, match="--quantize"):
        check_format("saved_model", "int8")
    with pytest.raises(ConfigError, match="--format"):
        check_format("torchscript", None)
    with pytest.raises(ConfigError, match="--export-format"):
        check_options(TrainConfig.of(train="x.tsv", export_format="onnx", long_text="windows:8"))
    with pytest.raises(ConfigError, match="--export-format"):
        check_options(TrainConfig.of(train="x.tsv", task="tokens", export_format="tflite"))

    class StringModel:  # an RNN or text-embedding classifier: strings go straight into its first layer
        preprocessor = None

    with pytest.raises(ConfigError, match="saved_model"):
        check_exportable(StringModel(), "tflite")


def _graph_dtypes(encoder_dir) -> set[int]:
    model = saved_model_pb2.SavedModel.FromString((encoder_dir / "saved_model.pb").read_bytes())
    graph = model.meta_graphs[0].graph_def
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    return {value.type for n in nodes for value in n.attr.values() if value.type}


def test_bfloat16_falls_back_to_float32_on_a_cpu_without_bf16(tiny_encoder, monkeypatch, capsys, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_vnni\n")
    assert dtypes.read_cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512f", "avx512_vnni"}
    assert dtypes.bfloat16_fallback({"avx512f", "avx512_bf16"}, accelerator=False) is None
    assert dtypes.bfloat16_fallback({"fp", "asimd", "bf16"}, accelerator=False) is None  # Arm
    assert dtypes.bfloat16_fallback({"avx2"}, accelerator=True) is None  # a GPU / TPU computes bf16
    # Through the training config, on a CPU like this one (AVX-512 without BF16) and no accelerator:
    monkeypatch.setattr(dtypes, "read_cpu_flags", lambda *_: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    monkeypatch.setattr(dtypes, "_has_accelerator", lambda: False)
    config = classifier_config(TrainConfig.of(train="x.tsv", encoder=str(tiny_encoder), dtype="bfloat16"), 2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "bfloat16" in lines[0] and "float32 instead" in lines[0]
    assert config.encoder == str(tiny_encoder)  # the float32 encoder itself: no mixed_bfloat16 copy
    assert tf.bfloat16.as_datatype_enum not in _graph_dtypes(tiny_encoder / "encoder")
    assert tf.float32.as_datatype_enum in _graph_dtypes(tiny_encoder / "encoder")
