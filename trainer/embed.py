"""Embed images with an exported model into the feature interchange format (.npz).

.npz arrays: features float32 [N, D] (L2-normalised), camera, frame, sequence, pid
int64 [N], name str [N]; rows sorted by name. Sources: a split of an Examples artifact,
or an image folder in a known layout (core.datasets.read_dataset_folder).
"""
from __future__ import annotations

import os
import time
from typing import Dict, Iterable, Optional, Sequence, Union

import numpy as np

from core.errors import InputError, op_error_text
from trainer import data, export, runtime
import tensorflow as tf

SPLITS = ("train", "query", "gallery")
Arrays = Dict[str, np.ndarray]


def _as_embedder(model: Union[str, export.Embedder]) -> export.Embedder:
    return model if isinstance(model, export.Embedder) else export.Embedder(model)


def _run(embedder: export.Embedder, batches: Iterable[dict], what: str) -> Arrays:
    cols: Dict[str, list] = {k: [] for k in ("features", "camera", "frame", "sequence",
                                             "pid", "name")}
    start, n, last = time.time(), 0, 0.0
    for b in batches:
        cols["features"].append(embedder.embed_images(b["image"]))
        for k in ("camera", "frame", "sequence", "pid"):
            cols[k].append(np.asarray(b[k], np.int64))
        cols["name"].append(np.asarray(b["image_name"]))
        n += len(cols["pid"][-1])
        if time.time() - last > 10:
            last = time.time()
            runtime.log(f"embed {what}: {n} images ({n / max(last - start, 1e-9):.0f}/s)")
    if n == 0:
        raise InputError(f"{what}: no images to embed (empty split)")
    out = {k: np.concatenate(v) for k, v in cols.items()}
    out["features"] = out["features"].astype(np.float32)
    out["name"] = np.array([x.decode() if isinstance(x, bytes) else str(x) for x in out["name"]],
                           dtype=str)
    # rows by image name: the record order of an ingested artifact is the runner's
    order = np.argsort(out["name"], kind="stable")
    out = {k: v[order] for k, v in out.items()}
    runtime.log(f"embed {what}: {n} images in {time.time() - start:.1f}s")
    return out


def embed_split(model: Union[str, export.Embedder], examples_uri: str, split: str,
                batch: int = 128) -> Arrays:
    """Embed one split of an Examples artifact (streamed, parallel decode)."""
    embedder = _as_embedder(model)
    files = data.split_files(examples_uri, split)
    ds = data.stream_split(files, embedder.height, embedder.width, batch)
    try:
        return _run(embedder, ds.as_numpy_iterator(), f"{examples_uri} {split}")
    except tf.errors.OpError as e:
        raise data.locate_bad_record(files, e) from None


def embed_folder(model: Union[str, export.Embedder], root: str,
                 splits: Sequence[str] = SPLITS, batch: int = 128) -> Dict[str, Arrays]:
    """Embed the splits of an image folder (Market / Duke / GRID layouts)."""
    from core.datasets import read_dataset_folder
    embedder = _as_embedder(model)
    listing = read_dataset_folder(root)
    if listing.skipped:
        runtime.log(f"embed {root}: skipped {len(listing.skipped)} non-image files")
    out: Dict[str, Arrays] = {}
    for split in splits:
        records = listing.splits.get(split) or []
        if not records:
            continue
        paths = [r.path for r in records]
        meta = {"camera": [r.point.camera for r in records],
                "frame": [r.point.frame for r in records],
                "sequence": [r.point.sequence for r in records],
                "pid": [r.point.pid for r in records],
                "image_name": [r.name for r in records]}
        h, w = embedder.height, embedder.width
        ds = tf.data.Dataset.from_tensor_slices((paths, meta)).map(
            lambda p, m: {**m, "image": data.decode_image(tf.io.read_file(p), h, w)},
            num_parallel_calls=data.AUTOTUNE).batch(batch).prefetch(data.AUTOTUNE)
        try:
            out[split] = _run(embedder, ds.as_numpy_iterator(), f"{root} {split}")
        except tf.errors.OpError as e:
            raise _unreadable_image(paths, e) from None
    if not out:
        raise InputError(f"{root}: none of the splits {list(splits)} has images to embed")
    return out


def embed_serialized(embedder: export.Embedder, serialized: Sequence[bytes]) -> Arrays:
    """Embed serialized re-ID tf.Examples (reid_examples schema) with their metadata."""
    spec = data._feature_spec(with_image=False)
    parsed = tf.io.parse_example(tf.constant(list(serialized), tf.string), spec)
    out = {k: parsed[k].numpy().astype(np.int64) for k in data.INT_FIELDS}
    out["name"] = np.array([n.decode() for n in parsed["image_name"].numpy()], dtype=str)
    out["features"] = embedder.embed_examples(list(serialized)).astype(np.float32)
    return out


def concat_sorted(parts: Sequence[Arrays], what: str) -> Arrays:
    """Concatenate per-batch arrays (any order) into one split ordered by image name."""
    parts = [p for p in parts if len(p["name"])]
    if not parts:
        raise ValueError(f"embed {what}: no images")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.argsort(out["name"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def _unreadable_image(paths: Sequence[str], error: tf.errors.OpError) -> InputError:
    """After `error` while embedding `paths`: the InputError naming the image that does
    not decode (each is decoded again, so this runs on failure only)."""
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            return InputError(f"{path}: not a readable image ({op_error_text(e)})")
    return InputError(f"{os.path.dirname(paths[0])}: {op_error_text(error)}")


def write_features(path: str, arrays: Arrays) -> str:
    """Write one .npz in the interchange format (through Beam's FileSystems: a local
    path, `gs://…` or any registered scheme)."""
    from core.files import make_folder, write_with
    make_folder(os.path.dirname(path) or ".")
    return write_with(path, lambda buffer: np.savez(buffer, **arrays))


def write_split(output_dir: str, split: str, arrays: Arrays,
                shard_rows: Optional[int] = None) -> str:
    """OUTPUT/<split>.npz, or with `shard_rows` the folder OUTPUT/<split>/ of row
    shards of that many rows (core.features.save_feature_shards)."""
    from core.features import make_feature_set, save_feature_shards
    from core.files import join_path
    if not shard_rows:
        return write_features(join_path(output_dir, f"{split}.npz"), arrays)
    folder = join_path(output_dir, split)
    fs = make_feature_set(arrays["features"], arrays["camera"], arrays["frame"],
                          arrays.get("sequence"), arrays.get("pid"), arrays.get("name"),
                          source=folder)
    save_feature_shards(fs, folder, shard_rows)
    return folder


def embed_examples_to_dir(model: Union[str, export.Embedder], examples_uri: str,
                          output_dir: str, splits: Optional[Sequence[str]] = None,
                          batch: int = 128, shard_rows: Optional[int] = None
                          ) -> Dict[str, str]:
    """Embed the splits present (default train/query/gallery) → OUTPUT/<split>.npz
    (or row-shard folders OUTPUT/<split>/, write_split)."""
    embedder = _as_embedder(model)
    if splits is None:
        splits = [s for s in SPLITS if data.has_split(examples_uri, s)]
        if not splits:
            data.split_files(examples_uri, "train")  # raises, naming the artifact
    arrays = {s: embed_split(embedder, examples_uri, s, batch) for s in splits}
    # written only once every split embedded: a bad split leaves no partial output
    return {s: write_split(output_dir, s, a, shard_rows) for s, a in arrays.items()}


def evaluate(model: Union[str, export.Embedder], examples_uri: str) -> Optional[dict]:
    """Vision-only rank-1/5/10 and mAP (st_model.metrics, Market protocol) on the query
    and gallery splits of `examples_uri`; None when those splits or the metrics are absent."""
    try:
        from st_model.metrics import evaluate_features
    except ImportError:
        return None
    if not (data.has_split(examples_uri, "query") and data.has_split(examples_uri, "gallery")):
        return None
    embedder = _as_embedder(model)
    q = embed_split(embedder, examples_uri, "query")
    g = embed_split(embedder, examples_uri, "gallery")
    return evaluate_features(q["features"], g["features"], q["pid"], q["camera"],
                             g["pid"], g["camera"]).as_dict()
