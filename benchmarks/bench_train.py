"""CPU training throughput of the trainer (images/s), through the real input pipeline.

    python benchmarks/bench_train.py [--examples DIR] [--steps 20] [--backbone small]

Measures, after a warm-up epoch (tracing excluded):
  input    tf.data decode + augmentation alone (images/s)
  pretrain identity-classification train step, P×K = 16×4 batches (images/s)
  ranknet  RankNet train step, 16 triples = 48 images per step (images/s)
and prints the input/pretrain ratio (how much headroom the input pipeline has).
Images come from DIR/Split-train (an Examples dataset) or are generated JPEGs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainer import data, models, pretrain, ranknet, runtime  # noqa: E402
from trainer.config import PretrainConfig  # noqa: E402


def generated_images(n: int, height: int, width: int, ids: int, seed: int = 0):
    """n JPEG-encoded two-colour 'pedestrians' of `ids` identities."""
    rng = np.random.default_rng(seed)
    pid = rng.integers(0, ids, n)
    colours = rng.uniform(0, 255, [ids, 2, 3])
    out = []
    for p in pid:
        img = np.empty([height, width, 3], np.float32)
        img[: height // 2], img[height // 2:] = colours[p, 0], colours[p, 1]
        img += rng.normal(0, 25, img.shape)
        out.append(tf.io.encode_jpeg(np.clip(img, 0, 255).astype(np.uint8)).numpy())
    return np.array(out, dtype=object), pid + 1


def load_images(args):
    if args.examples:
        table = data.read_split(data.split_files(args.examples, "train"))
        keep = table.pid > 0
        return table.images[keep], table.pid[keep], f"{args.examples} Split-train"
    imgs, pid = generated_images(args.images, args.height or 128, args.width or 64, 100)
    return imgs, pid, f"{len(imgs)} generated JPEGs"


class EpochTimer(tf.keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.last = time.time() - self.t0


def timed_fit(model, ds, warmup: int, steps: int) -> float:
    """Seconds of the measured epoch (after a warm-up epoch of `warmup` steps)."""
    timer = EpochTimer()
    it = iter(ds.repeat())
    model.fit(it, epochs=1, steps_per_epoch=warmup, verbose=0)
    model.fit(it, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    return timer.last


def input_rate(ds, batches: int, per_batch: int) -> float:
    it = iter(ds.repeat())
    next(it)
    t0 = time.time()
    for _ in range(batches):
        next(it)
    return batches * per_batch / (time.time() - t0)


def measure(images, pid, spec: models.BackboneSpec, batch_ids: int, per_id: int,
            steps: int, warmup: int, mixed: bool, xla: bool, ranknet_too: bool = True):
    """images/s of input, pretrain and (optionally) RankNet steps."""
    acc = runtime.accelerators("on" if mixed else "off", xla, "auto")
    labels = np.searchsorted(np.unique(pid), pid)
    cfg = PretrainConfig(backbone=spec.name, height=spec.height, width=spec.width,
                         base_width=spec.base_width, p=batch_ids, k=per_id,
                         steps=warmup + steps)
    rng = np.random.default_rng(0)
    rows = data.pk_batches(labels, batch_ids, per_id, warmup + steps + 2, rng).reshape(-1)
    load = data.image_loader(images, spec.height, spec.width, data.Augmentation())
    batch = batch_ids * per_id
    ds = data.indexed_dataset(rows, load, (labels[rows],), batch=batch)
    out = {"input": input_rate(ds, max(steps, 5), batch)}
    with acc.strategy.scope():
        backbone = models.build_backbone(spec)
        model = pretrain.IdentityModel(backbone, int(labels.max()) + 1, cfg)
        model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), jit_compile=acc.xla)
    out["pretrain"] = steps * batch / timed_fit(model, ds, warmup, steps)
    if ranknet_too:
        n = (warmup + steps + 2) * 16
        trip = rng.integers(0, len(images), [n, 3])
        target = rng.uniform(0, 1, n).astype(np.float32)
        tds = data.indexed_dataset(trip, load, (target,), batch=16)
        with acc.strategy.scope():
            head = models.build_head_model(int(backbone.output_shape[-1]))
            models.freeze_front(backbone, 2 / 3)
            rmodel = ranknet.RankNetModel(backbone, head)
            rmodel.compile(optimizer=tf.keras.optimizers.Adam(1e-4), jit_compile=acc.xla)
        out["ranknet"] = steps * 48 / timed_fit(rmodel, tds, warmup, steps)
    runtime.reset_precision()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", help="Examples dataset (its Split-train is used)")
    p.add_argument("--images", type=int, default=512, help="generated images (no --examples)")
    p.add_argument("--backbone", default="small", choices=models.BACKBONES)
    p.add_argument("--height", type=int, default=0)
    p.add_argument("--width", type=int, default=0)
    p.add_argument("--steps", type=int, default=20, help="measured steps (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-ids", type=int, default=16)
    p.add_argument("--per-id", type=int, default=4)
    args = p.parse_args(argv)
    images, pid, source = load_images(args)
    spec = models.BackboneSpec(args.backbone, args.height, args.width)
    print(f"bench_train: {spec.name} {spec.height}x{spec.width}, batch "
          f"{args.batch_ids}x{args.per_id}, {args.steps} steps, {source}, "
          f"{os.cpu_count()} CPUs, TF {tf.__version__}")
    r = measure(images, pid, spec, args.batch_ids, args.per_id, args.steps, args.warmup,
                mixed=False, xla=False)
    print(f"input pipeline (decode+augment): {r['input']:8.1f} images/s")
    print(f"pretrain train step:             {r['pretrain']:8.1f} images/s")
    print(f"ranknet train step:              {r['ranknet']:8.1f} images/s")
    print(f"input / pretrain ratio:          {r['input'] / r['pretrain']:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
