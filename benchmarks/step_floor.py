"""How fast a fine-tuning step could be: its matmuls alone, against whole steps of ours and PyTorch's.

    python benchmarks/step_floor.py --batch 32 --seq 16 --rounds 3      # the peer benchmark's shapes

At SST-2's short sentences (batch 32, ~15 tokens after length grouping) the question behind the
peer benchmark's goal (ours >= 1.5x PyTorch + transformers with length grouping) is how much of a
step is left to win. Measured in one run, at one fixed [batch, seq] input with no padding:
- the dense matmul rate of this CPU ([4096 x 1024] @ [1024 x 4096], float32 and bfloat16);
- the **matmul floor**: every matmul of one training step of all-MiniLM-L6-v2 (per layer: Q, K, V,
  output, two feed-forward, attention scores and context; each forward matmul with its two backward
  ones), on distinct random inputs, run alone in one traced function, float32 and bfloat16. No
  framework can take a step in less time on this CPU without faster matmuls;
- whole training steps (`train_on_batch`, AdamW) of ours, float32 and `--dtype bfloat16`;
- whole training steps of PyTorch + transformers (benchmarks/peer_torch_step.py in the peers'
  virtualenv: forward, backward, AdamW), float32 and bf16 autocast.
Rounds interleave the arms (ours, PyTorch float32, PyTorch bf16; A B C A B C). Reported: median step
milliseconds, the bound on ours / PyTorch that the floor allows (PyTorch's step / our floor) and
the fraction of the matmul rate each whole step reaches. `--profile` adds, for ours, the TensorFlow
profiler's time per op type over 10 steps (summed over the two worker threads, so concurrent ops
count twice: read it as shares, not as wall time).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from common import OUT, cpu_flags, machine, peak_rss_mb
from train_step_flops import classifier_step, interleaved_step_seconds, matmul_rate

from tfhub_transfer.encoders.resolve import resolve_encoder
from tfhub_transfer.encoders.variants import encoder_variant

LAYERS, HIDDEN, INTERMEDIATE, HEADS = 6, 384, 1536, 12  # all-MiniLM-L6-v2
HERE = Path(__file__).resolve().parent


def step_matmuls(batch: int, seq: int, dtype: tf.DType) -> tuple[list, float]:
    """(a, b, transpose_a, transpose_b) for every matmul of one training step, and their FLOPs."""
    tokens, head_size = batch * seq, HIDDEN // HEADS

    def rand(*shape):
        return tf.cast(tf.random.normal(shape), dtype)

    work = []
    for _ in range(LAYERS):
        for k, n in [(HIDDEN, HIDDEN)] * 4 + [(HIDDEN, INTERMEDIATE), (INTERMEDIATE, HIDDEN)]:
            x, w, dy = rand(tokens, k), rand(k, n), rand(tokens, n)
            work += [(x, w, False, False), (dy, w, False, True), (x, dy, True, False)]  # y, dx, dw
        q, k_, v, d_context = (rand(batch, HEADS, seq, head_size) for _ in range(4))
        probs, d_scores = rand(batch, HEADS, seq, seq), rand(batch, HEADS, seq, seq)
        work += [(q, k_, False, True), (probs, v, False, False),          # scores, context
                 (d_scores, k_, False, False), (d_scores, q, True, False),  # dq, dk
                 (d_context, v, False, True), (probs, d_context, True, False)]  # d probs, dv
    flops = 0.0
    for a, b, transpose_a, transpose_b in work:
        m, k = (a.shape[-1], a.shape[-2]) if transpose_a else (a.shape[-2], a.shape[-1])
        n = b.shape[-2] if transpose_b else b.shape[-1]
        flops += 2.0 * np.prod(a.shape[:-2]) * m * k * n
    return work, flops


def floor_seconds(batch: int, seq: int, dtype: tf.DType, repeats: int) -> tuple[float, float]:
    """(median seconds of one step's matmuls run alone, their FLOPs)."""
    work, flops = step_matmuls(batch, seq, dtype)

    @tf.function
    def run():
        return [tf.linalg.matmul(a, b, transpose_a=ta, transpose_b=tb) for a, b, ta, tb in work]

    for _ in range(3):
        run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)), flops


def op_type_milliseconds(step, steps: int = 10) -> dict[str, float]:
    """Milliseconds per step of each TensorFlow op type while `step` runs (host CPU plane of the profile)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(sorted(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True))[-1]).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and line.name.startswith("tf_Compute") and not name.endswith(":Process"):
                    totals[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9 / steps
    return dict(totals.most_common(16))


def torch_steps(python: str, batch: int, seq: int, steps: int, bf16: bool) -> list[float]:
    command = [python, str(HERE / "peer_torch_step.py"), "--batch", str(batch), "--seq", str(seq),
               "--steps", str(steps)] + (["--bf16"] if bf16 else [])
    done = subprocess.run(command, capture_output=True, text=True, cwd=HERE, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["step_seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per arm and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peers-python", default=str(HERE.parent / ".venv-peers" / "bin" / "python"))
    parser.add_argument("--profile", action="store_true", help="also print ours' time per op type")
    parser.add_argument("--out", default=str(OUT / "step_floor_{batch}x{seq}.json"))
    args = parser.parse_args()
    dtypes = {"float32": tf.float32, "bfloat16": tf.bfloat16}
    peaks = {name: matmul_rate(dtype) for name, dtype in dtypes.items()}
    floors = {name: floor_seconds(args.batch, args.seq, dtype, 30) for name, dtype in dtypes.items()}
    encoders = {"float32": str(Path(resolve_encoder("default").encoder).parent),
                "bfloat16": encoder_variant("default", "bfloat16", cpu_flags={"avx512_bf16"})}
    ours = {name: classifier_step(encoder, args.batch, args.seq) for name, encoder in encoders.items()}
    seconds = {f"ours_{name}": [] for name in ours} | {"torch_float32": [], "torch_bfloat16": []}
    for round_ in range(args.rounds):
        for name, values in interleaved_step_seconds(ours, args.steps).items():
            seconds[f"ours_{name}"] += values
        for name, bf16 in (("torch_float32", False), ("torch_bfloat16", True)):
            seconds[name] += torch_steps(args.peers_python, args.batch, args.seq, args.steps, bf16)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {1e3 * np.median(v[-args.steps:]):.0f} ms"
                                                  for k, v in seconds.items()), flush=True)
    results = {"machine": machine(), "cpu_flags": cpu_flags(), "load_average": os.getloadavg(), "args": vars(args),
               "matmul_gflops": {k: v / 1e9 for k, v in peaks.items()},
               "floor_ms": {k: 1e3 * s for k, (s, _) in floors.items()}, "step_gflop": floors["float32"][1] / 1e9,
               "step_ms": {k: 1e3 * float(np.median(v)) for k, v in seconds.items()}}
    print(markdown(results, args.batch), flush=True)
    if args.profile:
        results["op_type_ms"] = {name: op_type_milliseconds(step) for name, step in ours.items()}
        print(profile_markdown(results["op_type_ms"]), flush=True)
    results["peak_rss_mb"] = peak_rss_mb()
    out = Path(args.out.format(batch=args.batch, seq=args.seq))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


def markdown(results: dict, batch: int) -> str:
    gflop, peak32 = results["step_gflop"], results["matmul_gflops"]["float32"]
    lines = ["| arm | median step ms | examples/s | of fp32 matmul rate | vs PyTorch fp32 |", "|---|---|---|---|---|"]
    torch32 = results["step_ms"]["torch_float32"]
    rows = {f"matmul floor, {k}": v for k, v in results["floor_ms"].items()} | results["step_ms"]
    for name, ms in rows.items():
        lines.append(f"| {name} | {ms:.1f} | {1e3 * batch / ms:.1f} | {100 * gflop / (ms / 1e3) / peak32:.1f}% | "
                     f"{torch32 / ms:.2f}x |")
    rates = ", ".join(f"{k} {v:.1f}" for k, v in results["matmul_gflops"].items())
    return "\n".join(lines) + f"\n\nstep matmuls: {gflop:.2f} GFLOP; matmul rate (GFLOP/s): {rates}\n"


def profile_markdown(op_type_ms: dict[str, dict[str, float]]) -> str:
    names = list(op_type_ms)
    kinds = list(dict.fromkeys(k for totals in op_type_ms.values() for k in totals))
    lines = [f"| op type | {' | '.join(f'ours {n} ms/step' for n in names)} |", "|---|" + "---|" * len(names)]
    for kind in kinds:
        lines.append(f"| {kind} | " + " | ".join(f"{op_type_ms[n].get(kind, 0.0):.1f}" for n in names) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
