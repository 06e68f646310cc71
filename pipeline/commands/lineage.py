"""`tfusion lineage --output-dir DIR`: from ML Metadata, the chain from the latest
pushed model back through the Evaluator, Trainer runs, triplets, fused rankings, ST
models, features and both example sets, with artifact URIs and execution ids."""
from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", default="tfusion_run",
                        help="the `tfusion run` folder (holds metadata.sqlite)")


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from pipeline import lineage
    store = lineage.open_store(os.path.join(args.output_dir, "metadata.sqlite"))
    pushed = lineage.latest_pushed_model(store)
    if pushed is None:
        raise InputError(f"{args.output_dir}/metadata.sqlite: no model was pushed yet "
                         "(no candidate has been blessed)")
    print(lineage.format_lineage(lineage.lineage(store, pushed)))
    return 0
