"""`tfusion` command line: one sub-command per stage, each imported only when used.

Each command lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`, so `tfusion fuse` never pays for importing TensorFlow or TFX.
Commands raise on failure; `main` applies the one error contract (pipeline/errors.py):
expected failures are one line and exit status 2, bugs keep their traceback.
A module that sets `ACCEPTS_BEAM_ARGS = True` receives the options it does not know
as `args.beam_args` (Beam pipeline options such as `--runner=DataflowRunner`).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

# name -> (module, one-line help)
COMMANDS = {
    "ingest": ("pipeline.ingest_command",
               "read a re-ID dataset folder into tf.Examples (train/query/gallery)"),
    "synth": ("synth.command",
              "render a SynthReID dataset in the Market-1501 folder layout"),
    "fuse": ("st_model.fuse_command",
             "build the ST model from features and fuse it with vision; evaluate"),
    "pretrain": ("trainer.pretrain_command",
                 "train a ResNet with identity labels on a source dataset"),
    "embed": ("trainer.embed_command",
              "embed a dataset with a trained model into feature .npz files"),
    "transfer": ("trainer.transfer_command",
                 "RankNet transfer on the target from a fused ranking"),
    "run": ("pipeline.run_command",
            "run the TFX pipeline (ingest, pretrain, TFusion rounds, TFMA gates, push)"),
    "lineage": ("pipeline.lineage_command",
                "print the ML Metadata lineage of the latest pushed model of a run"),
    "demo": ("pipeline.demo",
             "run the loop without TFX orchestration on an embedded SynthReID default"),
}


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfusion",
        description="TFusion-TFX: unsupervised cross-dataset person re-identification.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == only:
            importlib.import_module(module).add_arguments(p)
    return parser


def parse_command_line(argv: List[str]):
    """(args, command module) for `tfusion ARGV`, or (None, None) without a command."""
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(argv)
    if not args.command:
        parser.print_help()
        return None, None
    module = importlib.import_module(COMMANDS[args.command][0])
    if getattr(module, "ACCEPTS_BEAM_ARGS", False):
        args.beam_args = [a for a in extra if a != "--"]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args, module


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    args, module = parse_command_line(list(sys.argv[1:] if argv is None else argv))
    if module is None:
        return 2
    from pipeline import errors
    try:
        return int(module.run(args) or 0)
    except errors.EXPECTED as e:
        return errors.report(args.command, e)


if __name__ == "__main__":
    sys.exit(main())
