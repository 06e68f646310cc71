"""`tfusion demo`: the whole TFusion loop on an embedded SynthReID default.

    synth (source + target domains) -> ingest both (Beam) -> pretrain a small ResNet on
    the labelled source -> for each round: embed the target, build its ST model and fuse
    (`tfusion fuse`), RankNet transfer from the fused train ranking -> final embed + fuse

Every stage is the same code the `tfusion` sub-commands and the TFX components run;
all outputs stay under --out, and a table of vision / fused rank-1 and mAP per round is
printed at the end (and written to OUT/summary.json). Re-running with the same --out
reuses the rendered images and the ingested examples only when their recorded
fingerprint (preset, seed, and the content of the images ingested) is the one this run
would record; otherwise they are redone.
"""
import argparse
import json
import os
import shutil
import sys
import time
from typing import Dict, List

from core import progress
from core.datasets import SPLITS
from core.errors import InputError, check_output_dir
from pipeline import fingerprint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--preset", default="demo",
                        help="SynthReID preset with a source and a target domain "
                             "(default demo; tiny for a smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-steps", type=int, default=400,
                        help="source pretraining steps of 64 images (default 400, "
                             "~8 min on 2 CPU cores)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="RankNet transfer rounds on the target (default 1)")
    parser.add_argument("--transfer-steps", type=int, default=300,
                        help="RankNet steps of 16 triplets per round (default 300)")
    parser.add_argument("--fresh", action="store_true",
                        help="re-render and re-ingest even if OUT already holds them")


_log = progress.log


def _reusable(folder: str, fp: Dict, fresh: bool, what: str) -> bool:
    """Whether `folder` holds outputs of exactly `fp` (logs why not when it differs)."""
    if fresh or not os.path.isdir(folder):
        return False
    if fingerprint.matches(folder, fp):
        _log(f"reusing {what} in {folder}")
        return True
    _log(f"redoing {what} in {folder} ({fingerprint.differences(folder, fp)})")
    return False


def render_data(out: str, preset: str, seed: int, fresh: bool) -> Dict[str, str]:
    """SynthReID source and target domains in the Market layout; reused only when
    rendered from the same preset (its resolved settings) and seed."""
    from synth.config import load_config
    from synth.generate import generate
    data = os.path.join(out, "data")
    fp = fingerprint.make(stage="synth", preset=preset, seed=seed,
                          settings=load_config(preset))
    dirs = {d: os.path.join(data, d) for d in ("source", "target")}
    if _reusable(data, fp, fresh, "SynthReID images"):
        return dirs
    fingerprint.forget(data)
    _log(f"rendering SynthReID preset {preset!r} into {data}")
    report = generate(preset, data, seed=seed, force=True)
    if not {"source", "target"} <= set(report.dataset_dirs):
        raise InputError(f"preset {preset!r} has domains {sorted(report.dataset_dirs)}; "
                         "the demo needs a source and a target domain")
    fingerprint.record(data, fp)
    return report.dataset_dirs


def ingest_domain(dataset_dir: str, examples_dir: str, fresh: bool) -> Dict:
    """tf.Examples of one domain (the ReidExampleGen Beam job); reused only when
    ingested from the same image content."""
    from pipeline.beam_options import make_pipeline
    from pipeline.reid_examples import REPORT_NAME, format_report, ingest_folder
    from schemas import schema_path
    fp = fingerprint.make(stage="ingest", images=fingerprint.tree_digest(dataset_dir))
    if _reusable(examples_dir, fp, fresh, "examples"):
        with open(os.path.join(examples_dir, REPORT_NAME)) as f:
            report = json.load(f)
    else:
        shutil.rmtree(examples_dir, ignore_errors=True)  # no stale shards mixed in
        _log(f"ingesting {dataset_dir} -> {examples_dir}")
        report = ingest_folder(dataset_dir, examples_dir, make_pipeline(),
                               schema_path("reid_examples"))
        fingerprint.record(examples_dir, fp)
    print(format_report(report), file=sys.stderr)
    return report


def fuse_round(features_dir: str, fusion_dir: str) -> Dict:
    """ST model + fusion + evaluation + fused train ranking for one round's features."""
    from core.features import load_features, split_features_path
    from pipeline.fuse_job import fuse
    from st_model.config import FusionConfig
    feats = {s: load_features(split_features_path(features_dir, s)) for s in SPLITS}
    return fuse(feats["train"], feats["query"], feats["gallery"], FusionConfig(),
                fusion_dir)


def run_demo(out: str, preset: str = "demo", seed: int = 0, pretrain_steps: int = 400,
             rounds: int = 1, transfer_steps: int = 300, fresh: bool = False) -> Dict:
    """Run the loop; returns the per-round metrics written to OUT/summary.json."""
    t0 = time.monotonic()
    check_output_dir(out)
    os.makedirs(out, exist_ok=True)
    dirs = render_data(out, preset, seed, fresh)
    examples = {d: os.path.join(out, "examples", d) for d in ("source", "target")}
    for d in ("source", "target"):
        ingest_domain(dirs[d], examples[d], fresh)

    from trainer.config import PretrainConfig, RankNetConfig
    from trainer.data import split_files
    from trainer.embed import embed_examples_to_dir
    from trainer.pretrain import pretrain
    from trainer.ranknet import transfer

    model = os.path.join(out, "models", "round0_pretrained")
    _log(f"pretraining a small ResNet on the source domain ({pretrain_steps} steps)")
    # The pair-verification head is trained too: RankNet's scoring head starts from it.
    pretrain(split_files(examples["source"], "train"),
             PretrainConfig(steps=pretrain_steps, seed=seed, verification=True),
             export_dir=model,
             run_dir=os.path.join(out, "logs", "pretrain"))
    target_train = split_files(examples["target"], "train")
    rows: List[Dict] = []
    for r in range(rounds + 1):
        feats = os.path.join(out, "features", f"round{r}")
        fusion = os.path.join(out, "fusion", f"round{r}")
        _log(f"round {r}: embedding the target with {model}")
        embed_examples_to_dir(model, examples["target"], feats)
        _log(f"round {r}: ST model + fusion -> {fusion}")
        m = fuse_round(feats, fusion)
        rows.append({"round": r, "model": model, "features": feats, "fusion": fusion,
                     "vision": m["vision"], "fusion_metrics": m["fusion"]})
        if r == rounds:
            break
        next_model = os.path.join(out, "models", f"round{r + 1}_ranknet")
        _log(f"round {r + 1}: RankNet transfer from {fusion} ({transfer_steps} steps)")
        transfer(target_train, fusion, model,
                 RankNetConfig(steps=transfer_steps, seed=seed), export_dir=next_model,
                 run_dir=os.path.join(out, "logs", f"ranknet_round{r + 1}"))
        model = next_model
    summary = {"out": out, "preset": preset, "seed": seed, "pretrain_steps": pretrain_steps,
               "transfer_steps": transfer_steps, "rounds": rows,
               "minutes": round((time.monotonic() - t0) / 60, 2)}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    return summary


def format_summary(summary: Dict) -> str:
    lines = ["", "TFusion demo on SynthReID target domain (query vs gallery, %):",
             f"{'round':>5} {'model':<22} {'vision r1':>9} {'mAP':>6} "
             f"{'fused r1':>9} {'mAP':>6}"]
    for row in summary["rounds"]:
        v, f = row["vision"], row["fusion_metrics"]
        lines.append(f"{row['round']:>5} {os.path.basename(row['model']):<22} "
                     f"{v['rank1']:9.1f} {v['mAP']:6.1f} {f['rank1']:9.1f} {f['mAP']:6.1f}")
    out = summary["out"]
    lines += ["", f"outputs in {out}/ ({summary['minutes']} min):",
              f"  data/        SynthReID images (Market layout) and data/preview.png",
              f"  examples/    tf.Examples per domain, with ingest_report.json",
              f"  models/      exported SavedModels (pretrained, then one per RankNet round)",
              f"  features/    embeddings per round (.npz)",
              f"  fusion/      per round: metrics.json, st_model.npz, st_model.png, "
              f"fused_ranking-*.tfrecord.gz",
              f"  logs/        TensorBoard logs", f"  summary.json"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summary = run_demo(args.out, args.preset, args.seed, args.pretrain_steps, args.rounds,
                       args.transfer_steps, args.fresh)
    print(format_summary(summary))
    return 0
