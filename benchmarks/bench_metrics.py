"""Ranking-metric cost at Market-1501 scale and at 10x the gallery.

A synthetic problem shaped like Market's test split (3,368 queries of 750
identities over 6 cameras; a 19,732-image gallery of 13,115 identity images,
2,798 distractors and 3,819 junk images; 64-d features) is evaluated with
`st_model.metrics.evaluate_features`, then the same queries against a gallery
grown 10x with distractors. Each scale runs in its own process; the script prints
wall time, the peak memory traced during the evaluation (tracemalloc) and the
process's peak RSS (resource.getrusage), and the 10x / 1x ratios. Blockwise
evaluation keeps the traced peak flat while time grows with the gallery.

    python benchmarks/bench_metrics.py [--scales 1 10] [--dim 64] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

N_QUERY, N_IDS, N_CAMS = 3368, 750, 6
N_GALLERY_IDENTITY, N_DISTRACTOR, N_JUNK = 13115, 2798, 3819
MARKET_GALLERY = N_GALLERY_IDENTITY + N_DISTRACTOR + N_JUNK     # 19,732


def synthetic_split(scale: int, dim: int, seed: int, noise: float = 1.1):
    """Query and gallery (features float32, pid, cam) shaped like Market's test split."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_IDS + 1, dim)).astype(np.float32)
    pid_q = rng.integers(1, N_IDS + 1, N_QUERY)
    cam_q = rng.integers(1, N_CAMS + 1, N_QUERY)
    pid_id = np.concatenate([np.arange(1, N_IDS + 1),     # every identity appears
                             rng.integers(1, N_IDS + 1, N_GALLERY_IDENTITY - N_IDS)])
    n_extra = (scale - 1) * MARKET_GALLERY
    pid_g = np.concatenate([pid_id, np.zeros(N_DISTRACTOR + n_extra, np.int64),
                            np.full(N_JUNK, -1)])
    cam_g = rng.integers(1, N_CAMS + 1, pid_g.size)

    def embed(pid):
        x = np.empty((pid.size, dim), np.float32)
        for lo in range(0, pid.size, 65536):       # float32 throughout, in chunks
            p = pid[lo:lo + 65536]
            x[lo:lo + 65536] = np.where(p[:, None] > 0, centres[np.maximum(p, 0)], 0) \
                + noise * rng.standard_normal((p.size, dim), dtype=np.float32)
        return x
    return (embed(pid_q), pid_q, cam_q), (embed(pid_g), pid_g, cam_g)


def measure(scale: int, dim: int, seed: int) -> dict:
    from st_model.metrics import evaluate_features
    (qf, qp, qc), (gf, gp, gc) = synthetic_split(scale, dim, seed)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    result = evaluate_features(qf, gf, qp, qc, gp, gc, progress=True,
                               source=f"bench x{scale}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"scale": scale, "queries": int(qp.size), "gallery": int(gp.size),
            "wall_s": wall, "cpu_s": cpu, "traced_peak_mb": traced_peak / 2**20,
            "rss_peak_mb": rss / 1024, "rss_before_mb": rss_before / 1024,
            "input_mb": (qf.nbytes + gf.nbytes) / 2**20,
            "dense_matrix_mb": qp.size * gp.size * 8 / 2**20,
            "rank1": result.rank1, "mAP": result.mAP, "evaluated": result.queries,
            "excluded": result.excluded}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 10],
                    help="gallery sizes as multiples of Market's 19,732 (default 1 10)")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)   # child process
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.dim, args.seed)))
        return 0
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rows = []
    for scale in args.scales:
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one",
                              str(scale), "--dim", str(args.dim), "--seed",
                              str(args.seed)], cwd=repo, check=True,
                             stdout=subprocess.PIPE, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'gallery':>8} {'queries':>7} {'wall s':>7} {'cpu s':>6} {'traced MB':>9} "
          f"{'RSS MB':>7} {'input MB':>8} {'dense MB':>9} {'rank-1':>7} {'mAP':>6}")
    for r in rows:
        print(f"{r['gallery']:>8} {r['queries']:>7} {r['wall_s']:>7.2f} "
              f"{r['cpu_s']:>6.2f} "
              f"{r['traced_peak_mb']:>9.1f} {r['rss_peak_mb']:>7.0f} "
              f"{r['input_mb']:>8.1f} {r['dense_matrix_mb']:>9.0f} "
              f"{r['rank1']:>7.2f} {r['mAP']:>6.2f}")
    print("cpu = process CPU time (all threads); traced = peak Python/numpy "
          "allocation during evaluate_features (inputs excluded); RSS = process peak "
          "incl. inputs; dense = one float64 [query x gallery] score matrix, never built")
    base = rows[0]
    for r in rows[1:]:
        g = r["gallery"] / base["gallery"]
        print(f"x{g:.0f} gallery: wall x{r['wall_s'] / base['wall_s']:.2f}, cpu "
              f"x{r['cpu_s'] / base['cpu_s']:.2f}, traced peak "
              f"x{r['traced_peak_mb'] / base['traced_peak_mb']:.2f}, RSS "
              f"x{r['rss_peak_mb'] / base['rss_peak_mb']:.2f} (a dense matrix: x{g:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
