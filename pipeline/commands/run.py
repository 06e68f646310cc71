"""`tfusion run`: the TFX pipeline (pipeline/pipeline.py) on a preset, a config file or
dataset folders; local by default (LocalDagRunner, SQLite ML Metadata, DirectRunner).

OUTPUT/ holds data/ (rendered SynthReID, for presets), pipeline/ (artifacts),
metadata.sqlite (ML Metadata), serving/ (pushed bundles), run_summary.json and
report.html. A re-run with the same inputs is served from the cache; a run that was
stopped resumes after its last finished component. More Beam pipeline options for
every Beam component follow a literal `--`, e.g.
`tfusion run -- --direct_running_mode=multi_processing --direct_num_workers=2`.
The console shows progress, the results and real problems; everything else (TFX, Beam
and TensorFlow logs, warnings, the packaging of the Trainers' user modules) goes to
OUTPUT/run.log (pipeline/run_log.py), named at the end; `--verbose` keeps it all on
the console.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from typing import Dict, List

from pipeline.commands.flags import add_settings_flags, given_values
from pipeline.run_config import RUNNERS, RunConfig, preset_config
from st_model.config import RENAMED_ST_KEYS, FusionRule, STConfig
from synth.config import RUN_PRESETS
from pipeline.run_log import LOG_NAME, console_for, verbose_from_env

METADATA = "metadata.sqlite"
ACCEPTS_BEAM_ARGS = True  # options after `--` arrive as args.beam_options
# harmless warnings TFX 1.16 prints for every component or every Evaluator
QUIET_WARNINGS = ("ArtifactQuery.property_predicate is not supported",
                  "Examples artifact does not have payload_format")


def add_arguments(parser: argparse.ArgumentParser, output_dir: str = "tfusion_run") -> None:
    """The flags of `tfusion run` (and `tfusion demo`, whose run folder defaults to
    demo_out)."""
    parser.add_argument("--preset", default="demo", choices=sorted(RUN_PRESETS),
                        help="SynthReID preset with its steps and gates (default demo)")
    parser.add_argument("--config", help="JSON run config (pipeline/run_config.py fields); "
                                         "replaces --preset")
    parser.add_argument("--output-dir", default=output_dir,
                        help="run folder: artifacts, ML Metadata, pushed models, report "
                             f"(default {output_dir})")
    parser.add_argument("--source", help="labeled source dataset folder (with --target)")
    parser.add_argument("--target", help="unlabeled target dataset folder (with --source)")
    parser.add_argument("--rounds", type=int, help="RankNet rounds")
    parser.add_argument("--seed", type=int, help="the config's \"seed\" (data and trainers)")
    parser.add_argument("--pretrain-steps", type=int, help="the config's \"pretrain.steps\"")
    parser.add_argument("--transfer-steps", type=int,
                        help="the config's \"ranknet.steps\" (each round)")
    parser.add_argument("--backbone", choices=("small", "resnet50"),
                        help="the config's \"backbone\" (both trainers)")
    parser.add_argument("--runner", choices=RUNNERS,
                        help="where Beam components run (default local DirectRunner)")
    parser.add_argument("--project", help="GCP project (dataflow)")
    parser.add_argument("--region", help="GCP region (dataflow)")
    parser.add_argument("--temp-location", help="gs:// temp folder (dataflow)")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every component")
    parser.add_argument("--compile-only", action="store_true",
                        help="compile the pipeline to OUTPUT/pipeline_ir.json and stop")
    parser.add_argument("--verbose", action="store_true",
                        help="everything on the console (TFX, Beam and TensorFlow logs, "
                             "warnings, pip) instead of OUTPUT/run.log; also TFUSION_VERBOSE=1")
    # over the preset or config file's "st" and "fusion_rule"
    add_settings_flags(parser, STConfig, "ST model (the config's \"st\")",
                       renamed=RENAMED_ST_KEYS)
    add_settings_flags(parser, FusionRule, "fusion rule (the config's \"fusion_rule\")")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    steps = {"pretrain": args.pretrain_steps, "ranknet": args.transfer_steps}
    overrides = {"rounds": args.rounds, "seed": args.seed, "backbone": args.backbone,
                 **{k: {"steps": n} for k, n in steps.items() if n is not None},
                 "runner": args.runner, "project": args.project, "region": args.region,
                 "temp_location": args.temp_location,
                 "beam_args": getattr(args, "beam_options", None) or None,
                 "source_dir": args.source, "target_dir": args.target,
                 "enable_cache": False if args.no_cache else None,
                 "st": given_values(args, STConfig) or None,
                 "fusion_rule": given_values(args, FusionRule) or None}
    if args.config:
        return RunConfig.load(args.config, **overrides)
    return preset_config(args.preset, **overrides)


@contextmanager
def component_progress(keep_all: bool = False):
    """One line per component start / finish / cache hit, from the TFX runner's log.

    keep_all: every absl record goes on to the handlers (the run log); otherwise INFO
    records and known harmless warnings are dropped, and TensorFlow's below ERROR."""
    import absl.logging
    logger = logging.getLogger("absl")
    started: Dict[str, float] = {}
    t0 = time.monotonic()

    def show(msg: str) -> None:
        print(f"[run {time.monotonic() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    def keep(record: logging.LogRecord) -> bool:
        msg, args = record.msg, record.args
        if record.levelno >= logging.WARNING:
            return keep_all or not any(str(msg).startswith(n) for n in QUIET_WARNINGS)
        if msg == "Component %s is running.":
            started[args[0]] = time.monotonic()
            show(f"{args[0]} ...")
        elif msg == "Component %s is finished.":
            show(f"{args[0]} done ({time.monotonic() - started.get(args[0], t0):.1f} s)")
        elif msg == "A cached execution %d is used.":
            show(f"  served from the cache (execution {args[0]})")
        return keep_all
    old = absl.logging.get_verbosity()
    absl.logging.set_verbosity(absl.logging.INFO)
    logger.addFilter(keep)
    tf_logger = logging.getLogger("tensorflow")  # TFMA's tf_record_iterator notices
    tf_level = tf_logger.level
    if not keep_all:
        tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.removeFilter(keep)
        tf_logger.setLevel(tf_level)
        absl.logging.set_verbosity(old)


def prepare_data(config: RunConfig, out: str) -> Dict[str, str]:
    """The source and target folders: given, or the preset rendered into OUTPUT/data."""
    if config.source_dir:
        return {"source": config.source_dir, "target": config.target_dir}
    from pipeline.prepared_data import render_data
    return render_data(out, config.preset, config.seed, fresh=False)


def build(config: RunConfig, out: str):
    from pipeline.pipeline import create_pipeline
    dirs = prepare_data(config, out)
    return create_pipeline(config, dirs["source"], dirs["target"],
                           os.path.join(out, "pipeline"), os.path.join(out, METADATA),
                           os.path.join(out, "serving"))


def run_pipeline(config: RunConfig, out: str, verbose: bool = False) -> Dict:
    """Run the DAG locally and return the run summary (also OUTPUT/run_summary.json);
    unless verbose, what is not progress or a problem goes to OUTPUT/run.log."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "run_config.json"), "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    with console_for(out, verbose):
        from tfx import v1 as tfx
        from pipeline.run_summary import summarize, write_outputs
        pipeline = build(config, out)
        t0 = time.monotonic()
        with component_progress(keep_all=not verbose):
            tfx.orchestration.LocalDagRunner().run(pipeline)
        summary = summarize(config, out, minutes=(time.monotonic() - t0) / 60)
        write_outputs(summary, out)
    return summary


def compile_pipeline(config: RunConfig, out: str, verbose: bool = False) -> str:
    """The pipeline's IR as JSON (what a runner executes), without running anything."""
    os.makedirs(out, exist_ok=True)
    with console_for(out, verbose):
        from google.protobuf import json_format
        from tfx.dsl.compiler.compiler import Compiler
        ir = Compiler().compile(build(config, out))
    path = os.path.join(out, "pipeline_ir.json")
    with open(path, "w") as f:
        f.write(json_format.MessageToJson(ir))
    return path


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    verbose = args.verbose or verbose_from_env()
    log = os.path.join(args.output_dir, LOG_NAME)
    if args.compile_only:
        print(compile_pipeline(config, args.output_dir, verbose))
        if not verbose:
            print(f"log: {log}", file=sys.stderr)
        return 0
    if config.runner == "dataflow":
        print("tfusion run: Beam components run on Dataflow; the orchestration (and the "
              "Trainers) run here", file=sys.stderr)
    from pipeline.run_summary import format_summary
    summary = run_pipeline(config, args.output_dir, verbose)
    print(format_summary(summary))
    if not verbose:
        print(f"log: {log}")
    return 0
