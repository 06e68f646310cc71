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
3. Timing (--only timing): `tfusion fuse` with its defaults (ranking and plot
   included, no oracle) on the Market harness features, this tree and --baseline
   (a checkout of the tree to compare against, e.g. `git worktree add /tmp/base
   <commit>`) interleaved --repeats times; prints per run wall, process CPU (user +
   sys) and each stage's wall / CPU (metrics.json "timing"), then the medians, and
   the fused ranking's and the evaluation's scored pairs per CPU second.
4. SynthReID features (--features DIR[,DIR...]: folders of train/query/gallery
   features, .npz files or row-shard folders, e.g. round 0's Embedder output of a
   `tfusion run` / `tfusion demo` folder: `rounds[0].features` in its run_summary.json).

Every fused figure is printed beside its oracle-ST bound (`tfusion fuse --oracle-st`:
the same fusion with the ST model estimated from true train identities, same run)
and the share of the bound's gain over vision that the estimator reaches.

usage: python benchmarks/bench_fuse.py [--lists ../shared/data/market] [--work DIR]
       [--only market|networks|features|timing] [--noise 1.5 2.0 3.0] [--no-tfusion]
       [--features DIR,...] [--baseline TREE] [--repeats 3]
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


def run_fuse(data_dir: str, out_dir: str, *extra: str, oracle: bool = True,
             tree: str = REPO) -> dict:
    """`tfusion fuse` (of the tree `tree`) in a child process; returns metrics plus
    wall time, process CPU time (user + sys) and peak RSS."""
    from core.features import split_features_path
    cmd = [sys.executable, "-m", "pipeline.cli", "fuse",
           "--train", split_features_path(data_dir, "train"),
           "--query", split_features_path(data_dir, "query"),
           "--gallery", split_features_path(data_dir, "gallery"),
           "--output-dir", out_dir, *(["--oracle-st"] if oracle else []), *extra]
    env = {**os.environ, "PYTHONPATH": tree}
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=tree, stdout=subprocess.DEVNULL, stderr=log,
                                env=env)
        _, status, usage = os.wait4(proc.pid, 0)   # this child's own peak RSS
        wall = time.perf_counter() - t0
        rss_kb = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise RuntimeError(f"tfusion fuse failed:\n{log.read()[-3000:]}")
    with open(os.path.join(out_dir, "metrics.json")) as f:
        m = json.load(f)
    m["wall_s"], m["cpu_s"], m["peak_rss_gb"] = wall, cpu, rss_kb / 1024 ** 2
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
    print("== Market-1501 harness (real lists, simulated features) "
          "[rank-1 / mAP, %]", flush=True)
    for noise in args.noise:
        feat = market_features(args, work, noise)
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


def market_features(args, work: str, noise: float) -> str:
    """The harness features at `noise` (seed 0), written once into `work`."""
    sim = networks.load_simulator()
    feat = os.path.join(work, f"market_noise{noise}")
    if not os.path.isfile(os.path.join(feat, "gallery.npz")):
        subprocess.run([sys.executable, sim.__file__, "--lists", args.lists, "--out",
                        feat, "--noise", str(noise), "--seed", "0"], check=True,
                       stdout=subprocess.DEVNULL)
    return feat


def stage_line(m: dict) -> str:
    """`stage wall/CPU` of each stage in metrics.json "timing" (CPU where recorded)."""
    t = m.get("timing", {})
    cpu = t.get("cpu", {})
    return ", ".join(f"{k[:-2]} {v:.1f}" + (f"/{cpu[k]:.1f}" if k in cpu else "")
                     for k, v in t.items() if k.endswith("_s"))


def pairs_per_cpu_second(m: dict, n_train: int, n_query: int, n_gallery: int) -> str:
    """Scored pairs per CPU second: the fused ranking (train × train, less its write)
    and the evaluation (vision and fusion, query × gallery each)."""
    t = m.get("timing", {})
    cpu = t.get("cpu", {})
    if "fused_ranking_s" not in cpu or "evaluation_s" not in cpu:
        return "(no CPU timing)"
    ranking = cpu["fused_ranking_s"] - t.get("ranking_write_s", 0.0)
    return (f"fused ranking {n_train * n_train / ranking / 1e6:.0f} M pairs/s, "
            f"evaluation {2 * n_query * n_gallery / cpu['evaluation_s'] / 1e6:.0f} M pairs/s")


def timing(args, work: str) -> None:
    import numpy as np
    print(f"== `tfusion fuse` timing (defaults; {args.repeats} interleaved runs each; "
          f"wall / CPU s)", flush=True)
    trees = [("this tree", REPO)] + ([("baseline", os.path.abspath(args.baseline))]
                                     if args.baseline else [])
    for noise in args.noise:
        feat = market_features(args, work, noise)
        with np.load(os.path.join(feat, "train.npz")) as z:
            n_train = len(z["frame"])
        with np.load(os.path.join(feat, "query.npz")) as z:
            n_query = len(z["frame"])
        with np.load(os.path.join(feat, "gallery.npz")) as z:
            n_gallery = len(z["frame"])
        runs = {label: [] for label, _ in trees}
        for rep in range(args.repeats):
            for label, tree in trees:
                out = os.path.join(work, f"out_timing_{noise}_{label.replace(' ', '_')}")
                m = run_fuse(feat, out, oracle=False, tree=tree)
                runs[label].append(m)
                print(f"  noise {noise} {label:9s} run {rep + 1}: wall {m['wall_s']:5.1f} "
                      f"CPU {m['cpu_s']:5.1f}  [{stage_line(m)}]", flush=True)
        for label, ms in runs.items():
            f = ms[0]["fusion"]
            same = all(x["fusion"] == f and x["vision"] == ms[0]["vision"] for x in ms)
            mid = sorted(ms, key=lambda x: x["wall_s"])[len(ms) // 2]
            print(f"market noise {noise} {label:9s} median wall "
                  f"{np.median([x['wall_s'] for x in ms]):5.1f} s, CPU "
                  f"{np.median([x['cpu_s'] for x in ms]):5.1f} s; fused rank-1 / mAP "
                  f"{f['rank1']:.2f} / {f['mAP']:.2f}{'' if same else ' (runs differ!)'}; "
                  f"median run: {stage_line(mid)}; "
                  f"{pairs_per_cpu_second(mid, n_train, n_query, n_gallery)}", flush=True)


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
    ap.add_argument("--only", choices=("market", "networks", "features", "timing"),
                    default=None)
    ap.add_argument("--baseline", default=None,
                    help="timing: a checkout of the tree to compare against")
    ap.add_argument("--repeats", type=int, default=3, help="timing: runs per tree")
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
    if args.only == "timing":
        timing(args, work)


if __name__ == "__main__":
    main()
