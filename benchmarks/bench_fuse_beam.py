#!/usr/bin/env python3
"""`tfusion fuse` in memory beside its Beam path (DirectRunner, multi_processing,
2 worker processes) on the Market-1501 harness: wall time and peak memory.

Features: ../shared/bench/simulate_features.py on the real Market lists (--noise,
seed 0; 12,936 train images). Each run is `tfusion fuse --no-plot` in a fresh child
process (start-up and imports included). Memory is polled from /proc every 0.2 s
over the child and all its descendants (the Beam worker processes): the peak of
their summed RSS and the peak RSS of the largest single process. The two runs must
write the same ST model, fused ranking and fused metrics (checked and printed).

With --scale S (S > 1) it then fuses the train split at 1× and at a synthetic S×
(each Market train image repeated S times with fresh feature noise and its frame
moved by a few frames, same camera and sequence), both mapped to --dim dimensions
by one random orthonormal map (cosines unchanged) and written as folders of
1,024-row shards, through the Beam path only with --no-ranking: wall time, the
launcher's peak RSS and the largest worker process's peak RSS, and the ratio of
the S× worker peak to the 1× one (flat memory per worker: about 1).

usage: python benchmarks/bench_fuse_beam.py [--lists ../shared/data/market]
           [--work DIR] [--noise 1.5] [--workers 2] [--scale 10] [--dim 512]
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


def run_fuse(feat: str, out: str, beam: list, train: str = None) -> dict:
    """Wall time, peak summed / largest-process / launcher / largest-worker RSS and
    process count of one run (train: feat/train.npz unless given)."""
    cmd = [sys.executable, "-m", "pipeline.cli", "fuse",
           "--train", train or os.path.join(feat, "train.npz"),
           "--query", os.path.join(feat, "query.npz"),
           "--gallery", os.path.join(feat, "gallery.npz"),
           "--output-dir", out, "--no-plot", *beam]
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    peak_sum = peak_one = peak_launcher = peak_worker = procs = 0
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                                stderr=log)
        while proc.poll() is None:
            rss = [_status_kb(p) for p in descendants(proc.pid)]  # launcher first
            peak_sum, peak_one = max(peak_sum, sum(rss)), max(peak_one, max(rss))
            peak_launcher = max(peak_launcher, rss[0])
            peak_worker = max([peak_worker] + rss[1:])
            procs = max(procs, sum(r > 0 for r in rss))
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        if proc.returncode:
            log.seek(0)
            raise RuntimeError(f"tfusion fuse failed:\n{log.read()[-3000:]}")
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    gb = 1024 ** 2
    return {"wall_s": wall, "peak_sum_gb": peak_sum / gb, "peak_one_gb": peak_one / gb,
            "launcher_gb": peak_launcher / gb, "worker_gb": peak_worker / gb,
            "processes": procs, "metrics": m}


def scaled_shards(feat: str, out: str, scale: int, dim: int, seed: int = 0) -> int:
    """feat/'s train split repeated `scale` times (see the module doc), mapped to
    `dim` dimensions, written as out/train/ (1,024-row shards); query and gallery
    mapped alike to out/{query,gallery}.npz."""
    import numpy as np
    from core.features import load_features, make_feature_set, save_feature_shards
    from core.features import save_features
    rng = np.random.default_rng(seed)
    t = load_features(os.path.join(feat, "train.npz"))
    d = t.dim
    basis = np.linalg.qr(np.random.default_rng(99).standard_normal((max(dim, d), d)))[0]
    lift = lambda x: (x @ basis.T).astype(np.float32)  # noqa: E731 - cosines kept
    for split in ("query", "gallery"):
        fs = load_features(os.path.join(feat, f"{split}.npz"))
        save_features(make_feature_set(lift(fs.features), fs.camera, fs.frame,
                                       fs.sequence, fs.pid, fs.name),
                      os.path.join(out, f"{split}.npz"))
    n = len(t)
    spread = 0.3 * float(t.features.std())
    x = np.concatenate([t.features + (spread * rng.standard_normal(t.features.shape)
                                      if i else 0) for i in range(scale)])
    frame = np.concatenate([t.frame + (rng.integers(-5, 6, n) if i else 0)
                            for i in range(scale)]).clip(0)
    rep = lambda a: np.concatenate([a] * scale)  # noqa: E731
    names = np.concatenate([np.char.add(t.name.astype(str), f"#{i}") for i in range(scale)])
    big = make_feature_set(lift(x), rep(t.camera), frame, rep(t.sequence), rep(t.pid),
                           names)
    save_feature_shards(big, os.path.join(out, "train"), 1024)
    return n * scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default=os.path.join(REPO, "..", "shared", "data", "market"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--dim", type=int, default=512)
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
    if args.scale > 1:
        print(f"== train split at 1x and {args.scale}x, {args.dim}-d, 1,024-row shards, "
              f"Beam path (multi_processing, {args.workers} workers), --no-ranking")
        worker = {}
        for scale in (1, args.scale):
            big = os.path.join(work, f"market_noise{args.noise}_x{scale}_d{args.dim}")
            n = scaled_shards(feat, big, scale, args.dim)
            r = run_fuse(big, os.path.join(work, f"out_beam_x{scale}"),
                         ["--no-ranking"] + beam, train=os.path.join(big, "train"))
            worker[scale], images = r["worker_gb"], n
            f = r["metrics"]["fusion"]
            print(f"{scale:3d}x train ({n:7d} images): wall {r['wall_s']:6.1f} s   "
                  f"launcher peak RSS {r['launcher_gb']:5.2f} GB   largest worker "
                  f"{r['worker_gb']:5.2f} GB   all processes {r['peak_sum_gb']:5.2f} GB   "
                  f"fused rank-1 {f['rank1']:.1f} mAP {f['mAP']:.1f}", flush=True)
        print(f"largest worker peak RSS, {args.scale}x / 1x: "
              f"{worker[args.scale] / worker[1]:.2f} (flat memory per worker: about 1; "
              f"the {args.scale}x feature matrix alone is "
              f"{images * args.dim * 4 / 1024 ** 3:.2f} GB in float32)")


if __name__ == "__main__":
    main()
