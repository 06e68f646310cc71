"""`tfusion pretrain --examples DIR --output MODEL_DIR [--steps N ...]`

Source pretraining outside TFX: the same code as the pretraining Trainer's run_fn.
"""
from __future__ import annotations

import argparse

from pipeline.commands import training_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", required=True,
                        help="source Examples folder (Split-train/ is trained on)")
    parser.add_argument("--output", required=True, help="model directory to export to")
    m = parser.add_argument_group("model")
    m.add_argument("--backbone", choices=["small", "resnet50"], default="small",
                   help="small: half-width ResNet-18 at 128x64 (CPU); resnet50: 256x128 (GPU)")
    m.add_argument("--height", type=int, default=0, help="input height (default per backbone)")
    m.add_argument("--width", type=int, default=0, help="input width (default per backbone)")
    m.add_argument("--base-width", type=int, default=32,
                   help="small ResNet first-stage channels (default 32)")
    m.add_argument("--weights", help="local backbone weights file (nothing is downloaded)")
    m.add_argument("--init-model", help="start from this exported model's backbone")
    o = parser.add_argument_group("objective")
    o.add_argument("--ids-per-batch", type=int, default=16, help="P of P×K batches (16)")
    o.add_argument("--images-per-id", type=int, default=4, help="K of P×K batches (4)")
    o.add_argument("--label-smoothing", type=float, default=0.1)
    o.add_argument("--verification", action="store_true",
                   help="add TFusion's pair-verification head (initialises RankNet)")
    o.add_argument("--verification-weight", type=float, default=1.0)
    training_args.add_training_arguments(parser, steps=1000, lr=1e-3)


def run(args: argparse.Namespace) -> int:
    from trainer import data, pretrain
    from trainer.config import PretrainConfig
    values = training_args.training_values(args)
    values.update(backbone=args.backbone, height=args.height, width=args.width,
                  base_width=args.base_width, weights=args.weights,
                  p=args.ids_per_batch, k=args.images_per_id,
                  label_smoothing=args.label_smoothing, verification=args.verification,
                  verification_weight=args.verification_weight)
    config = PretrainConfig.from_dict(values, where="tfusion pretrain")
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
