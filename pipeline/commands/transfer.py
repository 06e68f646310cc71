"""`tfusion transfer --examples DIR --ranking RANKING_DIR --base-model MODEL_DIR
--output MODEL_DIR [...]`: RankNet transfer, the same code as the ranknet Trainer."""
from __future__ import annotations

import argparse

from pipeline.commands import training_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--examples", required=True,
                        help="target Examples folder (its Split-train/ holds the ranked images)")
    parser.add_argument("--ranking", required=True,
                        help="fused ranking artifact (fused_ranking-*.tfrecord.gz files)")
    parser.add_argument("--base-model", required=True, help="exported model to fine-tune")
    parser.add_argument("--output", required=True, help="model directory to export to")
    r = parser.add_argument_group("ranknet")
    r.add_argument("--batch-triplets", type=int, default=16,
                   help="triples per step, 3 images each (default 16)")
    r.add_argument("--near-ranks", type=int, nargs=2, default=[1, 25], metavar=("FIRST", "LAST"),
                   help="fused ranks i is drawn from (default 1 25)")
    r.add_argument("--far-ranks", type=int, nargs=2, default=[25, 50], metavar=("FIRST", "LAST"),
                   help="fused ranks j is drawn from (default 25 50)")
    r.add_argument("--temperature", type=float, default=0.0,
                   help="τ of the target sigmoid((s_i − s_j)/τ); 0 = auto (median → 0.9)")
    r.add_argument("--freeze-fraction", type=float, default=2 / 3,
                   help="fraction of the backbone kept frozen (default 2/3)")
    r.add_argument("--same-camera-pairs", action="store_true",
                   help="draw j only from i's camera, so the network cannot rank by camera "
                        "appearance (useful when the fused ranking is weak)")
    r.add_argument("--reciprocal-k", type=int, default=0,
                   help="draw i only among near neighbours that hold the anchor in their own "
                        "fused top-k (k-reciprocal; 0 = off)")
    training_args.add_training_arguments(parser, steps=500, lr=1e-4)


def run(args: argparse.Namespace) -> int:
    from trainer import data, ranknet
    from trainer.config import RankNetConfig
    values = training_args.training_values(args)
    values.update(batch_triplets=args.batch_triplets, near_ranks=tuple(args.near_ranks),
                  far_ranks=tuple(args.far_ranks), temperature=args.temperature,
                  freeze_fraction=args.freeze_fraction,
                  same_camera_pairs=args.same_camera_pairs, reciprocal_k=args.reciprocal_k)
    config = RankNetConfig.from_dict(values, where="tfusion transfer")
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
