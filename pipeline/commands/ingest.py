"""`tfusion ingest DIR --output OUT [-- beam options]`: a re-ID folder -> tf.Examples.

Beam pipeline options follow a literal `--` (pipeline/beam_options.py). DIR and OUT
may be local folders or remote ones (`gs://...`).

Runs the same Beam job as the ReidExampleGen component (pipeline/reid_examples.py),
on the local DirectRunner unless Beam options name another runner, and prints per-split
counts, cameras, sequences and frame ranges.
"""
from __future__ import annotations

import argparse

from schemas import schema_path

ACCEPTS_BEAM_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from core.datasets import LAYOUTS
    from core.names import CONVENTIONS
    parser.add_argument("dataset_dir", help="dataset folder: Market-1501/DukeMTMC-reID "
                        "layout (bounding_box_train, query, bounding_box_test), TFusion "
                        "layout (train, probe, test) or a folder with manifest.csv")
    parser.add_argument("--output", required=True,
                        help="output folder (Split-train/, Split-query/, Split-gallery/)")
    parser.add_argument("--layout", choices=[*LAYOUTS, "manifest"],
                        help="folder layout (detected when omitted)")
    parser.add_argument("--convention", choices=list(CONVENTIONS),
                        help="file-name convention (detected when omitted)")
    parser.add_argument("--max-bad-fraction", type=float, default=0.01,
                        help="fail when more than this fraction of images is unreadable "
                             "(default 0.01)")


def run(args: argparse.Namespace) -> int:
    from core.errors import check_output_dir
    from pipeline.beam_options import make_pipeline
    from pipeline.reid_examples import format_report, ingest_folder
    check_output_dir(args.output)
    report = ingest_folder(args.dataset_dir, args.output, make_pipeline(args.beam_args),
                           schema_path("reid_examples"), layout=args.layout,
                           convention=args.convention,
                           max_bad_fraction=args.max_bad_fraction)
    print(format_report(report))
    print(f"examples written to {args.output}")
    return 0
