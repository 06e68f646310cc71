"""`tfusion transfer --examples DIR --ranking RANKING_DIR --base-model MODEL_DIR
--output MODEL_DIR [...]`: RankNet transfer, the same code as the ranknet Trainer."""
from __future__ import annotations

import argparse
from typing import Any

from pipeline.commands import training_args
from pipeline.commands.flags import argument_group

# The base model fixes these: no flag on `tfusion transfer` (the ranknet Trainer's
# custom_config still takes height / width, checked against the base model).
BASE_MODEL_FIELDS = ("backbone", "height", "width", "base_width", "weights")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", required=True,
                        help="target Examples folder (its Split-train/ holds the ranked images)")
    parser.add_argument("--ranking", required=True,
                        help="fused ranking artifact (fused_ranking-*.tfrecord.gz files)")
    parser.add_argument("--base-model", required=True, help="exported model to fine-tune")
    parser.add_argument("--output", required=True, help="model directory to export to")
    from trainer.config import RankNetConfig
    training_args.add_training_arguments(parser, RankNetConfig, skip=BASE_MODEL_FIELDS)
    argument_group(parser, "ranknet").add_argument(
        "--paper", action="store_true",
        help="the paper's formulation: verification score, near 1-25 / far 25-50, no "
             "reciprocal filter, two thirds frozen, lr 1e-4 (overrides those flags)")


def config_from_args(args: argparse.Namespace) -> Any:
    """The RankNetConfig of the flags given (--paper overriding its fields)."""
    from trainer.config import PAPER_RANKNET, RankNetConfig
    return training_args.training_config(args, RankNetConfig, "tfusion transfer",
                                         PAPER_RANKNET if args.paper else None)


def run(args: argparse.Namespace) -> int:
    from trainer import data, ranknet
    config = config_from_args(args)
    training_args.check_output(args)
    files = data.split_files(args.examples, "train")
    summary = ranknet.transfer(files, args.ranking, args.base_model, config,
                               export_dir=args.output, run_dir=training_args.run_dir(args))
    print(f"RankNet transfer: {summary['steps']} steps in {summary['minutes']:.1f} min "
          f"({summary['images_per_s']:.1f} images/s), {summary['triplets']} triples; "
          f"model: {args.output}")
    if not args.no_eval:
        training_args.report_evaluation(args.output, args.examples, "transferred model")
    return 0
