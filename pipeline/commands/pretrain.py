"""`tfusion pretrain --examples DIR --output MODEL_DIR [--steps N ...]`

Source pretraining outside TFX: the same code as the pretraining Trainer's run_fn.
"""
from __future__ import annotations

import argparse
from typing import Any

from pipeline.commands import training_args
from pipeline.commands.flags import argument_group


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", required=True,
                        help="source Examples folder (Split-train/ is trained on)")
    parser.add_argument("--output", required=True, help="model directory to export to")
    from trainer.config import PretrainConfig
    training_args.add_training_arguments(parser, PretrainConfig)
    argument_group(parser, "model").add_argument(
        "--init-model", help="start from this exported model's backbone")


def config_from_args(args: argparse.Namespace) -> Any:
    """The PretrainConfig of the flags given."""
    from trainer.config import PretrainConfig
    return training_args.training_config(args, PretrainConfig, "tfusion pretrain")


def run(args: argparse.Namespace) -> int:
    from trainer import data, pretrain
    config = config_from_args(args)
    training_args.check_output(args)
    files = data.split_files(args.examples, "train")
    summary = pretrain.pretrain(files, config, export_dir=args.output,
                                run_dir=training_args.run_dir(args), init_model=args.init_model)
    print(f"pretrained {summary['steps']} steps in {summary['minutes']:.1f} min "
          f"({summary['images_per_s']:.1f} images/s) on {summary['images']} images of "
          f"{summary['identities']} identities; model: {args.output}")
    if not args.no_eval:
        training_args.report_evaluation(args.output, args.examples, "pretrained model")
    return 0
