"""PyTorch + transformers training steps at one fixed shape (run by step_floor.py in the peers' virtualenv).

    .venv-peers/bin/python benchmarks/peer_torch_step.py --batch 32 --seq 16 --steps 20

The model and optimizer of peer_torch.py (all-MiniLM-L6-v2, mean pooling, dropout 0.1, linear head,
AdamW 5e-5), one full step (forward, backward, optimizer) on a fixed input with no padding, float32 and
under bf16 autocast (`--bf16`). Prints one JSON line: the seconds of each step after `--warmup` steps.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from peer_common import model_dir
from peer_torch import MeanPoolClassifier, adamw
from transformers import AutoModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    model = MeanPoolClassifier(AutoModel.from_pretrained(model_dir()), 2)
    optimizer = adamw(model, 5e-5, 0.01)
    tokens = torch.full((args.batch, args.seq), 2000, dtype=torch.long)
    mask = torch.ones((args.batch, args.seq), dtype=torch.long)
    labels = torch.zeros(args.batch, dtype=torch.long)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    seconds = []
    for step in range(args.warmup + args.steps):
        started = time.perf_counter()
        with torch.autocast("cpu", torch.bfloat16, enabled=args.bf16):
            loss = loss_fn(model(tokens, mask).float(), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= args.warmup:
            seconds.append(time.perf_counter() - started)
    print(json.dumps({"step_seconds": seconds, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
