"""`tfhub-transfer lr-find`: the learning-rate range test, with the same data and model flags as `train`."""

from __future__ import annotations

import argparse

from tfhub_transfer.cli.parsing import ConcernGroups


def add_parser(sub, add_training_flags) -> None:
    """Registers `lr-find`; `add_training_flags` adds train's data, model and optimisation flags."""
    p = ConcernGroups(sub.add_parser("lr-find", help="sweep the learning rate (Smith's range test) and suggest "
                                                     "one for --lr"))
    add_training_flags(p)
    p.add_argument("--start-lr", type=float, default=1e-7, help="the sweep's first learning rate")
    p.add_argument("--end-lr", type=float, default=10.0, help="the sweep's last learning rate")
    p.add_argument("--num-steps", type=int, default=100,
                   help="training steps of the sweep (fastai uses 100; a few hundred give a smoother curve)")
    p.add_argument("--stop-factor", type=float, default=4.0,
                   help="stop once the smoothed loss exceeds this many times its best")
    p.add_argument("--out", default="saved_models/lr_find", help="writes lr_find.png and lr_find.csv here")


def run(args: argparse.Namespace, train_config) -> int:
    """Runs the sweep on the model `train_config(args)` describes; prints the suggestion and the files."""
    from tfhub_transfer.jobs.lr_find import find_learning_rate

    report = find_learning_rate(train_config(args, export=False), args.out, args.start_lr, args.end_lr,
                                args.num_steps, args.stop_factor)
    print(report.result.summary())
    print(f"train with --lr {report.result.suggestion:.2g}; wrote {report.plot} and {report.curve}")
    return 0
