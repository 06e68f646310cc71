#!/usr/bin/env python3
"""Exact random model at scale: 1,000,000 synthetic tracks over 8 cameras.

Prints the time of st_model.random_model.random_histogram (FFT cross-correlation of
per-camera frame series, exact) beside a brute-force estimate: the measured time of
enumerating all pairs of a subsample, scaled by (N / n)². Also checks on that
subsample that both give the same counts.

usage: python benchmarks/bench_random_model.py [--tracks 1000000] [--cameras 8]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from st_model import random_model  # noqa: E402
from st_model.histograms import make_grid  # noqa: E402
from st_model.nodes import build_nodes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tracks", type=int, default=1_000_000)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--span", type=int, default=2_000_000, help="frames (80 000 s at 25 fps)")
    ap.add_argument("--bin-frames", type=int, default=100)
    ap.add_argument("--brute-sample", type=int, default=4000)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    cam = rng.integers(1, a.cameras + 1, a.tracks)
    seq = np.ones(a.tracks, np.int64)
    frame = rng.integers(0, a.span, a.tracks)
    mode = "camera_sequence"
    nodes = build_nodes(cam, seq, mode)
    node = nodes.lookup(cam, seq)
    grid = make_grid(a.span, a.bin_frames)

    t0 = time.perf_counter()
    counts, info = random_model.random_histogram(node, cam, seq, frame, mode, nodes.size, grid)
    exact_s = time.perf_counter() - t0
    pairs = int(counts.sum())
    expected = a.tracks ** 2 - int((np.bincount(cam) ** 2).sum())
    assert pairs == expected, (pairs, expected)

    n = a.brute_sample
    sub = rng.choice(a.tracks, n, replace=False)
    t0 = time.perf_counter()
    brute = random_model.brute_force_random_histogram(node[sub], cam[sub], seq[sub],
                                                      frame[sub], mode, nodes.size, grid)
    brute_s = time.perf_counter() - t0
    fast_sub, _ = random_model.random_histogram(node[sub], cam[sub], seq[sub], frame[sub],
                                                mode, nodes.size, grid)
    same = bool(np.array_equal(brute, fast_sub))
    est = brute_s * (a.tracks / n) ** 2
    print(f"tracks {a.tracks:,}, cameras {a.cameras}, span {a.span:,} frames, "
          f"bin {a.bin_frames} frames, frame quantum {info['frame_quantum']} "
          f"(1 = exact)")
    print(f"exact random model: {exact_s:.1f} s for {pairs:,} ordered cross-camera pairs")
    print(f"brute force: {brute_s:.2f} s for {n:,} tracks -> estimated "
          f"{est:,.0f} s ({est / 3600:.1f} h) for {a.tracks:,}; speed-up x{est / exact_s:,.0f}")
    print(f"subsample check, exact == brute force: {same}")


if __name__ == "__main__":
    main()
