"""Packing corpus lines for masked-LM pretraining: the package's array packer against the list-based one
it replaced, on WikiText-103 (validation + test) with the default encoder's tokenizer.

    python benchmarks/mlm_packing.py --rounds 3

Rounds are interleaved (old, new, old, new ...) in one process; prints the seconds of each and checks
that both give the same sequences.
"""

from __future__ import annotations

import argparse
import statistics
import time

import tensorflow as tf
from common import machine, require_shared

from tfhub_transfer.data.corpus import read_corpus_lines
from tfhub_transfer.encoders.build.default import ensure_default_encoder
from tfhub_transfer.preprocessing.masking import pack_words
from tfhub_transfer.preprocessing.text import TextPreprocessor


def list_packer(lines: list[str], preprocessor: TextPreprocessor, budget: int) -> list:
    """The earlier implementation (Python lists from `RaggedTensor.to_list()`), kept as the reference."""
    sequences, current, used = [], [], 0
    for start in range(0, len(lines), 1024):
        tokens = preprocessor.module.tokenize(tf.constant(lines[start : start + 1024]))
        for line_words in tokens.to_list():
            for word in line_words:
                word = word[:budget]
                if used + len(word) > budget and current:
                    sequences.append(current)
                    current, used = [], 0
                current.append(word)
                used += len(word)
    if current:
        sequences.append(current)
    return sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq-length", type=int, default=128)
    args = parser.parse_args()
    wiki = require_shared("wikitext103_tokens")
    lines = read_corpus_lines([wiki / "wiki.valid.tokens", wiki / "wiki.test.tokens"])
    preprocessor = TextPreprocessor(str(ensure_default_encoder(verbose=False) / "preprocessor"))
    print(f"{machine()}; {len(lines):,} lines", flush=True)
    timings = {"lists": [], "arrays": []}
    for _ in range(args.rounds):
        started = time.perf_counter()
        reference = list_packer(lines, preprocessor, args.seq_length - 2)
        timings["lists"].append(time.perf_counter() - started)
        started = time.perf_counter()
        packed = pack_words(lines, preprocessor, args.seq_length - 2)
        timings["arrays"].append(time.perf_counter() - started)
        assert packed.ragged.to_list() == reference, "the packers disagree"
    for name, seconds in timings.items():
        print(f"{name}: median {statistics.median(seconds):.2f} s, rounds {[round(s, 2) for s in seconds]}")
    ratio = statistics.median(timings["lists"]) / statistics.median(timings["arrays"])
    print(f"{len(reference):,} sequences, identical; arrays {ratio:.1f}x faster")


if __name__ == "__main__":
    main()
