#!/usr/bin/env python3
"""SynthReID rendering rate (images/s written as JPEG), 1 worker vs N workers.

Renders an evenly spaced slice of --images jobs of the demo preset and, when the
real name lists are present, of the market preset (one image per real Market-1501
name), first with one worker (a quarter as many images), then with --workers.
Target: >= 300 images/s on 2 cores.

usage: python benchmarks/bench_synth.py [--images 3000] [--workers 2]
           [--lists ../shared/data/market] [--size 128x64]
"""
import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from synth.config import ConfigError, default_lists_dir, load_config  # noqa: E402
from synth.generate import output_dirs, prepare_folders  # noqa: E402
from synth.plan import plan_dataset  # noqa: E402
from synth.writer import render_jobs  # noqa: E402


def rate(preset: str, n: int, workers: int, lists: str, size) -> tuple:
    cfg = load_config(preset, overrides={"height": size[0], "width": size[1]})
    jobs = plan_dataset(cfg, 0, lists).jobs
    step = max(1, len(jobs) // n)
    jobs = jobs[::step][:n]
    out = tempfile.mkdtemp(prefix="bench_synth_")
    try:
        dirs = output_dirs(cfg, out)
        prepare_folders(dirs, force=True)
        stats = render_jobs(jobs, cfg, 0, dirs, workers, progress=False)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return stats.images, stats.rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lists", default=default_lists_dir())
    ap.add_argument("--size", default="128x64", help="HEIGHTxWIDTH")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    print(f"SynthReID rendering rate, {size[0]}x{size[1]} JPEG, {os.cpu_count()} CPUs")
    for preset in ("demo", "market"):
        try:
            n1, r1 = rate(preset, a.images // 4, 1, a.lists, size)
            n, r = rate(preset, a.images, a.workers, a.lists, size)
        except ConfigError as e:
            print(f"  {preset}: skipped ({e})")
            continue
        print(f"  {preset:6s}: 1 worker {r1:6.0f} images/s ({n1} images); "
              f"{a.workers} workers {r:6.0f} images/s ({n} images); "
              f"speed-up {r / r1:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
