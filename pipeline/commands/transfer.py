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
    from trainer.config import RankNetConfig
    d = RankNetConfig()
    r = parser.add_argument_group("ranknet")
    r.add_argument("--batch-triplets", type=int, default=d.batch_triplets,
                   help=f"triples per step, 3 images each (default {d.batch_triplets})")
    r.add_argument("--near-ranks", type=int, nargs=2, default=list(d.near_ranks),
                   metavar=("FIRST", "LAST"),
                   help="fused ranks i is drawn from (default %(default)s)")
    r.add_argument("--far-ranks", type=int, nargs=2, default=list(d.far_ranks),
                   metavar=("FIRST", "LAST"),
                   help="fused ranks j is drawn from (default %(default)s)")
    r.add_argument("--temperature", type=float, default=d.temperature,
                   help="τ of the target sigmoid((s_i − s_j)/τ); 0 = auto (median → 0.9)")
    r.add_argument("--freeze-fraction", type=float, default=d.freeze_fraction,
                   help="fraction of the backbone kept frozen (default %(default)s)")
    r.add_argument("--same-camera-pairs", action="store_true",
                   help="draw j only from i's camera, so the network cannot rank by camera "
                        "appearance (useful when the fused ranking is weak)")
    r.add_argument("--reciprocal-k", type=int, default=d.reciprocal_k,
                   help="draw i only among near neighbours that hold the anchor in their own "
                        "fused top-k (k-reciprocal; 0 = off; default %(default)s)")
    r.add_argument("--score", choices=("cosine", "verification"), default=d.score,
                   help="pair score: cosine = learned scale × cosine of the embeddings; "
                        "verification = the paper's sigmoid head (default %(default)s)")
    r.add_argument("--paper", action="store_true",
                   help="the paper's formulation: verification score, near 1-25 / far 25-50, "
                        "no reciprocal filter, two thirds frozen, lr 1e-4 (overrides those "
                        "flags)")
    training_args.add_training_arguments(parser, steps=d.steps, lr=d.learning_rate)


def run(args: argparse.Namespace) -> int:
    from trainer import data, ranknet
    from trainer.config import PAPER_RANKNET, RankNetConfig
    values = training_args.training_values(args)
    values.update(batch_triplets=args.batch_triplets, near_ranks=tuple(args.near_ranks),
                  far_ranks=tuple(args.far_ranks), temperature=args.temperature,
                  freeze_fraction=args.freeze_fraction,
                  same_camera_pairs=args.same_camera_pairs, reciprocal_k=args.reciprocal_k,
                  score=args.score)
    if args.paper:
        values.update(PAPER_RANKNET)
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
