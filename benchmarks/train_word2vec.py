"""Trains word2vec vectors on WikiText-103 (valid+test, ../shared/data), saved in the standard formats.

    python benchmarks/train_word2vec.py --dim 100 --epochs 10

Needs gensim (`pip install gensim`, a benchmark-only dependency). Writes
benchmarks/out/word2vec/wikitext103.txt (word2vec text), .bin (word2vec binary)
and .glove.txt (GloVe text layout). Tokens are lower-cased; <unk> and the
section markers are dropped.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import numpy as np
from common import OUT, require_shared

from tfhub_transfer.data.vectors import WordVectors, write_glove, write_word2vec_binary, write_word2vec_text


def sentences(folder: Path):
    for name in ("wiki.valid.tokens", "wiki.test.tokens"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("="):
                continue
            words = [w for w in re.findall(r"[a-z0-9']+|[^\sa-z0-9]", line.lower()) if w != "unk"]
            if len(words) > 3:
                yield words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--out", default=str(OUT / "word2vec"))
    args = parser.parse_args()
    from gensim.models import Word2Vec

    corpus = list(sentences(require_shared("wikitext103_tokens")))
    started = time.time()
    model = Word2Vec(corpus, vector_size=args.dim, window=5, min_count=args.min_count, sg=1,
                     negative=5, epochs=args.epochs, workers=2, seed=0)
    words = list(model.wv.index_to_key)
    vectors = WordVectors(words, np.asarray(model.wv.vectors, np.float32))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_word2vec_text(vectors, out / "wikitext103.txt")
    write_word2vec_binary(vectors, out / "wikitext103.bin")
    write_glove(vectors, out / "wikitext103.glove.txt")
    tokens = sum(len(s) for s in corpus)
    print(f"{len(corpus)} sentences, {tokens} tokens -> {len(words)} words x {args.dim} dims "
          f"in {time.time() - started:.1f} s; wrote {out}/wikitext103.{{txt,bin,glove.txt}}")
    for probe in ("film", "king", "good"):
        if probe in model.wv:
            print(probe, "->", [w for w, _ in model.wv.most_similar(probe, topn=5)])


if __name__ == "__main__":
    main()
