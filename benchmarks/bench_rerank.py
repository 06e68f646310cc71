#!/usr/bin/env python3
"""Re-ranking on the Market harness: one table of vision, fusion, fusion +
re-ranking, oracle-ST fusion and oracle-ST fusion + re-ranking per noise level.

Features: ../shared/bench/simulate_features.py on the real Market-1501 lists (seed
0), fused by `tfusion fuse --rerank --oracle-st` in a child process. Beside the
figures: the re-ranking's wall time against the ST estimation plus evaluation of
the same run (its budget), and the run's peak memory after re-ranking against its
peak before (fusion alone), both as ratios. Rows where re-ranking lowers the fused
rank-1 by more than 0.5 are flagged RANK-1.

usage: python benchmarks/bench_rerank.py [--lists ../shared/data/market] [--work DIR]
       [--noise 0.7 1.0 1.5 2.0 3.0] [more tfusion fuse flags, e.g. --chance-level whole]
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench_fuse  # noqa: E402
import networks  # noqa: E402

RANK1_DROP = 0.5   # the most re-ranking may lower the fused rank-1 (points)
COLUMNS = (("vision", "vision"), ("fusion", "fusion"), ("fusion_reranked", "fusion+rr"),
           ("fusion_oracle_st", "oracle"), ("fusion_oracle_st_reranked", "oracle+rr"))


def features(lists: str, work: str, noise: float) -> str:
    """The harness's feature folder for `noise` (simulated once, then reused)."""
    sim = networks.load_simulator()
    out = os.path.join(work, f"market_noise{noise}")
    if not os.path.isfile(os.path.join(out, "gallery.npz")):
        import subprocess
        subprocess.run([sys.executable, sim.__file__, "--lists", lists, "--out", out,
                        "--noise", str(noise), "--seed", "0"], check=True,
                       stdout=subprocess.DEVNULL)
    return out


def table_row(noise: float, m: dict) -> str:
    cells = "  ".join(f"{m[k]['rank1']:5.1f} / {m[k]['mAP']:5.1f}" for k, _ in COLUMNS)
    t = m["timing"]
    budget = t["st_model_s"] + t["evaluation_s"]
    mem = t["peak_rss_after_rerank_gb"] / t["peak_rss_before_rerank_gb"]
    drop = m["fusion"]["rank1"] - m["fusion_reranked"]["rank1"]
    return (f"{noise:5.1f}  {cells}   {t['rerank_s']:5.1f} s / {budget:5.1f} s = "
            f"x{t['rerank_s'] / budget:4.2f}   {t['peak_rss_after_rerank_gb']:.2f} / "
            f"{t['peak_rss_before_rerank_gb']:.2f} GB = x{mem:4.2f}"
            f"{'   RANK-1' if drop > RANK1_DROP else ''}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default=os.path.join(REPO, "..", "shared", "data", "market"))
    ap.add_argument("--work", default=None, help="folder for features and outputs")
    ap.add_argument("--noise", type=float, nargs="+", default=[0.7, 1.0, 1.5, 2.0, 3.0])
    args, extra = ap.parse_known_args()   # anything else: more `tfusion fuse` flags
    work = args.work or tempfile.mkdtemp(prefix="bench_rerank_")
    os.makedirs(work, exist_ok=True)
    print(f"work folder: {work}")
    print("Market harness [rank-1 / mAP, %]; re-ranking time / (ST model + evaluation "
          "time); peak memory after / before re-ranking", flush=True)
    print(f"noise  " + "  ".join(f"{label:>13s}" for _, label in COLUMNS)
          + "   re-ranking time             peak memory", flush=True)
    for noise in args.noise:
        feat = features(args.lists, work, noise)
        m = bench_fuse.run_fuse(feat, os.path.join(work, f"out_{noise}"), "--rerank",
                                "--no-plot", "--no-ranking", *extra)
        print(table_row(noise, m), flush=True)


if __name__ == "__main__":
    main()
