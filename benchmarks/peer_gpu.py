"""The PyTorch peer's fine-tuning speed on a GPU, as a fraction of the GPU's dense peak (issue #15, item 6).

    PEER_MODEL_DIR=path/to/all-MiniLM-L6-v2 python3 benchmarks/peer_gpu.py \\
        --train train.tsv --dev dev.tsv --out OUT --rounds 2 --batch-sizes 32,256

Runs peer_torch.py's arms with `--device cuda` (torch_plain, torch_grouped, torch_bf16: the last
under bfloat16 autocast) in interleaved rounds, each in a fresh process, on the same
`text<TAB>label` files, and reports steady examples/s, useful FLOP/s on the real (non-padding)
tokens, and that rate as a fraction of the dense bfloat16 matmul rate measured on the same GPU.
Imports only PyTorch and transformers: the lent GPU machines have no TensorFlow and cannot
install it (see RESULTS.md), so the package's own arms do not run there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from peer_common import summarise

HERE = Path(__file__).resolve().parent
ARMS = ("torch_plain", "torch_grouped", "torch_bf16")


def run_arm(arm: str, batch: int, args) -> dict:
    command = [sys.executable, str(HERE / "peer_torch.py"), "--arm", arm, "--device", "cuda",
               "--train", args.train, "--dev", args.dev, "--batch-size", str(batch), "--lr", str(args.lr),
               "--seq-length", str(args.seq_length), "--seed", str(args.seed)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "process_seconds": time.perf_counter() - started}


def table(rows: dict, peak: float) -> str:
    lines = ["| arm | batch | train examples/s (median) | rounds | mean padded length | real tokens | "
             "useful TFLOP/s | of bf16 peak | dev accuracy |", "|---|---|---|---|---|---|---|---|---|"]
    for (arm, batch), runs in rows.items():
        rates = [r["examples_per_s"] for r in runs]
        lines.append(
            f"| {arm} | {batch} | {statistics.median(rates):.0f} | {', '.join(f'{x:.0f}' for x in rates)} | "
            f"{runs[0]['mean_padded_length']:.1f} | {runs[0]['real_token_share']:.0%} | "
            f"{statistics.median(r['useful_gflops'] for r in runs) / 1000:.2f} | "
            f"{statistics.median(r['fraction_of_peak'] for r in runs):.2%} | "
            f"{statistics.mean(r['dev_accuracy'] for r in runs):.4f} |")
    peak_line = f"Peak: the best dense bfloat16 8192^3 matmul measured in the run, {peak / 1000:.0f} TFLOP/s."
    return "\n".join(lines) + "\n\n" + peak_line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-sizes", default="32", help="comma-separated batch sizes, each run with every arm")
    parser.add_argument("--warmup-steps", type=int, default=20,
                        help="steps left out of the steady rate (cuBLAS heuristics, allocator growth)")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    configs = [(arm, int(batch)) for batch in args.batch_sizes.split(",") for arm in ARMS]
    runs: dict[tuple[str, int], list[dict]] = {config: [] for config in configs}
    for round_ in range(args.rounds):
        for arm, batch in configs:
            result = run_arm(arm, batch, args)
            runs[(arm, batch)].append(result)
            print(f"round {round_ + 1}: {arm} batch {batch}: {len(result['step_ends'])} steps in "
                  f"{result['step_ends'][-1]:.1f} s, dev {result['dev_accuracy']:.4f}", flush=True)
    peak = max(r["matmul_gflops"] for config_runs in runs.values() for r in config_runs)
    rows = {config: [summarise(r, args.warmup_steps, peak) for r in done] for config, done in runs.items()}
    first = next(iter(runs.values()))[0]
    report = f"{table(rows, peak)}\n\nGPU: {first['device']}; versions: {first['versions']}"
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "peer_gpu.md").write_text(report + "\n")
    (out / "peer_gpu.json").write_text(json.dumps(
        {"arguments": vars(args), "rows": {f"{a}@{b}": v for (a, b), v in rows.items()}}, indent=1))


if __name__ == "__main__":
    main()
