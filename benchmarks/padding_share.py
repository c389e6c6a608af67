"""How much padding is left for packing to remove: the share of real tokens in one epoch of training
batches (batch 32, 128-token cut, 4,000 seeded training texts), with and without length buckets.

    .venv/bin/python benchmarks/padding_share.py

Packing several examples into one row can at most remove the padding, so 1 / (real share) bounds its
speed-up over the same batches in token work.
"""

import numpy as np
from common import require_shared

from tfhub_transfer.data.tables import read_table
from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.preprocessing.text import TextPreprocessor, make_training_dataset

EXAMPLES, BATCH, SEQ_LENGTH = 4000, 32, 128


def main() -> None:
    preprocessor = TextPreprocessor(resolve_encoder("default", None).preprocessor)
    for name in ("sst2", "ag_news"):
        table = read_table(require_shared(name) / "train.tsv")
        chosen = np.random.default_rng(0).choice(len(table.texts), EXAMPLES, replace=False)
        texts = [table.texts[i] for i in chosen]
        for bucket in (True, False):
            dataset, steps = make_training_dataset(texts, np.zeros(EXAMPLES, np.int32), preprocessor, BATCH,
                                                   SEQ_LENGTH, 1, seed=0, bucket=bucket)
            real = padded = 0
            for inputs, _ in dataset.take(steps):
                mask = inputs["input_mask"].numpy()
                real, padded = real + int(mask.sum()), padded + mask.size
            print(f"{name} {'length buckets' if bucket else 'no buckets'}: real tokens {real / padded:.1%}, "
                  f"mean padded length {padded / EXAMPLES:.1f}, mean real length {real / EXAMPLES:.1f}, "
                  f"packing ceiling {padded / real:.2f}x", flush=True)


if __name__ == "__main__":
    main()
