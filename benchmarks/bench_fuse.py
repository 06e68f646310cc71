#!/usr/bin/env python3
"""`tfusion fuse` accuracy and speed: the Market harness and other camera networks.

1. Market harness: ../shared/bench/simulate_features.py features of the real
   Market-1501 lists (--noise 1.5 and 2.0, seed 0), fused by `tfusion fuse` in a
   subprocess in the default and the faithful `tfusion` mode; prints vision / fused
   rank-1 and mAP, wall time and peak RSS of each run.
2. Other networks (benchmarks/networks.py): a small network with a few hundred
   train images and transit times of a few dozen frames (plain and crowded), an
   8-camera one-sequence network with ~14k train images, and time-shuffled copies
   (no ST signal at all). Fusion must never end clearly worse than vision there;
   rows where it does are flagged WORSE.
3. SynthReID features (--features DIR[,DIR...]: folders of train/query/gallery
   features, .npz files or row-shard folders, e.g. round 0's Embedder output of a
   `tfusion run` / `tfusion demo` folder: `rounds[0].features` in its run_summary.json).

Every fused figure is printed beside its oracle-ST bound (`tfusion fuse --oracle-st`:
the same fusion with the ST model estimated from true train identities, same run)
and the share of the bound's gain over vision that the estimator reaches.

usage: python benchmarks/bench_fuse.py [--lists ../shared/data/market] [--work DIR]
       [--only market|networks|features] [--noise 1.5 2.0 3.0] [--no-tfusion]
       [--features DIR,...]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

import networks  # noqa: E402

WORSE_MARGIN = 1.0  # points of rank-1 / mAP below vision that count as "clearly worse"


def run_fuse(data_dir: str, out_dir: str, *extra: str) -> dict:
    """`tfusion fuse` in a child process; returns metrics plus wall time and peak RSS."""
    from core.features import split_features_path
    cmd = [sys.executable, "-m", "pipeline.cli", "fuse",
           "--train", split_features_path(data_dir, "train"),
           "--query", split_features_path(data_dir, "query"),
           "--gallery", split_features_path(data_dir, "gallery"),
           "--output-dir", out_dir, "--oracle-st", *extra]
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)   # this child's own peak RSS
        wall = time.perf_counter() - t0
        rss_kb = usage.ru_maxrss
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RuntimeError(f"tfusion fuse failed:\n{log.read()[-3000:]}")
    with open(os.path.join(out_dir, "metrics.json")) as f:
        m = json.load(f)
    m["wall_s"], m["peak_rss_gb"] = wall, rss_kb / 1024 ** 2
    return m


def share_of_bound(vision: float, fused: float, oracle: float) -> str:
    """(fused − vision) / (oracle − vision): the share of the ST gain reached."""
    gain = oracle - vision
    return f"{100 * (fused - vision) / gain:4.0f}%" if gain > 1.0 else "   –"


def row(label: str, m: dict) -> str:
    v, f, o = m["vision"], m["fusion"], m["fusion_oracle_st"]
    worse = (f["rank1"] < v["rank1"] - WORSE_MARGIN) or (f["mAP"] < v["mAP"] - WORSE_MARGIN)
    st = m.get("st_model", {})
    return (f"{label:34s} vision {v['rank1']:5.1f} / {v['mAP']:5.1f}   fused "
            f"{f['rank1']:5.1f} / {f['mAP']:5.1f}   oracle-ST {o['rank1']:5.1f} / "
            f"{o['mAP']:5.1f}   rank-1 x{f['rank1'] / max(v['rank1'], 1e-9):4.2f} "
            f"(oracle x{o['rank1'] / max(v['rank1'], 1e-9):4.2f}, gain "
            f"{share_of_bound(v['rank1'], f['rank1'], o['rank1'])} of the bound's)"
            f"   h={st.get('bandwidth_frames', 0):.0f} bin={st.get('bin_frames')}"
            f"   {m['wall_s']:5.1f} s {m['peak_rss_gb']:.2f} GB"
            f"{'   WORSE' if worse else ''}")


def market(args, work: str) -> None:
    sim = networks.load_simulator()
    print("== Market-1501 harness (real lists, simulated features) "
          "[rank-1 / mAP, %]", flush=True)
    for noise in args.noise:
        feat = os.path.join(work, f"market_noise{noise}")
        if not os.path.isfile(os.path.join(feat, "gallery.npz")):
            subprocess.run([sys.executable, sim.__file__, "--lists", args.lists, "--out",
                            feat, "--noise", str(noise), "--seed", "0"], check=True,
                           stdout=subprocess.DEVNULL)
        modes = [("camera_sequence", [])] + ([] if args.no_tfusion
                                             else [("tfusion", ["--mode", "tfusion"])])
        for mode, extra in modes:
            out = os.path.join(work, f"out_market_{noise}_{mode}")
            m = run_fuse(feat, out, *extra)
            print(row(f"market noise {noise} {mode}", m), flush=True)


def other_networks(args, work: str) -> None:
    print("== other camera networks (synthetic, simulated features) "
          "[rank-1 / mAP, %]", flush=True)
    cases = [("small", False), ("small_crowded", False), ("small", True),
             ("eight_camera", False), ("eight_camera", True)]
    for noise in args.noise:
        for name, shuffle in cases:
            label = f"{name}{' shuffled' if shuffle else ''} noise {noise}"
            data = os.path.join(work, f"net_{name}_{shuffle}_{noise}")
            sizes = networks.write_network(name, data, noise=noise, shuffle_time=shuffle)
            m = run_fuse(data, os.path.join(data, "out"), "--no-plot", "--no-ranking")
            print(row(f"{label} ({sizes['train']} train)", m), flush=True)


def feature_folders(args, work: str) -> None:
    print("== feature folders (e.g. SynthReID demo round 0) [rank-1 / mAP, %]", flush=True)
    for i, folder in enumerate(args.features.split(",")):
        m = run_fuse(folder, os.path.join(work, f"out_features_{i}"), "--no-plot",
                     "--no-ranking")
        print(row(folder, m), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default=os.path.join(REPO, "..", "shared", "data", "market"))
    ap.add_argument("--work", default=None, help="folder for features and outputs")
    ap.add_argument("--only", choices=("market", "networks", "features"), default=None)
    ap.add_argument("--noise", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    ap.add_argument("--features", default=None,
                    help="comma-separated folders of train/query/gallery features "
                         "(.npz or row-shard folders) to fuse too")
    ap.add_argument("--no-tfusion", action="store_true")
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench_fuse_")
    os.makedirs(work, exist_ok=True)
    print(f"work folder: {work}")
    if args.only in (None, "market"):
        market(args, work)
    if args.only in (None, "networks"):
        other_networks(args, work)
    if args.features and args.only in (None, "features"):
        feature_folders(args, work)


if __name__ == "__main__":
    main()
