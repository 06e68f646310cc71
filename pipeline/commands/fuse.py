"""`tfusion fuse`: fuse features from any model with the ST model, and evaluate.

    tfusion fuse --train train.npz --query query.npz --gallery gallery.npz \\
        --output-dir OUT [--mode camera_sequence|tfusion] \\
        [--fusion loglinear|bayes|logistic [--alpha A --beta B]] [beam options ...]

The ST-model and fusion-rule flags are generated from st_model.config's STConfig and
FusionRule fields (pipeline/commands/flags.py); `--help` lists them with their
defaults.

Inputs are .npz files in the feature interchange format (core/features.py).
Writes OUT/metrics.json ({"vision": {...}, "fusion": {...}, ...}), OUT/st_model.npz,
OUT/fused_ranking-*.tfrecord.gz and OUT/st_model.png; progress goes to stderr.

Execution path: in memory (numpy, blockwise) unless Beam pipeline options follow
the command's own flags (e.g. `--runner=DirectRunner --direct_running_mode=in_memory
--direct_num_workers=1`, or `--runner=DataflowRunner --project=... --region=...`):
then ST estimation and the fused ranking run as a Beam pipeline with those options.
Both paths write identical ST models and rankings. A literal `--` may separate the
command's flags from the Beam options.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

from core.dataclass_dict import from_dict
from pipeline.commands.flags import add_settings_flags, given_values
from st_model.config import (RENAMED_ST_KEYS, FusionRule, Settings, STConfig,
                             resolve_settings)

_DEFAULTS = STConfig()

# Unknown arguments are Beam pipeline options: pipeline/cli.py hands them over as
# `args.beam_args`.
ACCEPTS_BEAM_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `tfusion fuse`; anything unknown is passed to Beam's PipelineOptions."""
    parser.epilog = ("Unknown arguments are Beam pipeline options; giving any runs the "
                     "Beam path (default: in memory).")
    io = parser.add_argument_group("inputs and outputs")
    io.add_argument("--train", required=True,
                    help="train split features (.npz, or a folder of row shards "
                         "features-SSSSS-of-NNNNN.npz: what Beam workers read block by "
                         "block)")
    io.add_argument("--query", required=True,
                    help="query split features (.npz or shard folder, with pid)")
    io.add_argument("--gallery", required=True,
                    help="gallery split features (.npz or shard folder, with pid)")
    io.add_argument("--output-dir", required=True, help="folder for metrics and artifacts")
    io.add_argument("--no-ranking", action="store_true",
                    help="skip writing the fused train ranking")
    io.add_argument("--no-plot", action="store_true", help="skip st_model.png")
    io.add_argument("--oracle-st", action="store_true",
                    help="also report the oracle-ST bound: the same fusion with the ST "
                         "model from true train identities (needs train pids)")
    add_settings_flags(parser, STConfig, "ST model", renamed=RENAMED_ST_KEYS)
    add_settings_flags(parser, FusionRule, "fusion rule", skip=("rerank_teacher",))  # run only


def settings_from_args(args: argparse.Namespace, where: str = "tfusion fuse") -> Settings:
    """The resolved settings of the flags given (the rest keep their defaults)."""
    return resolve_settings(from_dict(STConfig, given_values(args, STConfig), where),
                            from_dict(FusionRule, given_values(args, FusionRule), where))


def frame_rate_of(names) -> float:
    """Nominal frame rate of the dataset the names come from (25 when unknown)."""
    from core.names import FRAME_RATES, detect_convention
    try:
        return FRAME_RATES.get(detect_convention([str(names[0])]), _DEFAULTS.frame_rate)
    except (ValueError, IndexError):
        return _DEFAULTS.frame_rate


def run(args: argparse.Namespace) -> int:
    from core.errors import check_output_dir
    from core.features import load_features, read_header
    from pipeline.fuse_job import fuse
    settings = settings_from_args(args)
    check_output_dir(args.output_dir)
    beam_args = getattr(args, "beam_args", None) or None
    # the Beam path's workers read the train features; this process only its header
    train = (read_header(args.train) if beam_args and not args.oracle_st
             else load_features(args.train))
    if args.frame_rate is None and train.first_name is not None:
        # a default from the data, not a mode preset: nothing to resolve again
        settings = settings._replace(
            st=replace(settings.st, frame_rate=frame_rate_of([train.first_name])))
    query = load_features(args.query, require_pid=True)
    gallery = load_features(args.gallery, require_pid=True)
    from core.progress import process_age_s
    result = fuse(train, query, gallery, settings, args.output_dir,
                  beam_args=beam_args,
                  plot=not args.no_plot, ranking=not args.no_ranking,
                  oracle_st=args.oracle_st, train_path=args.train,
                  startup=(process_age_s(), time.process_time()))
    v, f = result["vision"], result["fusion"]
    print(f"vision: rank-1 {v['rank1']:.2f} mAP {v['mAP']:.2f} | fusion ({settings.st.mode}): "
          f"rank-1 {f['rank1']:.2f} mAP {f['mAP']:.2f} | "
          + "".join(f"{label}: rank-1 {result[key]['rank1']:.2f} mAP "
                    f"{result[key]['mAP']:.2f} | " for key, label in (
                        ("fusion_reranked", "fusion + re-ranking"),
                        ("fusion_oracle_st", "oracle-ST bound"),
                        ("fusion_oracle_st_reranked", "oracle-ST + re-ranking"))
                    if key in result)
          + f"{v['queries']} queries | {args.output_dir}")
    return 0
