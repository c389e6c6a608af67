"""Transfer-mode recipes on an SST-2 subset with the default encoder, the transfer-mode table's budget
(2 epochs, batch 32, seq 64, seed 0, best dev epoch kept). Each argument after the size is one run's
options as JSON; a run's "seed" draws its subset and seeds its model and batches (default 0), e.g.

    python benchmarks/sst2_recipes.py 8000 '{"mode": "finetune"}' '{"mode": "gradual"}'
    python benchmarks/sst2_recipes.py 67349 '{"mode": "finetune", "epochs": 1, "verbose": 1}'   # all of SST-2
    python benchmarks/sst2_recipes.py 8000 '{"mode": "finetune", "seed": 1}' '{"mode": "gradual", "seed": 1}'

Prints one JSON line per run: dev accuracy, the dev accuracy per epoch, the seconds it took.
"""

import json
import sys
import time
from pathlib import Path

import tf_keras

from tfhub_transfer.config import TrainConfig
from tfhub_transfer.data.tables import load_labelled
from tfhub_transfer.jobs.train import build_task_model, num_outputs
from tfhub_transfer.training.loop import fit_task
from tfhub_transfer.training.objectives import validation_report

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"


def main(size: int, runs: list[dict]) -> None:
    subsets = {}
    for options in runs:
        seed = options.get("seed", 0)
        if seed not in subsets:
            subsets[seed] = load_labelled(SST2 / "train.tsv", SST2 / "dev.tsv", max_train_examples=size, seed=seed)
        splits = subsets[seed]
        budget = {"epochs": 2, "batch_size": 32, "seq_length": 64, "verbose": 0, **options}  # options may change it
        config = TrainConfig.of(train=SST2 / "train.tsv", encoder="default", max_train_examples=size, export=False,
                                tensorboard=False, **budget)
        tf_keras.utils.set_random_seed(seed)
        model = build_task_model(config, splits)
        started = time.time()
        outcome = fit_task(model, splits.train_examples, splits.valid_examples, config.optimization,
                           config.runtime, None, job="benchmark")
        report = validation_report(splits.task, splits.valid_ids, outcome.valid_outputs, num_outputs(splits))
        curve = [round(v, 4) for v in outcome.history.get("val_accuracy", [])]
        print(json.dumps({"n": size, **options, "acc": round(report["accuracy"], 4), "curve": curve,
                          "s": round(time.time() - started)}), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), [json.loads(arg) for arg in sys.argv[2:]])
