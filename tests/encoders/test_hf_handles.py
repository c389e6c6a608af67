"""`hf:ORG/NAME[@REVISION]` handles against a local Hugging Face cache laid out by the test (HF_HUB_OFFLINE=1):
the real huggingface_hub lookup, converted once into the package's cache, reused without the Hub cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("huggingface_hub")

from tfhub_transfer.encoders.hf_hub import parse_hf_handle  # noqa: E402
from tfhub_transfer.encoders.resolve import resolve_encoder  # noqa: E402
from tfhub_transfer.errors import EncoderError  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "families"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_hub_cache(hub: Path, repo: str, fixture: str, commit: str = COMMIT, ref: str = "main") -> Path:
    """huggingface_hub's cache layout: models--ORG--NAME/{refs/<ref>, snapshots/<commit>/<files>}."""
    model = hub / f"models--{repo.replace('/', '--')}"
    snapshot = model / "snapshots" / commit
    shutil.copytree(FIXTURES / fixture, snapshot, ignore=shutil.ignore_patterns("reference.json"))
    (model / "refs").mkdir(parents=True, exist_ok=True)
    (model / "refs" / ref).write_text(commit)
    return snapshot


@pytest.fixture
def caches(tmp_path, monkeypatch):
    hub, ours = tmp_path / "hf-hub", tmp_path / "tfhub_transfer-cache"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TFHUB_TRANSFER_CACHE", str(ours))
    return hub, ours


def test_handles_parse_with_and_without_revision():
    assert parse_hf_handle("hf:klue/roberta-base") == ("klue/roberta-base", "main")
    assert parse_hf_handle("hf:xlm-roberta-base@v1.0") == ("xlm-roberta-base", "v1.0")
    for bad in ("hf:", "hf:/x", "hf:a/b@", "hf:a b/c"):
        with pytest.raises(EncoderError, match="hf:ORG/NAME"):
            parse_hf_handle(bad)


def test_hf_handle_converts_once_from_the_hub_cache_and_is_reused_without_it(caches, capsys):
    hub, ours = caches
    lay_out_hub_cache(hub, "monologg/koelectra-tiny", "electra")
    spec = resolve_encoder("hf:monologg/koelectra-tiny")
    pair = Path(spec.encoder).parent
    assert pair == ours / "encoders" / f"hf--monologg--koelectra-tiny--{COMMIT[:12]}"
    assert (pair / "encoder" / "saved_model.pb").exists() and Path(spec.preprocessor).is_dir()
    meta = json.loads((pair / "tfhub_transfer.json").read_text())
    assert (meta["family"], meta["hf_repo"], meta["hf_revision"], meta["hf_commit"]) == (
        "electra", "monologg/koelectra-tiny", "main", COMMIT)
    assert spec.pooling == "first"  # no pooler in an ELECTRA discriminator: its [CLS] vector
    assert "Converting hf:monologg/koelectra-tiny" in capsys.readouterr().out
    written = (pair / "encoder" / "saved_model.pb").stat().st_mtime_ns
    # Second use: no conversion. Then with the Hugging Face cache gone: the conversion is still found.
    assert resolve_encoder("hf:monologg/koelectra-tiny").encoder == spec.encoder
    shutil.rmtree(hub / "models--monologg--koelectra-tiny")
    assert resolve_encoder("hf:monologg/koelectra-tiny@main").encoder == spec.encoder
    assert (pair / "encoder" / "saved_model.pb").stat().st_mtime_ns == written
    assert "Converting" not in capsys.readouterr().out


def test_a_pinned_revision_is_its_own_conversion(caches):
    hub, ours = caches
    other = "fedcba9876543210fedcba9876543210fedcba98"
    lay_out_hub_cache(hub, "org/xlmr-tiny", "xlm-roberta", commit=other, ref="main")
    spec = resolve_encoder(f"hf:org/xlmr-tiny@{other}")
    assert Path(spec.encoder).parent.name == f"hf--org--xlmr-tiny--{other[:12]}"
    assert json.loads((Path(spec.encoder).parent / "tfhub_transfer.json").read_text())["tokenizer"] == "sentencepiece"


def test_offline_and_uncached_is_one_clear_error_naming_both_caches_and_the_local_alternative(caches):
    hub, ours = caches
    with pytest.raises(EncoderError) as err:
        resolve_encoder("hf:klue/roberta-base")
    message = str(err.value)
    assert "HF_HUB_OFFLINE" in message and str(hub) in message and str(ours / "encoders") in message
    assert "encoders convert DIR OUT" in message and "--encoder OUT" in message
    assert not (ours / "encoders").exists() or not any((ours / "encoders").glob("hf--*"))


def test_a_refused_checkpoint_leaves_no_half_written_cache_entry(caches):
    hub, ours = caches
    snapshot = lay_out_hub_cache(hub, "org/gpt-ish", "distilbert")
    (snapshot / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(EncoderError, match="model_type 'gpt2' is not supported"):
        resolve_encoder("hf:org/gpt-ish")
    assert not list((ours / "encoders").glob("hf--org--gpt-ish*/encoder"))


def test_cli_convert_takes_an_hf_handle_and_info_prints_family_tokenizer_and_casing(caches, tmp_path, capsys):
    from tfhub_transfer.cli.main import main

    hub, _ = caches
    lay_out_hub_cache(hub, "org/e5-tiny", "bert-sentencepiece")
    assert main(["encoders", "convert", "hf:org/e5-tiny", str(tmp_path / "e5")]) == 0
    assert (tmp_path / "e5" / "encoder" / "saved_model.pb").exists()
    capsys.readouterr()
    assert main(["encoders", "info", str(tmp_path / "e5")]) == 0
    out = capsys.readouterr().out
    assert "family:        bert (model_type bert)" in out
    assert "tokenizer:     SentencePiece, XLM-R layout" in out
    assert "casing:        unknown (a SentencePiece model normalises with its own rules" in out
    assert "pooled_output: mean of sequence_output" in out  # its sentence-transformers pooling


def test_cli_list_shows_the_families_and_hf_examples(capsys):
    from tfhub_transfer.cli.main import main

    assert main(["encoders", "list"]) == 0
    out = capsys.readouterr().out
    for text in ("--encoder hf:ORG/NAME[@REVISION]", "electra\tELECTRA discriminator", "hf:klue/roberta-base",
                 "hf:monologg/koelectra-base-v3-discriminator", "hf:intfloat/multilingual-e5-small",
                 "model_type:   roberta, xlm-roberta", "hf:sentence-transformers/all-mpnet-base-v2",
                 "not supported: byte-level BPE"):
        assert text in out


def test_the_encoder_flag_check_lets_hf_handles_through_to_the_resolver():
    import argparse

    from tfhub_transfer.cli.checks import encoder_name

    assert encoder_name("hf:klue/roberta-base@main") == "hf:klue/roberta-base@main"
    with pytest.raises(argparse.ArgumentTypeError, match="hf:ORG/NAME"):
        encoder_name("klue/roberta-base")  # no hf: prefix, no such directory
