#!/usr/bin/env python3
"""`tfusion ingest` wall time: DirectRunner in memory (1 worker, the local default)
beside multi_processing with 2 worker processes, on a SynthReID target domain.

Renders the preset (default demo) into --out unless --reuse, then runs
`tfusion ingest OUT/target` once per mode, each in a fresh process (start-up and
imports included, as a user pays them), and checks both wrote the same examples.

usage: python benchmarks/bench_ingest.py [--preset demo] [--out /tmp/bench_ingest]
           [--reuse] [--workers 2]
"""
import argparse
import glob
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODES = {
    "in_memory, 1 worker (default)": [],
    "multi_processing, 2 workers": ["--", "--direct_running_mode=multi_processing",
                                    "--direct_num_workers=2"],
}


def ingest(dataset: str, out: str, extra) -> float:
    """Wall seconds of `tfusion ingest DATASET --output OUT EXTRA` in a child process."""
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "ingest", dataset,
                           "--output", out, *extra], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"tfusion ingest {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def examples(out: str):
    """(split, image_name) -> (camera, frame, image bytes) of every written example."""
    import tensorflow as tf
    found = {}
    for path in glob.glob(os.path.join(out, "Split-*", "*.gz")):
        split = os.path.basename(os.path.dirname(path))
        for rec in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            f = tf.train.Example.FromString(rec.numpy()).features.feature
            found[split, f["image_name"].bytes_list.value[0]] = (
                f["camera"].int64_list.value[0], f["frame"].int64_list.value[0],
                f["image"].bytes_list.value[0])
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/bench_ingest")
    ap.add_argument("--reuse", action="store_true",
                    help="use the dataset already in --out instead of rendering it")
    ap.add_argument("--workers", type=int, default=2, help="rendering processes")
    a = ap.parse_args()
    dataset = os.path.join(a.out, "data", "target")
    if not a.reuse:
        from synth.generate import generate
        generate(a.preset, os.path.join(a.out, "data"), seed=a.seed, workers=a.workers,
                 force=True, preview=False)
    images = sum(len(glob.glob(os.path.join(dataset, d, "*")))
                 for d in ("bounding_box_train", "query", "bounding_box_test"))
    print(f"SynthReID {a.preset} target: {images} images ({dataset})")
    times, written = {}, {}
    for label, extra in MODES.items():
        out = os.path.join(a.out, "examples_" + label.split(",")[0])
        times[label] = ingest(dataset, out, extra)
        written[label] = examples(out)
    reference, other = list(MODES)
    same = written[other] == written[reference]
    for label in MODES:
        print(f"  {label:32s} {times[label]:6.1f} s wall   "
              f"{len(written[label])} examples")
    print(f"  multi_processing / in_memory: {times[other] / times[reference]:.2f}x wall; "
          f"same examples: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
