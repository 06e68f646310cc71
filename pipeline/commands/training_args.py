"""Flags shared by `tfusion pretrain` and `tfusion transfer` (config in trainer/config.py)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Iterable, Optional, Type, TypeVar

from pipeline.commands.flags import add_settings_flags, argument_group, given_values

T = TypeVar("T")


def add_training_arguments(parser: argparse.ArgumentParser, cls: type,
                           skip: Iterable[str] = ()) -> None:
    """The flags of training config `cls` (trainer/config.py; not those in `skip`),
    generated from its fields, then --run-dir and --no-eval."""
    add_settings_flags(parser, cls, "training", skip=skip)
    argument_group(parser, "training").add_argument(
        "--run-dir", help="TensorBoard logs and training summary (default OUTPUT/logs)")
    parser.add_argument("--no-eval", action="store_true",
                        help="skip the query/gallery rank-1/mAP report after training")


def training_config(args: argparse.Namespace, cls: Type[T], where: str,
                    overrides: Optional[Dict[str, Any]] = None) -> T:
    """`cls` from the flags the user gave (the rest keep the field defaults), then
    `overrides`."""
    values = given_values(args, cls)
    values.update(overrides or {})
    return cls.from_dict(values, where=where)


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
