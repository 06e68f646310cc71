"""ResNet-50 training throughput, float32 vs mixed precision (images/s).

    python benchmarks/bench_train_gpu.py --examples DIR [--steps 300] [--batch-ids 16]
    python benchmarks/bench_train_gpu.py --steps 2 --batch-ids 2 --height 64 --width 32
                                         # tiny CPU smoke run

Trains the pretraining model (identity classification, P×K batches, real tf.data
decode + augmentation) with keras.applications.ResNet50 (weights=None) at 256x128 on
SynthReID images (DIR/Split-train of an Examples dataset; generated JPEGs without
--examples), first in float32, then with mixed precision (float16 compute, float32
variables); optionally with XLA. Prints images/s and the mixed/float32 ratio.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_train  # noqa: E402  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

import tensorflow as tf  # noqa: E402

from trainer import models  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", help="Examples dataset (its Split-train is used)")
    p.add_argument("--images", type=int, default=1024, help="generated images (no --examples)")
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--steps", type=int, default=300, help="measured steps (default 300)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch-ids", type=int, default=16)
    p.add_argument("--per-id", type=int, default=4)
    p.add_argument("--xla", action="store_true", help="also measure mixed precision + XLA")
    args = p.parse_args(argv)
    images, pid, source = bench_train.load_images(args)
    spec = models.BackboneSpec("resnet50", args.height, args.width)
    gpus = tf.config.list_physical_devices("GPU")
    print(f"bench_train_gpu: ResNet-50 {spec.height}x{spec.width}, batch "
          f"{args.batch_ids}x{args.per_id}, {args.steps} steps, {source}, "
          f"GPUs: {[g.name for g in gpus] or 'none (CPU)'}, TF {tf.__version__}")
    rows = [("float32", False, False), ("mixed_float16", True, False)]
    if args.xla:
        rows.append(("mixed_float16+XLA", True, True))
    rates = {}
    for name, mixed, xla in rows:
        r = bench_train.measure(images, pid, spec, args.batch_ids, args.per_id, args.steps,
                                args.warmup, mixed=mixed, xla=xla, ranknet_too=False)
        rates[name] = r["pretrain"]
        print(f"{name:18s} {r['pretrain']:9.1f} images/s")
    print(f"mixed / float32 ratio: {rates['mixed_float16'] / rates['float32']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
