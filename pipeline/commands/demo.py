"""`tfusion demo`: `tfusion run` with the demo's defaults, i.e. the TFX pipeline
(pipeline/pipeline.py) run in-process on the SynthReID `demo` preset into demo_out/
(what `make demo` runs). Every `tfusion run` flag applies: `--preset tiny` is a
smoke run, `--output-dir` another folder, options after `--` go to Beam. It prints
the same summary (pipeline/run_summary.py) and writes the same outputs.
"""
import argparse

from pipeline.commands import run as run_command

ACCEPTS_BEAM_ARGS = run_command.ACCEPTS_BEAM_ARGS
OUTPUT_DIR = "demo_out"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_command.add_arguments(parser, output_dir=OUTPUT_DIR)


def run(args: argparse.Namespace) -> int:
    return run_command.run(args)
