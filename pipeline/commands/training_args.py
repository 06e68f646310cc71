"""Flags shared by `tfusion pretrain` and `tfusion transfer` (config in trainer/config.py)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Optional


def add_training_arguments(parser: argparse.ArgumentParser, steps: int, lr: float) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--steps", type=int, default=steps, help=f"training steps (default {steps})")
    g.add_argument("--learning-rate", type=float, default=lr,
                   help=f"Adam learning rate, warm-up then cosine decay (default {lr})")
    g.add_argument("--epoch-steps", type=int, default=100,
                   help="steps between progress lines (default 100)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-flip", action="store_true", help="no random horizontal flip")
    g.add_argument("--crop-padding", type=float, default=0.08,
                   help="pad-and-random-crop fraction (0 = off; default 0.08)")
    g.add_argument("--erasing", type=float, default=0.5,
                   help="random-erasing probability (0 = off; default 0.5)")
    g.add_argument("--run-dir", help="TensorBoard logs and training summary "
                   "(default OUTPUT/logs)")
    a = parser.add_argument_group("accelerators")
    a.add_argument("--mixed-precision", choices=["auto", "on", "off"], default="auto",
                   help="float16 compute with float32 variables (auto: on iff a GPU is visible)")
    a.add_argument("--xla", action="store_true", help="compile the train step with XLA")
    a.add_argument("--multi-gpu", choices=["auto", "on", "off"], default="auto",
                   help="MirroredStrategy (auto: on iff several GPUs are visible)")
    a.add_argument("--deterministic", choices=["auto", "on", "off"], default="auto",
                   help="TensorFlow op determinism: same seed, same results (auto: on "
                        "iff no GPU is visible; on a GPU it costs speed)")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip the query/gallery rank-1/mAP report after training")


def training_values(args: argparse.Namespace) -> Dict[str, Any]:
    return {"steps": args.steps, "learning_rate": args.learning_rate,
            "epoch_steps": args.epoch_steps, "seed": args.seed, "flip": not args.no_flip,
            "crop_padding": args.crop_padding, "erasing": args.erasing,
            "mixed_precision": args.mixed_precision, "xla": args.xla,
            "multi_gpu": args.multi_gpu, "deterministic": args.deterministic}


def check_output(args: argparse.Namespace) -> None:
    """Refuse an --output (or --run-dir) that is an existing file before training."""
    from core.errors import check_output_dir
    check_output_dir(args.output, "model folder (--output)")
    check_output_dir(run_dir(args), "run folder (--run-dir)")


def run_dir(args: argparse.Namespace) -> str:
    return args.run_dir or os.path.join(args.output, "logs")


def report_evaluation(model_dir: str, examples: str, what: str) -> Optional[dict]:
    """Print rank-1/5/10 and mAP on the examples' query/gallery splits, when present."""
    from trainer import embed
    result = embed.evaluate(model_dir, examples)
    if result is None:
        print(f"{what}: no query/gallery splits in {examples} (or st_model.metrics "
              "unavailable); evaluation skipped", file=sys.stderr)
        return None
    print(f"{what} on {examples}: " + " ".join(
        f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return result
