"""Serving soak test: 100k predictions through an exported raw-string SavedModel; memory growth.

    python benchmarks/serving_soak.py --predictions 100000 --batch 64

Exports a default-encoder classifier (the serving path does not depend on training),
loads the export with TensorFlow alone and feeds it SST-2 sentences (cycled) in batches
of 64. Resident memory (RSS, from /proc) is sampled after the warm-up (the first 5,000
predictions, once every batch shape has been traced) and every 10,000 after; the
growth over the remaining predictions must stay under 5 %.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import tensorflow as tf
from common import OUT, machine, require_shared

from tfhub_transfer.data.tables import read_table
from tfhub_transfer.export.saved_model import export_classifier
from tfhub_transfer.models.text_classifier import TextClassifier

WARM_UP = 5_000


def rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--scratch", default=str(OUT / "soak_models"))
    parser.add_argument("--out", default=str(OUT / "serving_soak.json"))
    args = parser.parse_args()
    texts = list(read_table(require_shared("sst2") / "train.tsv").texts)
    path = export_classifier(TextClassifier.from_encoder("default", num_classes=2, seed=0),
                             ["negative", "positive"], args.scratch, "soak")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    done, position, samples, started = 0, 0, [], time.perf_counter()
    baseline = None
    while done < args.predictions:
        batch = texts[position:position + args.batch] or texts[:args.batch]
        position = (position + args.batch) % len(texts)
        serve(text=tf.constant(batch))
        done += len(batch)
        if baseline is None and done >= WARM_UP:
            baseline, warm_started = rss_mb(), time.perf_counter()
            samples.append((done, baseline))
        elif baseline is not None and done // 10_000 != (done - len(batch)) // 10_000:
            samples.append((done, rss_mb()))
    final = rss_mb()
    results = {
        "machine": machine(), "args": vars(args), "predictions": done,
        "examples_per_s_after_warm_up": (done - samples[0][0]) / (time.perf_counter() - warm_started),
        "rss_mb_after_warm_up": baseline, "rss_mb_final": final,
        "rss_growth_percent": 100 * (final - baseline) / baseline, "rss_samples": samples,
        "total_seconds": time.perf_counter() - started,
    }
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
