"""`tfusion fuse`: fuse features from any model with the ST model, and evaluate.

    tfusion fuse --train train.npz --query query.npz --gallery gallery.npz \\
        --output-dir OUT [--mode camera_sequence|tfusion] [--fusion ...] \\
        [--alpha A --beta B] [beam pipeline options ...]

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
from dataclasses import replace

from st_model.config import CHANCE_LEVELS, FUSIONS, FusionConfig
from st_model.nodes import MODES

_DEFAULTS = FusionConfig()

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
    st = parser.add_argument_group("ST model")
    st.add_argument("--mode", choices=MODES, default=_DEFAULTS.mode,
                    help="ST node: (camera, sequence) [default] or TFusion's faithful "
                         "rules (same-sequence pairs only, ±700-frame windows)")
    st.add_argument("--top-k", type=int, default=_DEFAULTS.top_k,
                    help="visual neighbours per train image (default %(default)s)")
    st.add_argument("--sharpness", type=float, default=_DEFAULTS.sharpness,
                    help="β of the soft neighbour weights exp(β·(z − best z)), z in "
                         "random-pair standard deviations (default %(default)s); "
                         "--hard-top-k: TFusion's weight 1 per neighbour")
    st.add_argument("--hard-top-k", action="store_true",
                    help="TFusion's visual model: every top-k neighbour counts 1 and no "
                         "chance level is subtracted (always so in --mode tfusion)")
    st.add_argument("--noise-threshold", type=float, default=_DEFAULTS.noise_threshold,
                    help="λ: deviations of the neighbour histogram from its chance level "
                         "within λ standard errors are dropped (default %(default)s)")
    st.add_argument("--chance-level", choices=CHANCE_LEVELS, default=_DEFAULTS.chance_level,
                    help="chance-shaped evidence under the deviations: the true share "
                         "(1 − c)·W·r [default] or the whole W·r (flatter log-ratios: "
                         "+2.3 mAP on dense Market-like data at noise 1.5, 4–7 rank-1 "
                         "lost on small networks at noise 2.0)")
    st.add_argument("--bin-frames", type=int, default=_DEFAULTS.bin_frames,
                    help="widest histogram bin in frames; narrowed to half the "
                         "bandwidth when that is smaller (default %(default)s)")
    st.add_argument("--bandwidth", type=float, default=None,
                    help="Parzen σ in frames (default: leave-one-out choice on train)")
    st.add_argument("--kappa", type=float, default=_DEFAULTS.kappa,
                    help="shrinkage n/(n+κ) of a node pair's log-ratio, n its effective "
                         "number of deltas (default %(default)s)")
    st.add_argument("--prior-count", type=float, default=_DEFAULTS.prior_count,
                    help="random-model pseudo-count in P_st (default %(default)s)")
    st.add_argument("--frame-rate", type=float, default=None,
                    help="frames per second, for reporting (default: from the naming "
                         "convention of the train names, e.g. Market 25, Duke 60; else 25)")
    fu = parser.add_argument_group("fusion")
    fu.add_argument("--fusion", choices=FUSIONS, default=None,
                    help="loglinear (default), bayes (eq. 9; default in tfusion mode "
                         "or with --alpha/--beta) or logistic (st-ReID)")
    fu.add_argument("--weight", type=float, default=_DEFAULTS.weight,
                    help="w of w·log P_v in the log-linear mix (default %(default)s)")
    fu.add_argument("--alpha", type=float, default=_DEFAULTS.alpha, help="eq. 9 α")
    fu.add_argument("--beta", type=float, default=_DEFAULTS.beta, help="eq. 9 β")
    fu.add_argument("--ranking-top-n", type=int, default=_DEFAULTS.ranking_top_n,
                    help="fused neighbours per train image in the ranking (default "
                         "%(default)s)")
    rr = parser.add_argument_group("re-ranking")
    rr.add_argument("--rerank", action="store_true",
                    help="also rank query × gallery re-ranked: detections of one visit "
                         "pooled, then k-reciprocal re-ranking of the fused score")
    rr.add_argument("--rerank-k1", type=int, default=_DEFAULTS.rerank_k1,
                    help="k1 of the k-reciprocal sets (default %(default)s)")
    rr.add_argument("--rerank-k2", type=int, default=_DEFAULTS.rerank_k2,
                    help="k2 of the local query expansion (default %(default)s)")
    rr.add_argument("--rerank-lambda", type=float, default=_DEFAULTS.rerank_lambda,
                    help="λ: weight of the fused distance beside the Jaccard distance "
                         "(default %(default)s)")
    rr.add_argument("--rerank-tau", type=float, default=_DEFAULTS.rerank_tau,
                    help="fused-score units per unit of distance (default %(default)s)")
    rr.add_argument("--visit-seconds", type=float, default=_DEFAULTS.visit_seconds,
                    help="window of one visit's near-duplicates in a node; 0: no "
                         "pooling (default %(default)s)")
    rr.add_argument("--visit-fdr", type=float, default=_DEFAULTS.visit_fdr,
                    help="estimated share of false visit links allowed (default "
                         "%(default)s)")
    rr.add_argument("--visit-weight", type=float, default=_DEFAULTS.visit_weight,
                    help="β: weight of a linked detection in a pooled feature beside "
                         "the detection's own 1 (default %(default)s)")
    fu.add_argument("--no-ranking", action="store_true",
                    help="skip writing the fused train ranking")
    fu.add_argument("--no-plot", action="store_true", help="skip st_model.png")
    fu.add_argument("--oracle-st", action="store_true",
                    help="also report the oracle-ST bound: the same fusion with the ST "
                         "model from true train identities (needs train pids)")


def config_from_args(args: argparse.Namespace) -> FusionConfig:
    fusion = args.fusion or ("bayes" if args.mode == "tfusion" or args.alpha or args.beta
                             else "loglinear")
    return FusionConfig(mode=args.mode, top_k=args.top_k,
                        sharpness=None if args.hard_top_k else args.sharpness,
                        noise_threshold=args.noise_threshold, bin_frames=args.bin_frames,
                        chance_level=args.chance_level,
                        bandwidth=args.bandwidth, kappa=args.kappa,
                        prior_count=args.prior_count, fusion=fusion, weight=args.weight,
                        alpha=args.alpha, beta=args.beta,
                        ranking_top_n=args.ranking_top_n,
                        frame_rate=args.frame_rate or _DEFAULTS.frame_rate,
                        rerank=args.rerank, rerank_k1=args.rerank_k1,
                        rerank_k2=args.rerank_k2, rerank_lambda=args.rerank_lambda,
                        rerank_tau=args.rerank_tau, visit_seconds=args.visit_seconds,
                        visit_fdr=args.visit_fdr, visit_weight=args.visit_weight)


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
    config = config_from_args(args).validate()
    check_output_dir(args.output_dir)
    beam_args = getattr(args, "beam_args", None) or None
    # the Beam path's workers read the train features; this process only its header
    train = (read_header(args.train) if beam_args and not args.oracle_st
             else load_features(args.train))
    if args.frame_rate is None and train.first_name is not None:
        config = replace(config, frame_rate=frame_rate_of([train.first_name]))
    query = load_features(args.query, require_pid=True)
    gallery = load_features(args.gallery, require_pid=True)
    result = fuse(train, query, gallery, config, args.output_dir,
                  beam_args=beam_args,
                  plot=not args.no_plot, ranking=not args.no_ranking,
                  oracle_st=args.oracle_st, train_path=args.train)
    v, f = result["vision"], result["fusion"]
    print(f"vision: rank-1 {v['rank1']:.2f} mAP {v['mAP']:.2f} | fusion ({config.mode}): "
          f"rank-1 {f['rank1']:.2f} mAP {f['mAP']:.2f} | "
          + "".join(f"{label}: rank-1 {result[key]['rank1']:.2f} mAP "
                    f"{result[key]['mAP']:.2f} | " for key, label in (
                        ("fusion_reranked", "fusion + re-ranking"),
                        ("fusion_oracle_st", "oracle-ST bound"),
                        ("fusion_oracle_st_reranked", "oracle-ST + re-ranking"))
                    if key in result)
          + f"{v['queries']} queries | {args.output_dir}")
    return 0
