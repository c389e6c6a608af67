"""Encoder families: each tiny checkpoint made by `transformers` (tools/make_family_references.py) converts,
tokenises like the Hugging Face tokenizer and computes what PyTorch computed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub
import tensorflow_text  # noqa: F401  (the preprocessors' ops)

from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint, load_hf_checkpoint, read_family
from tfhub_transfer.encoders.build.families import EncoderFamily, families, family_for, register_family
from tfhub_transfer.encoders.build.preprocessor_module import (
    BertPreprocessorModule,
    SentencepiecePreprocessorModule,
)
from tfhub_transfer.encoders.build.safetensors_reader import read_safetensors
from tfhub_transfer.encoders.build.tokenizer_files import SENTENCEPIECE, XLMR_ID_OFFSET, detect_tokenizer
from tfhub_transfer.encoders.build.torch_reader import read_torch_state_dict
from tfhub_transfer.errors import EncoderError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "families"
# fixture -> (family, tokenizer kind, whether the checkpoint has a [CLS] pooler, pooled_output "auto" gives)
EXPECTED = {
    "bert": ("bert", "wordpiece", True, "pooler"),
    "electra": ("electra", "wordpiece", False, "first"),
    "distilbert": ("distilbert", "wordpiece", False, "first"),
    "roberta-wordpiece": ("roberta", "wordpiece", False, "first"),
    "xlm-roberta": ("roberta", "sentencepiece", True, "pooler"),
    "bert-sentencepiece": ("bert", "sentencepiece", True, "mean"),
    "mpnet": ("mpnet", "wordpiece", True, "mean"),
}
ATOL = 1e-5


def LONGER_RUNS(names):  # noqa: N802 (reads as a marker)
    """Families whose slower end-to-end runs go to `make integration` (CI runs both; make test keeps its 12 minutes)."""
    return [pytest.param(name, marks=pytest.mark.integration) for name in names]


def reference(name: str) -> dict:
    return json.loads((FIXTURES / name / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def preprocessors() -> dict:
    """Each fixture's preprocessor module, as the converter builds it (in memory; the saved form is tested
    by test_converted_pair_loads_as_hub_layers_with_family_metadata)."""
    built = {}
    for name in EXPECTED:
        tokenizer = detect_tokenizer(FIXTURES / name)
        vocab_size = json.loads((FIXTURES / name / "config.json").read_text())["vocab_size"]
        if tokenizer.kind == SENTENCEPIECE:
            built[name] = SentencepiecePreprocessorModule(
                str(tokenizer.path), tokenizer.special_ids(vocab_size), XLMR_ID_OFFSET)
        else:
            built[name] = BertPreprocessorModule(str(tokenizer.path), tokenizer.special_ids(), tokenizer.lower_case,
                                                 packing=tokenizer.packing)
    return built


def pack(preprocessor, texts: list, seq_length: int) -> dict:
    columns = list(zip(*texts)) if isinstance(texts[0], (list, tuple)) else [texts]
    # `.__call__`: a module built in memory keeps its functions as instance attributes (call syntax misses them).
    segments = [preprocessor.tokenize.__call__(tf.constant(list(column))) for column in columns]
    return preprocessor.bert_pack_inputs.__call__(segments, seq_length=tf.constant(seq_length))


def unpadded(row: np.ndarray, mask: np.ndarray) -> list[int]:
    return [int(i) for i, m in zip(row, mask) if m]


def test_every_family_is_registered_once_and_dispatched_on_model_type():
    names = [f.name for f in families()]
    assert len(names) == len(set(names)) and set(names) >= {"bert", "distilbert", "electra", "roberta", "mpnet"}
    assert family_for("xlm-roberta", "x").name == "roberta" and family_for(None, "x").name == "bert"
    with pytest.raises(EncoderError, match=r"model_type 'gpt2' is not supported.*electra \(model_type electra\)"):
        family_for("gpt2", "ckpt")
    with pytest.raises(ValueError, match="already handled by family 'bert'"):
        register_family(EncoderFamily("other", ("bert",), "", None, None, (), ()))
    for name, (family, kind, _, _) in EXPECTED.items():
        assert read_family(FIXTURES / name)[0].name == family
        assert detect_tokenizer(FIXTURES / name).kind == kind


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tokenizer_gives_the_hugging_face_ids(name, preprocessors):
    """~200 strings (Hangul, accents, emoji, very long words) one by one, and 100 two-segment pairs."""
    ref, preprocessor = reference(name), preprocessors[name]
    strings = ref["strings"]
    single = pack(preprocessor, strings, 512)
    got = [unpadded(r, m) for r, m in zip(single["input_word_ids"].numpy(), single["input_mask"].numpy())]
    mismatches = [(s, g, w) for s, g, w in zip(strings, got, ref["ids"]) if g != w]
    assert not mismatches, f"{len(mismatches)} of {len(strings)} differ, e.g. {mismatches[:2]}"
    pairs = list(zip(strings[::2], strings[1::2]))
    packed = pack(preprocessor, pairs, 512)
    got = [unpadded(r, m) for r, m in zip(packed["input_word_ids"].numpy(), packed["input_mask"].numpy())]
    mismatches = [(p, g, w) for p, g, w in zip(pairs, got, ref["pair_ids"]) if g != w]
    assert not mismatches, f"{len(mismatches)} of {len(pairs)} pairs differ, e.g. {mismatches[:1]}"


@pytest.fixture(scope="module")
def encoders() -> dict:
    return {name: load_hf_checkpoint(FIXTURES / name) for name in EXPECTED}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_outputs_match_pytorch(name, encoders, preprocessors):
    """A padded batch of Korean/accented/emoji texts and a batch of two-segment pairs."""
    encoder, _, info = encoders[name]
    _, _, has_pooler, pooled = EXPECTED[name]
    assert info["pooler"] == ("from checkpoint" if has_pooler else "freshly initialised (checkpoint has none)")
    assert encoder.config.pooled_output == pooled
    ref = reference(name)
    for batch, texts in (("singles", ref["singles_text"]), ("pairs", ref["pairs_text"])):
        want = ref[batch]
        inputs = pack(preprocessors[name], texts, len(want["input_ids"][0]))
        np.testing.assert_array_equal(inputs["input_word_ids"].numpy(), want["input_ids"])
        np.testing.assert_array_equal(inputs["input_mask"].numpy(), want["attention_mask"])
        out = encoder(inputs, training=False)
        mask = np.asarray(want["attention_mask"], bool)
        # Padding positions compute nothing any real token reads; only real tokens are compared.
        np.testing.assert_allclose(out["sequence_output"].numpy()[mask], np.asarray(want["sequence_output"])[mask],
                                   atol=ATOL)
        expected_pooled = {"pooler": want.get("pooler_output"), "mean": want["mean"],
                           "first": np.asarray(want["sequence_output"])[:, 0]}[pooled]
        np.testing.assert_allclose(out["pooled_output"].numpy(), expected_pooled, atol=ATOL)
        if has_pooler:
            np.testing.assert_allclose(out["cls_pooled_output"].numpy(), want["pooler_output"], atol=ATOL)


def test_electra_projects_its_narrower_embeddings(encoders):
    encoder = encoders["electra"][0]
    assert encoder.config.embedding_size == 16 and encoder.config.hidden_size == 32
    assert encoder.word_embeddings.embeddings.shape == (len((FIXTURES / "electra" / "vocab.txt").read_text(
        encoding="utf-8").splitlines()), 16)
    assert encoder.embedding_projection.kernel.shape == (16, 32)
    assert encoders["electra"][1].transform.kernel.shape == (32, 16)  # the MLM head is tied to the 16-wide table


def test_roberta_positions_and_token_types_are_folded_into_bert_form(encoders):
    """Positions from padding_idx + 1 become rows from 0; its one type row serves both segment types."""
    encoder = encoders["roberta-wordpiece"][0]
    weights = read_safetensors(FIXTURES / "roberta-wordpiece" / "model.safetensors")
    table = weights["roberta.embeddings.position_embeddings.weight"]
    np.testing.assert_array_equal(encoder.position_embedding.embeddings.numpy(), table[2:])
    types = encoder.type_embeddings.embeddings.numpy()
    np.testing.assert_array_equal(types[0], types[1])


@pytest.mark.parametrize("name", ["electra", *LONGER_RUNS(["xlm-roberta", "mpnet"])])
def test_converted_pair_loads_as_hub_layers_with_family_metadata(name, tmp_path):
    """The written SavedModel pair: Korean strings in, the PyTorch outputs out; metadata names family/tokenizer."""
    out = convert_hf_checkpoint(FIXTURES / name, tmp_path / "pair")
    meta = json.loads((out / "tfhub_transfer.json").read_text())
    family, kind, _, pooled = EXPECTED[name]
    assert (meta["family"], meta["tokenizer"], meta["pooled_output"]) == (family, kind, pooled)
    preprocessor = hub.load(str(out / "preprocessor"))
    encoder = hub.KerasLayer(str(out / "encoder"))
    ref = reference(name)["singles"]
    inputs = pack(preprocessor, reference(name)["singles_text"], len(ref["input_ids"][0]))
    mask = np.asarray(ref["attention_mask"], bool)
    np.testing.assert_allclose(encoder(inputs)["sequence_output"].numpy()[mask],
                               np.asarray(ref["sequence_output"])[mask], atol=ATOL)
    if kind == SENTENCEPIECE:
        assert (out / "preprocessor" / "assets" / "sentencepiece.model").read_bytes() == (
            FIXTURES / name / "sentencepiece.bpe.model").read_bytes()
        assert not (out / "vocab.txt").exists() and not hasattr(preprocessor, "vocab_file")
        assert meta["lower_case"] is None
    default = preprocessor(tf.constant(["영화가 정말 재미있었어요"]))
    assert default["input_word_ids"].shape == (1, 128)


def test_byte_level_bpe_and_unknown_model_types_are_refused_naming_the_supported_ones(tmp_path):
    bpe = tmp_path / "roberta-base"
    shutil.copytree(FIXTURES / "roberta-wordpiece", bpe)
    (bpe / "vocab.txt").unlink()
    (bpe / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    (bpe / "vocab.json").write_text(json.dumps({"<s>": 0}))
    (bpe / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(EncoderError, match=r"byte-level BPE.*not supported.*WordPiece.*SentencePiece.*roberta"):
        convert_hf_checkpoint(bpe, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    electra_sp = tmp_path / "electra-sp"
    shutil.copytree(FIXTURES / "electra", electra_sp)
    (electra_sp / "vocab.txt").unlink()
    (electra_sp / "tokenizer_config.json").unlink()
    shutil.copy(FIXTURES / "xlm-roberta" / "sentencepiece.bpe.model", electra_sp)
    with pytest.raises(EncoderError, match="sentencepiece with a electra body"):
        convert_hf_checkpoint(electra_sp, tmp_path / "out")
    (electra_sp / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    with pytest.raises(EncoderError, match=r"model_type 'deberta-v2' is not supported.*roberta.*mpnet"):
        convert_hf_checkpoint(electra_sp, tmp_path / "out")


def test_pytorch_bin_is_read_without_pytorch():
    """dtypes (f16, bf16 widened, int64, 0-d), strides (transposed, sliced views) and Parameters, as saved."""
    tensors = read_torch_state_dict(FIXTURES / "pytorch-bin" / "dtypes.bin")
    want = json.loads((FIXTURES / "pytorch-bin" / "dtypes.json").read_text())
    assert set(tensors) == set(want)
    for name, values in want.items():
        np.testing.assert_allclose(tensors[name].astype(np.float32), values, rtol=1e-2 if name == "bf16" else 1e-3)
    assert tensors["bf16"].dtype == np.float32 and tensors["i64"].dtype == np.int64
    np.testing.assert_array_equal(tensors["transposed"], tensors["f32"].T)


def test_a_pytorch_bin_checkpoint_converts_to_the_same_outputs(tmp_path, encoders, preprocessors):
    ckpt = tmp_path / "koelectra-bin"
    shutil.copytree(FIXTURES / "electra", ckpt)
    (ckpt / "model.safetensors").unlink()
    shutil.copy(FIXTURES / "pytorch-bin" / "pytorch_model.bin", ckpt)
    encoder = load_hf_checkpoint(ckpt)[0]
    inputs = pack(preprocessors["electra"], reference("electra")["singles_text"], 24)
    np.testing.assert_array_equal(encoder(inputs)["sequence_output"].numpy(),
                                  encoders["electra"][0](inputs)["sequence_output"].numpy())


def test_a_pickle_with_anything_but_tensors_is_refused_with_the_conversion(tmp_path):
    import pickle
    import zipfile

    ckpt = tmp_path / "evil"
    shutil.copytree(FIXTURES / "distilbert", ckpt)
    (ckpt / "model.safetensors").unlink()
    with zipfile.ZipFile(ckpt / "pytorch_model.bin", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(shutil.rmtree))  # would run code if it were trusted
    with pytest.raises(EncoderError, match=r"shutil.rmtree.*not part of a plain state dict.*save_file"):
        convert_hf_checkpoint(ckpt, tmp_path / "out")
    assert ckpt.is_dir() and not (tmp_path / "out").exists()


KOREAN_SUBJECTS = ("영화가", "배우들의 연기가", "노래가", "음식이", "직원이", "호텔이")
KOREAN_VERDICTS = {"긍정": ("정말 좋았다", "훌륭했다", "최고였다", "재미있었어요"),
                   "부정": ("너무 별로였다", "지루했다", "최악이었다", "실망스러웠다")}


def korean_reviews(n: int, seed: int):
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = str(rng.choice(list(KOREAN_VERDICTS)))
        rows.append({"text": f"{rng.choice(KOREAN_SUBJECTS)} {rng.choice(KOREAN_VERDICTS[label])}.", "label": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> dict:
    """Pairs converted on first use, shared by the end-to-end tests of this module."""
    out, pairs = tmp_path_factory.mktemp("pairs"), {}

    def pair(name: str) -> Path:
        if name not in pairs:
            pairs[name] = convert_hf_checkpoint(FIXTURES / name, out / name)
        return pairs[name]

    return pair


@pytest.mark.slow
@pytest.mark.parametrize("name", LONGER_RUNS(["bert-sentencepiece", "electra", "roberta-wordpiece"]))
def test_korean_classifier_trains_exports_and_serves_korean_strings(name, converted, tmp_path):
    """KoELECTRA-, KLUE-RoBERTa- and multilingual-e5-like checkpoints: convert, fine-tune, export (SavedModel
    taking raw strings), serve Korean strings with the in-memory model's probabilities."""
    from tfhub_transfer.cli.serve_check import serve_check
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.jobs.train import train

    result = train(TrainConfig.of(mode="finetune", train=korean_reviews(64, 0), encoder=str(converted(name)),
                                  epochs=5, learning_rate=3e-3, batch_size=16, seq_length=32, output_dir=tmp_path,
                                  verbose=0, validation_fraction=0.25, name=name))
    assert result.label_names == ["긍정", "부정"]
    assert result.history["loss"][-1] < result.history["loss"][0]
    probes = ["영화가 정말 좋았다.", "음식이 너무 별로였다.", "호텔이 최악이었다 😀"]
    served = serve_check(result.export_path, probes)
    in_memory = tf.nn.softmax(result.model.predict(probes, verbose=0)).numpy()
    np.testing.assert_allclose(served["probabilities"], in_memory, atol=1e-5)


@pytest.mark.parametrize("name", LONGER_RUNS(["electra", "xlm-roberta", "mpnet"]))
def test_bfloat16_and_packed_variants_rebuild_every_family(name, converted, tmp_path):
    """The variants rebuild from the recorded config (ELECTRA's embedding_size included): packed with a 0/1
    mask computes what the float32 pair does; bfloat16 stays close."""
    from tfhub_transfer.encoders.variants import write_variant

    source = converted(name)
    ref = reference(name)["singles"]
    preprocessor = hub.load(str(source / "preprocessor"))
    inputs = pack(preprocessor, reference(name)["singles_text"], len(ref["input_ids"][0]))
    mask = np.asarray(ref["attention_mask"], bool)
    want = np.asarray(ref["sequence_output"])[mask]
    for dtype, packed in (("float32", True), ("bfloat16", False)):
        target = write_variant(source, tmp_path / f"{name}-{dtype}-{packed}", dtype, packed)
        got = hub.load(str(target / "encoder"))(inputs)["sequence_output"].numpy()[mask]
        if dtype == "float32":
            np.testing.assert_allclose(got, want, atol=ATOL)
        else:  # bfloat16 matmuls: ~3 significant digits (a wrong weight would be off by ~1)
            assert np.mean(np.abs(got - want)) < 0.05 and np.max(np.abs(got - want)) < 0.5
        assert json.loads((target / "tfhub_transfer.json").read_text())["family"] == EXPECTED[name][0]


@pytest.mark.slow
@pytest.mark.integration  # a TFLite conversion per family: make integration (CI runs it)
def test_tflite_exports_wordpiece_families_and_refuses_sentencepiece_clearly(converted, tmp_path):
    from tfhub_transfer.config import TrainConfig
    from tfhub_transfer.errors import ExportError
    from tfhub_transfer.jobs.train import train

    def fit(name: str):
        return train(TrainConfig.of(mode="finetune",
                                    train=korean_reviews(32, 1), encoder=str(converted(name)), epochs=1,
                                    batch_size=16, seq_length=32, output_dir=tmp_path, verbose=0, name=name,
                                    validation_fraction=0.25, export_format="tflite"))

    exported = Path(fit("electra").export_path)
    assert list(exported.rglob("*.tflite"))
    with pytest.raises(ExportError, match=r"SentencePiece \(XLM-R layout\).*--format saved_model"):
        fit("bert-sentencepiece")
