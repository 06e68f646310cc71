"""Tiny re-ID dataset folders of real image files, and reading Examples back."""
import glob
import os

import numpy as np
from PIL import Image


def write_image(path, seed, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    px = np.random.default_rng(seed).integers(0, 255, (16, 8, 3), dtype=np.uint8)
    Image.fromarray(px).save(path, format=fmt)
    with open(path, "rb") as f:
        return f.read()


def build_folder(root, files):
    """files: {relative path: fmt}. Returns {relative path: bytes}."""
    return {rel: write_image(os.path.join(root, rel), i, fmt)
            for i, (rel, fmt) in enumerate(sorted(files.items()))}


def read_examples(uri, split):
    import tensorflow as tf
    files = sorted(glob.glob(os.path.join(uri, f"Split-{split}", "*.gz")))
    assert files, f"no TFRecords for split {split}"
    out = []
    for rec in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        ex = tf.train.Example.FromString(rec.numpy())
        f = ex.features.feature
        assert set(f.keys()) == {"image", "image_name", "camera", "frame", "sequence",
                                 "pid", "split"}
        out.append({"image": f["image"].bytes_list.value[0],
                    "image_name": f["image_name"].bytes_list.value[0].decode(),
                    "camera": f["camera"].int64_list.value[0],
                    "frame": f["frame"].int64_list.value[0],
                    "sequence": f["sequence"].int64_list.value[0],
                    "pid": f["pid"].int64_list.value[0],
                    "split": f["split"].bytes_list.value[0].decode()})
    return sorted(out, key=lambda e: e["image_name"])


MARKET = {
    "bounding_box_train/0002_c1s1_000451_03.jpg": "JPEG",
    "bounding_box_train/0002_c2s3_000551_01.png": "PNG",
    "bounding_box_train/0007_c3s2_001000_00.jpg": "JPEG",
    "query/0004_c1s1_000100_00.jpg": "JPEG",
    "bounding_box_test/0004_c2s1_000200_00.jpg": "JPEG",
    "bounding_box_test/-1_c1s1_000300_00.jpg": "JPEG",
    "bounding_box_test/0000_c3s1_000400_00.png": "PNG",
    "bounding_box_test/1488_c1s6_023021_00.jpg.jpg": "JPEG",
}
