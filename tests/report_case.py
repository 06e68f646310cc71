"""A small target domain for the run report: feature sets with a transit-time
structure, an ST model estimated on them, and a TFX-style Examples folder holding
one small PNG per image (colour by identity)."""
import io
import os

import numpy as np
from PIL import Image

from core.features import make_feature_set
from st_model.config import STConfig
from st_model.estimate import estimate_st_model
from st_model.scoring import STTables

CAMERAS = (1, 2, 3)
TRANSIT = 120          # frames from one camera to the next


def _sightings(pids, rng, start, gap=900):
    """Each person walks camera 1 -> 2 -> 3, TRANSIT frames (+ noise) apart."""
    rows = []
    for k, p in enumerate(pids):
        t = start + gap * k + int(rng.integers(0, 50))
        for c in CAMERAS:
            rows.append((p, c, t + TRANSIT * (c - 1) + int(rng.integers(-10, 10))))
    return rows


def _features(rows, protos, rng, noise):
    x = []
    for p, c, _ in rows:
        if p not in protos:
            protos[p] = rng.standard_normal(16)
        x.append(protos[p] + noise * rng.standard_normal(16))
    return np.array(x, np.float32)


def _feature_set(rows, x, split):
    pid, cam, frame = (np.array(col, np.int64) for col in zip(*rows))
    names = [f"{p:04d}_c{c}s1_{f:06d}_00.png" for p, c, f in rows]
    return make_feature_set(x, cam, frame, None, pid, np.array(names), source=f"{split}.npz")


def build_case(noise=1.2, seed=0):
    """{train, query, gallery}: FeatureSets; query = camera-1 sightings of ids 1..12,
    gallery = their camera-2/3 sightings, a same-camera copy of each query, junk
    and distractors."""
    rng = np.random.default_rng(seed)
    protos = {}
    train_rows = _sightings(range(101, 161), rng, 0)
    test_rows = _sightings(range(1, 13), rng, 100000)
    query_rows = [r for r in test_rows if r[1] == 1]
    gallery_rows = [r for r in test_rows if r[1] != 1]
    gallery_rows += [(p, 1, f + 40) for p, _, f in query_rows]          # same camera
    gallery_rows += [(-1, int(c), 100000 + 300 * i) for i, c in enumerate((1, 2, 3) * 2)]
    gallery_rows += [(0, int(c), 100500 + 700 * i) for i, c in enumerate((2, 3) * 4)]
    out = {}
    for split, rows in (("train", train_rows), ("query", query_rows),
                        ("gallery", gallery_rows)):
        x = _features(rows, protos, rng, noise)
        for i, (p, _, _) in enumerate(rows):
            if p <= 0:     # junk and distractors: an image of nobody in particular
                x[i] = rng.standard_normal(16)
        out[split] = _feature_set(rows, x, split)
    return out


def st_tables(train):
    return STTables.from_model(estimate_st_model(train, STConfig()))


def png_bytes(pid, camera):
    """A 32x16 PNG: top colour by identity, bottom by camera."""
    rng = np.random.default_rng(abs(pid) * 7 + 3)
    px = np.zeros((32, 16, 3), np.uint8)
    px[:20] = rng.integers(0, 255, 3)
    px[20:] = (60 * camera, 200 - 50 * camera, 120)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="PNG")
    return buf.getvalue()


def write_examples(uri, sets):
    """Split-<split>/data_tfrecord-00000-of-00001.gz of tf.Examples, as ReidExampleGen
    writes them."""
    import tensorflow as tf

    from pipeline.reid_examples import encode_example, example_features
    for split, fs in sets.items():
        d = os.path.join(uri, f"Split-{split}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as w:
            for i in range(len(fs)):
                record = ("", str(fs.names[i]), int(fs.pid[i]), int(fs.camera[i]),
                          int(fs.frame[i]), int(fs.sequence[i]), split)
                data = png_bytes(int(fs.pid[i]), int(fs.camera[i]))
                w.write(encode_example(example_features(record, data)))
    return uri
