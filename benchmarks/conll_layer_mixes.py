"""CoNLL-2003 NER with the default encoder: dev entity F1 per layer mix (frozen) and fine-tuned.

    python benchmarks/conll_layer_mixes.py --train-sentences 2000 --epochs 3

Subsampled for 2 CPU cores: the first N training sentences (document order), the full
dev set (3,250 sentences). Frozen rows train a BiLSTM head (128 units per direction)
on the chosen mix of the encoder's per-token outputs; the fine-tuned row trains the
whole encoder with a dense head. Compared with BERT-base's Table 7 in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import OUT, machine, require_shared

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.jobs.study import study_layers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train-sentences", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the fine-tuned row")
    parser.add_argument("--frozen-epochs", type=int, default=3,
                        help="epochs of the frozen rows (cheap: they train from the feature cache)")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--out", default=str(OUT / "conll_layer_mixes"))
    args = parser.parse_args()
    conll = require_shared("conll2003")
    # The tagger used to score its last epoch and save nothing: keep both (no best-epoch
    # restore; the run directory under --out rather than saved_models/).
    base = TrainConfig.of(task="tokens", train=conll / "train.txt", valid=conll / "valid.txt", encoder="default",
                          head="bilstm", epochs=args.frozen_epochs, batch_size=32, learning_rate=1e-3,
                          seq_length=128, max_train_examples=args.train_sentences, verbose=2, export=False,
                          restore_best=False, output_dir=args.out, name="tagger")
    results = study_layers(base, args.out, finetune=not args.skip_finetune, finetune_learning_rate=5e-5,
                           finetune_epochs=args.epochs)
    report = {"machine": machine(), "args": vars(args),
              "results": [r.__dict__ for r in results]}
    print((Path(args.out) / "study.md").read_text())
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
