"""Write the tiny per-family checkpoints and PyTorch reference outputs for tests/encoders/test_encoder_families.py.

Run in the peers' virtualenv (PyTorch + transformers, never a dependency of tfhub_transfer):

    make .venv-peers/.installed   # or: python3 -m venv .venv-peers && .venv-peers/bin/pip install \
                                  #     torch==2.13.0 transformers==5.23.0 sentencepiece safetensors protobuf
    .venv-peers/bin/python tools/make_family_references.py tests/fixtures/families
    .venv-peers/bin/python tools/make_family_references.py --real CHECKPOINT_DIR reference.json  # a real one

For each family it writes `<out>/<fixture>/`: a tiny random checkpoint as `transformers` saves it
(config.json, model.safetensors) with the tokenizer files a Hub checkpoint of that family ships (vocab.txt
or sentencepiece.bpe.model + tokenizer_config.json, sentence-transformers' modules.json + 1_Pooling where
the real models have them), and `reference.json`: the Hugging Face tokenizer's ids for ~200 strings
(Hangul, accents, emoji, very long words, two-segment pairs), and for a padded batch of single texts and
pairs the ids, mask, `last_hidden_state`, the pooler output (where the model has one) and the masked mean.
Weights are the same on every run; a WordPiece vocabulary's order may not be (the `tokenizers` trainer breaks
ties in hash order), so a rerun gives different but self-consistent files: commit a fixture's files together.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoTokenizer

KOREAN = ("영화가 정말 재미있었어요 배우들의 연기가 훌륭했다 음식이 너무 별로였다 직원이 친절했다 "
          "한국어 자연어 처리는 재미있습니다 오늘 날씨가 좋네요 안녕하세요 반갑습니다 최고 최악 지루했다 "
          "노래가 좋았다 호텔이 깨끗했다 배달이 늦었다 추천합니다 다시는 안 가요 서울 부산 대한민국").split()
ENGLISH = ("the quick brown fox jumps over lazy dog movie was great terrible acting plot transfer learning "
           "encoder hello world café naïve résumé über straße fiancée Ångström piñata déjà vu").split()
SPECIAL_STRINGS = [
    "", "   ", "Café naïve résumé — unusual accents & punctuation?!", "HELLO World, ÀÉÎÕÜ",
    "😀 👍🏽 🇰🇷 emoji 😂😂", "supercalifragilisticexpialidocious" * 4, "가나다라마바사아자차카타파하" * 5,
    "영화가정말재미있었어요배우들의연기가훌륭했다음식이너무별로였다" * 2, "ㅋㅋㅋ ㅠㅠ ㅎㅎ",
    "2024년 12월 6일 오후 3시 30분",
    "漢字 日本語 中文", "مرحبا بالعالم", "tab\tseparated\nnew line", "multiple    spaces   here",
    "안녕하세요! 반갑습니다?? (괄호) [대괄호] {중괄호}", "e-mail: test@example.com, url: https://x.y/z",
    "BTS 노래가 정말 좋았다.", "İstanbul straße ß", "Ǆ ǅ ǆ ﬁ ﬂ", "x" * 120, "한" * 40,
]


def corpus(seed: int = 0, n: int = 400) -> list[str]:
    rng = random.Random(seed)
    words = KOREAN + ENGLISH
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 10))) for _ in range(n)]


def probe_strings(seed: int = 1) -> list[str]:
    """~200 strings: the special cases above and random mixes of Korean, English and them."""
    rng = random.Random(seed)
    words = KOREAN + ENGLISH + ["😀", "!", "?", "...", "123", "Ünïcödé", "Zürich", "ÉCOLE"]
    mixed = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(200 - len(SPECIAL_STRINGS))]
    return SPECIAL_STRINGS + mixed


SINGLES = ["영화가 정말 재미있었어요!", "Café naïve résumé 😀", "the quick brown fox jumps over the lazy dog again",
           "배달이 늦었다"]
PAIRS = [("오늘 날씨가 좋네요", "hello world"), ("transfer learning", "한국어 자연어 처리는 재미있습니다")]


def train_wordpiece(texts: list[str], lower_case: bool, size: int, specials: list[str]) -> list[str]:
    from tokenizers import BertWordPieceTokenizer

    trainer = BertWordPieceTokenizer(lowercase=lower_case, strip_accents=lower_case, clean_text=True,
                                     handle_chinese_chars=True)
    trainer.train_from_iterator(texts, vocab_size=size, min_frequency=1, special_tokens=specials,
                                limit_alphabet=400)
    vocab = trainer.get_vocab()
    return [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]


def train_sentencepiece(texts: list[str], path: Path, size: int, rule: str = "nmt_nfkc") -> None:
    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "corpus.txt"
        source.write_text("\n".join(texts), encoding="utf-8")
        spm.SentencePieceTrainer.train(input=str(source), model_prefix=str(Path(tmp) / "sp"), vocab_size=size,
                                       hard_vocab_limit=False, model_type="unigram", character_coverage=1.0,
                                       normalization_rule_name=rule, minloglevel=2)
        shutil.copy(Path(tmp) / "sp.model", path)


def perturb(model: torch.nn.Module, seed: int) -> None:
    """Random weights large enough that a wrong mapping shows (LayerNorms too, not just ones/zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if "LayerNorm" in name or "layer_norm" in name:
                param.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * noise)
            else:
                param.copy_(0.3 * noise)


def reference(model, tokenizer, use_types: bool, pooler: bool, singles: list[str] = SINGLES) -> dict:
    strings = probe_strings()
    record = {"strings": strings, "ids": [tokenizer(s)["input_ids"] for s in strings],
              "pair_ids": [tokenizer(a, b)["input_ids"] for a, b in zip(strings[::2], strings[1::2])]}
    for name, batch in (("singles", tokenizer(singles, padding=True, return_tensors="pt")),
                        ("pairs", tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True,
                                            return_tensors="pt"))):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if use_types and "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        with torch.no_grad():
            out = model(**inputs)
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mean = (out.last_hidden_state * mask).sum(1) / mask.sum(1)
        record[name] = {
            "input_ids": batch["input_ids"].tolist(),
            "attention_mask": batch["attention_mask"].tolist(),
            "sequence_output": out.last_hidden_state.numpy().round(6).tolist(),
            "mean": mean.numpy().round(6).tolist(),
        }
        if pooler:
            record[name]["pooler_output"] = out.pooler_output.numpy().round(6).tolist()
    record["singles_text"], record["pairs_text"] = singles, [list(p) for p in PAIRS]
    record["made_with"] = {"torch": torch.__version__, "transformers": transformers.__version__}
    return record


SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             hidden_act="gelu", attn_implementation="eager")


def write_wordpiece_tokenizer(directory: Path, vocab: list[str], lower_case: bool, cls: str) -> None:
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": cls, "do_lower_case": lower_case, "strip_accents": None,
         "tokenize_chinese_chars": True, "model_max_length": 128}), encoding="utf-8")


def write_xlmr_tokenizer(directory: Path, texts: list[str], rule: str = "nmt_nfkc") -> None:
    """XLM-R's normalisation (nmt_nfkc) costs 240 KB of character map; "identity" keeps a fixture small."""
    train_sentencepiece(texts, directory / "sentencepiece.bpe.model", 300, rule)
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 128}), encoding="utf-8")


def write_sentence_transformers_mean_pooling(directory: Path, width: int) -> None:
    (directory / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": width, "pooling_mode_mean_tokens": True}))


def fit_pieces(tokenizer, text: str, limit: int) -> str:
    """`text` without its last words until it is at most `limit` ids long."""
    words = text.split(" ")
    while len(tokenizer(" ".join(words))["input_ids"]) > limit:
        words.pop()
    return " ".join(words)


def make_family(out: Path, name: str, seed: int) -> None:
    """One fixture: `name` picks the architecture, tokenizer and extras."""
    directory = out / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    texts = corpus(seed)
    bert_specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    torch.manual_seed(seed)
    use_types, pooler, singles = True, True, SINGLES
    if name == "bert":  # uncased WordPiece (NFD + accent stripping: Hangul decomposes into jamo)
        vocab = train_wordpiece(texts, True, 500, bert_specials)
        write_wordpiece_tokenizer(directory, vocab, True, "BertTokenizer")
        model = transformers.BertModel(transformers.BertConfig(vocab_size=len(vocab), max_position_embeddings=64,
                                                               **SMALL))
    elif name == "electra":  # a KoELECTRA-like discriminator: cased Korean WordPiece, embedding 16 < hidden 32
        vocab = train_wordpiece(texts, False, 500, bert_specials)
        write_wordpiece_tokenizer(directory, vocab, False, "ElectraTokenizer")
        model = transformers.ElectraForPreTraining(transformers.ElectraConfig(
            vocab_size=len(vocab), embedding_size=16, max_position_embeddings=64, **SMALL))
        pooler = False
    elif name == "distilbert":  # uncased, MLM head from the checkpoint
        vocab = train_wordpiece(texts, True, 500, bert_specials)
        write_wordpiece_tokenizer(directory, vocab, True, "DistilBertTokenizer")
        model = transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(
            vocab_size=len(vocab), dim=32, n_layers=2, n_heads=4, hidden_dim=48, max_position_embeddings=64,
            attn_implementation="eager"))
        use_types, pooler = False, False
    elif name == "roberta-wordpiece":  # klue/roberta-base's layout: [CLS]=0 [PAD]=1 [SEP]=2 [UNK]=3, cased
        vocab = train_wordpiece(texts, False, 500, ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"])
        write_wordpiece_tokenizer(directory, vocab, False, "BertTokenizer")
        model = transformers.RobertaForMaskedLM(transformers.RobertaConfig(
            vocab_size=len(vocab), max_position_embeddings=66, type_vocab_size=1, pad_token_id=1,
            bos_token_id=0, eos_token_id=2, **SMALL))
        use_types, pooler = False, False
    elif name == "xlm-roberta":  # XLM-R: SentencePiece + fairseq ids, RoBERTa body, pooler
        write_xlmr_tokenizer(directory, texts)
        size = len(AutoTokenizer.from_pretrained(str(directory)))
        model = transformers.XLMRobertaModel(transformers.XLMRobertaConfig(
            vocab_size=size, max_position_embeddings=66, type_vocab_size=1, pad_token_id=1, **SMALL))
        use_types = False
    elif name == "bert-sentencepiece":  # multilingual-e5-small / paraphrase-multilingual-MiniLM: a BERT body,
        # the XLM-R tokenizer, more embedding rows than ids (e5-small: 250037 for 250002) and mean pooling
        write_xlmr_tokenizer(directory, texts, "identity")
        size = len(AutoTokenizer.from_pretrained(str(directory)))
        model = transformers.BertModel(transformers.BertConfig(
            vocab_size=size + 5, max_position_embeddings=64, pad_token_id=1, **SMALL))
        write_sentence_transformers_mean_pooling(directory, 32)
        use_types = False
    elif name == "mpnet":  # all-mpnet-base-v2's layout: WordPiece with <s> <pad> </s> <unk> ... [UNK] <mask>,
        # MPNetModel with its pooler, sentence-transformers mean pooling
        vocab = train_wordpiece(texts, True, 500, ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", "<mask>"])
        write_wordpiece_tokenizer(directory, vocab, True, "MPNetTokenizer")
        model = transformers.MPNetModel(transformers.MPNetConfig(
            vocab_size=len(vocab), max_position_embeddings=162, pad_token_id=1, **SMALL))
        write_sentence_transformers_mean_pooling(directory, 32)
        use_types = False
        # A text over 128 pieces reaches the relative-position buckets' log range and their cap.
        singles = SINGLES[:2] + [" ".join(corpus(seed + 1, 40))]  # cut to 135 pieces below
    else:
        raise SystemExit(f"unknown family fixture {name}")
    perturb(model, seed)
    model.eval()
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    singles = [fit_pieces(tokenizer, text, 135) for text in singles]
    base = getattr(model, model.base_model_prefix, model)
    record = reference(base, tokenizer, use_types, pooler, singles)
    (directory / "reference.json").write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    print(f"{name}: {sum(f.stat().st_size for f in directory.rglob('*') if f.is_file()) // 1024} KB")


FIXTURES = ("bert", "electra", "distilbert", "roberta-wordpiece", "xlm-roberta", "bert-sentencepiece", "mpnet")


def make_torch_bin(out: Path) -> None:
    """`pytorch-bin/`: the electra fixture's weights as `torch.save` writes them, and a file of dtype / stride
    cases with their values, for the numpy reader of pytorch_model.bin."""
    from safetensors.torch import load_file

    directory = out / "pytorch-bin"
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(load_file(str(out / "electra" / "model.safetensors")), directory / "pytorch_model.bin")
    base = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    tensors = {"f32": base, "f16": base.half(), "bf16": base.bfloat16(), "transposed": base.t(),
               "sliced": base[1:, ::2], "i64": torch.arange(5), "scalar": torch.tensor(2.5),
               "param": torch.nn.Parameter(base.clone())}
    torch.save(tensors, directory / "dtypes.bin")
    values = {k: v.detach().float().numpy().tolist() for k, v in tensors.items()}
    (directory / "dtypes.json").write_text(json.dumps(values), encoding="utf-8")


def real_reference(checkpoint_dir: str, out_json: str) -> None:
    """The same reference for a real checkpoint directory (e.g. all-mpnet-base-v2), to compare a conversion with
    by hand: `--real DIR OUT.json` (the JSON is large; it is not committed)."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir)
    model = transformers.AutoModel.from_pretrained(checkpoint_dir, attn_implementation="eager").eval()
    has_pooler = getattr(model, "pooler", None) is not None
    uses_types = "token_type_ids" in tokenizer("a")
    record = reference(model, tokenizer, uses_types, has_pooler)
    Path(out_json).write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")


def main(out: str, names: list[str]) -> None:
    np.random.seed(0)
    for name in names or FIXTURES:
        make_family(Path(out), name, FIXTURES.index(name))  # the same seed however many are made
    if not names or "electra" in names:
        make_torch_bin(Path(out))


if __name__ == "__main__":
    if sys.argv[1] == "--real":
        real_reference(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2:])
