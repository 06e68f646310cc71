"""`tfusion` command line: one sub-command per stage, each imported only when used.

Each command lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`, so `tfusion fuse` never pays for importing TensorFlow or TFX.
Commands raise on failure; `main` applies the one error contract (pipeline/errors.py):
expected failures are one line and exit status 2, bugs keep their traceback.
A module that sets `ACCEPTS_BEAM_ARGS = True` takes Beam pipeline options after a
literal `--` (pipeline/beam_options.py): it receives them as given, checked, in
`args.beam_options`, and as complete pipeline args (local defaults, or `--setup_file`
added for a remote runner) in `args.beam_args` ([] when none were given). An unknown
flag before `--` is an error for every command.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from core.errors import InputError

# name -> (module, one-line help)
COMMANDS = {
    "ingest": ("pipeline.commands.ingest",
               "read a re-ID dataset folder into tf.Examples (train/query/gallery)"),
    "synth": ("pipeline.commands.synth",
              "render a SynthReID dataset in the Market-1501 folder layout"),
    "fuse": ("pipeline.commands.fuse",
             "build the ST model from features and fuse it with vision; evaluate"),
    "pretrain": ("pipeline.commands.pretrain",
                 "train a ResNet with identity labels on a source dataset"),
    "embed": ("pipeline.commands.embed",
              "embed a dataset with a trained model into feature .npz files"),
    "transfer": ("pipeline.commands.transfer",
                 "RankNet transfer on the target from a fused ranking"),
    "run": ("pipeline.commands.run",
            "run the TFX pipeline (ingest, pretrain, TFusion rounds, TFMA gates, push)"),
    "lineage": ("pipeline.commands.lineage",
                "print the ML Metadata lineage of the latest pushed model of a run"),
    "index": ("pipeline.commands.index",
              "embed a gallery with a pushed bundle into an index sorted by ST node and time"),
    "search": ("pipeline.commands.search",
               "rank an index's gallery for query images by the bundle's fused score"),
    "demo": ("pipeline.commands.demo",
             "`tfusion run` with the demo's defaults: the pipeline on the SynthReID demo "
             "preset into demo_out"),
}


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfusion",
        description="TFusion-TFX: unsupervised cross-dataset person re-identification.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == only:
            command = importlib.import_module(module)
            command.add_arguments(p)
            if getattr(command, "ACCEPTS_BEAM_ARGS", False):
                from pipeline.beam_options import HELP
                p.epilog = HELP
    return parser


class UsageError(InputError):
    """A command line that names an unknown flag or misplaces Beam options."""


def parse_command_line(argv: List[str]):
    """(args, command module) for `tfusion ARGV`, or (None, None) without a command.

    Raises UsageError for an unknown flag, or for Beam options given to a command
    that runs no Beam job; argparse's own errors exit with status 2."""
    from pipeline import beam_options
    own, beam = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, None)
    command = next((a for a in own if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args, extra = parser.parse_known_args(own)
    if not args.command:
        parser.print_help()
        return None, None
    module = importlib.import_module(COMMANDS[args.command][0])
    takes_beam = getattr(module, "ACCEPTS_BEAM_ARGS", False)
    if extra:
        raise UsageError(f"unrecognized arguments: {' '.join(extra)}"
                         + (" (Beam pipeline options go after a literal `--`)"
                            if takes_beam else ""))
    if takes_beam:
        args.beam_options = beam_options.check_options(beam) if beam else []
        args.beam_args = beam_options.beam_args(args.beam_options) if beam else []
    elif beam is not None:
        raise UsageError(f"takes no Beam pipeline options; unexpected: -- {' '.join(beam)}")
    return args, module


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter
    from pipeline import errors
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, module = parse_command_line(argv)
    except errors.EXPECTED as e:
        return errors.report(next((a for a in argv if not a.startswith("-")), ""), e)
    if module is None:
        return 2
    try:
        return int(module.run(args) or 0)
    except errors.EXPECTED as e:
        return errors.report(args.command, e)


if __name__ == "__main__":
    sys.exit(main())
