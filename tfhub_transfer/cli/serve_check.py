"""`tfhub-transfer serve-check EXPORT TEXT ...`: what `saved_model_cli run` prints, with tf-text loaded.

An export's graph uses tensorflow-text ops (`CaseFoldUTF8`, `WordpieceTokenizeWithOffsets`,
`TFText>RoundRobinTrim`, ...). `saved_model_cli run` does not load them and stops with
"Op type not registered"; this command imports `tensorflow_text` first, then calls the export's
signature on the given strings as a server would, and prints every output.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from tfhub_transfer.errors import ExportError


def add_parser(sub) -> None:
    p = sub.add_parser("serve-check", help="run strings through an export's serving signature, as a server "
                                           "would (saved_model_cli run cannot: it does not load tf-text ops)")
    p.add_argument("export", help="an exported model, saved_models/NAME/VERSION (any raw-string SavedModel)")
    p.add_argument("texts", nargs="+", help="texts to send")
    p.add_argument("--text-b", nargs="+", help="second texts, for a sentence-pair export (one per text)")
    p.add_argument("--signature", default="serving_default", help="the signature to call")


def serve_check(
    export: str | Path, texts: Sequence[str], texts_b: Sequence[str] | None = None,
    signature: str = "serving_default",
) -> dict:
    """Calls `signature` of the SavedModel at `export` on `texts` (and `texts_b`); returns its outputs as
    numpy arrays, by output name."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the export's graph uses)

    function = _signature(Path(export), signature)
    names = sorted(function.structured_input_signature[1])
    columns = [list(texts)] + ([list(texts_b)] if texts_b is not None else [])
    if len(names) != len(columns):
        fix = {1: "give texts only, no --text-b", 2: "give the second texts with --text-b"}
        raise ExportError(f"signature {signature!r} of {export} takes {len(names)} input(s) {names}: "
                          f"{fix.get(len(names), 'serve-check sends one or two string inputs')}.")
    if texts_b is not None and len(texts_b) != len(texts):
        raise ExportError(f"{len(texts)} texts but {len(texts_b)} --text-b values: give one second text per text")
    outputs = function(**{name: tf.constant(column) for name, column in zip(names, columns)})
    return {key: value.numpy() for key, value in outputs.items()}


def _signature(path: Path, name: str):
    import tensorflow as tf

    if not (path / "saved_model.pb").is_file():
        raise ExportError(f"{path} is not a SavedModel directory (no saved_model.pb); pass an export such "
                          "as saved_models/NAME/VERSION.")
    try:
        loaded = tf.saved_model.load(str(path))
    except (OSError, ValueError, tf.errors.OpError) as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise ExportError(f"{path} cannot be loaded ({type(err).__name__}: {first}).") from None
    if name not in loaded.signatures:
        raise ExportError(f"{path} has no signature {name!r}; it has {sorted(loaded.signatures) or 'none'}.")
    return loaded.signatures[name]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    outputs = serve_check(args.export, args.texts, args.text_b, args.signature)
    with np.printoptions(precision=4, suppress=True):
        for key in sorted(outputs):
            value = outputs[key]
            if value.dtype == object:
                value = np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(value)
            print(f"Result for output key {key}:\n{value}")
    return 0
