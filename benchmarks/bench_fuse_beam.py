#!/usr/bin/env python3
"""`tfusion fuse` in memory beside its Beam path (DirectRunner, multi_processing,
2 worker processes) on the Market-1501 harness: wall time and peak memory.

Features: ../shared/bench/simulate_features.py on the real Market lists (--noise,
seed 0; 12,936 train images). Each run is `tfusion fuse --no-plot` in a fresh child
process (start-up and imports included). Memory is polled from /proc every 0.2 s
over the child and all its descendants (the Beam worker processes): the peak of
their summed RSS and the peak RSS of the largest single process. The two runs must
write the same ST model, fused ranking and fused metrics (checked and printed).

usage: python benchmarks/bench_fuse_beam.py [--lists ../shared/data/market]
           [--work DIR] [--noise 1.5] [--workers 2]
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


def _status_kb(pid: int, field: str = "VmRSS") -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int):
    """root and every process below it (from /proc/*/stat parent ids)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def run_fuse(feat: str, out: str, beam: list) -> dict:
    """Wall time, peak summed / largest-process RSS and worker count of one run."""
    cmd = [sys.executable, "-m", "pipeline.cli", "fuse",
           "--train", os.path.join(feat, "train.npz"),
           "--query", os.path.join(feat, "query.npz"),
           "--gallery", os.path.join(feat, "gallery.npz"),
           "--output-dir", out, "--no-plot", *beam]
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    peak_sum = peak_one = procs = 0
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=log)
        while proc.poll() is None:
            rss = [_status_kb(p) for p in descendants(proc.pid)]
            peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
            procs = max(procs, sum(r > 0 for r in rss))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        if proc.returncode:
            log.seek(0)
            raise RuntimeError(f"tfusion fuse failed:\n{log.read()[-3000:]}")
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    return {"wall_s": wall, "peak_sum_gb": peak_sum / 1024 ** 2,
            "peak_one_gb": peak_one / 1024 ** 2, "processes": procs, "metrics": m}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default=os.path.join(REPO, "..", "shared", "data", "market"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench_fuse_beam_")
    feat = os.path.join(work, f"market_noise{args.noise}")
    if not os.path.isfile(os.path.join(feat, "gallery.npz")):
        subprocess.run([sys.executable, networks.load_simulator().__file__, "--lists",
                        args.lists, "--out", feat, "--noise", str(args.noise),
                        "--seed", "0"], check=True, stdout=subprocess.DEVNULL)
    beam = ["--", "--runner=DirectRunner", "--direct_running_mode=multi_processing",
            f"--direct_num_workers={args.workers}"]
    runs = {"in memory (default)": ([], os.path.join(work, "out_memory")),
            f"Beam DirectRunner multi_processing, {args.workers} workers":
                (beam, os.path.join(work, "out_beam"))}
    print(f"== tfusion fuse --no-plot, Market harness noise {args.noise} "
          f"(work folder {work})")
    results = {}
    for label, (extra, out) in runs.items():
        r = results[label] = run_fuse(feat, out, extra)
        f = r["metrics"]["fusion"]
        print(f"{label:48s} wall {r['wall_s']:6.1f} s   peak RSS, all processes "
              f"{r['peak_sum_gb']:5.2f} GB   largest process {r['peak_one_gb']:5.2f} GB "
              f"({r['processes']} processes)   fused rank-1 {f['rank1']:.1f} mAP "
              f"{f['mAP']:.1f}   train {r['metrics']['st_model']['train_images']}",
              flush=True)
    from st_model.fused_ranking import read_ranking
    from st_model.st_artifact import load_st_model
    (_, mem), (_, bm) = runs.values()
    same_model = load_st_model(mem).same_as(load_st_model(bm))
    same_ranking = read_ranking(mem) == read_ranking(bm)
    same_metrics = len({json.dumps(r["metrics"]["fusion"], sort_keys=True)
                        for r in results.values()}) == 1
    print(f"identical ST model: {same_model}; identical fused ranking: {same_ranking}; "
          f"identical fused metrics: {same_metrics}")


if __name__ == "__main__":
    main()
