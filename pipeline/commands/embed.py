"""`tfusion embed --model MODEL_DIR (--examples DIR | --images DIR) --output-dir FEATS`

Writes FEATS/train.npz, query.npz, gallery.npz (the splits present) in the feature
interchange format (features, camera, frame, sequence, pid, name); with
--shard-rows R, folders FEATS/<split>/ of R-row shards (what Beam workers read block
by block).
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="exported model directory")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--examples", help="Examples folder (Split-train/, Split-query/, ...)")
    src.add_argument("--images", help="image folder in a Market/Duke/GRID layout")
    parser.add_argument("--output-dir", required=True,
                        help="folder for <split>.npz (or <split>/ with --shard-rows)")
    parser.add_argument("--splits", default=None,
                        help="comma-separated splits (default: those present of "
                             "train,query,gallery)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--shard-rows", type=int, default=None,
                        help="write each split as a folder of row shards of this many "
                             "rows (e.g. 1024) instead of one .npz")


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError, check_output_dir
    from trainer import embed
    splits = args.splits.split(",") if args.splits else None
    check_output_dir(args.output_dir)
    if args.shard_rows is not None and args.shard_rows < 1:
        raise InputError(f"--shard-rows must be a positive number of rows, got "
                         f"{args.shard_rows}")
    if args.examples:
        written = embed.embed_examples_to_dir(args.model, args.examples, args.output_dir,
                                              splits, args.batch_size, args.shard_rows)
    else:
        arrays = embed.embed_folder(args.model, args.images,
                                    splits or embed.SPLITS, args.batch_size)
        written = {s: embed.write_split(args.output_dir, s, a, args.shard_rows)
                   for s, a in arrays.items()}
    for split, path in written.items():
        print(f"{split}: {path}")
    return 0
