"""tf.data input: Examples artifacts (core/examples_layout.py) → decoded image batches.

Two readers:
- `stream_split` streams a split in file order (parallel parse + decode, prefetch) for
  embedding; nothing is held in memory.
- `read_split` loads one split's metadata and encoded image bytes into memory so that
  training can draw images by index (P×K identity batches, RankNet triples). The bytes
  stay encoded: Market-1501's 12,936 train JPEGs are ~50 MB.
Decoding and augmentation (random flip, pad-and-crop, random erasing) run inside tf.data
with AUTOTUNE parallelism; the same `decode_image` is used by the export signatures.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from core import examples_layout
from core.errors import InputError, op_error_text
from trainer import runtime  # noqa: F401
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
INT_FIELDS = ("camera", "frame", "sequence", "pid")
REQUIRED_FIELDS = {"image": "bytes_list", "image_name": "bytes_list",
                   **{f: "int64_list" for f in INT_FIELDS}}


class ExamplesError(InputError):
    """An Examples artifact that cannot be read as re-ID image examples."""


def has_split(examples_uri: str, split: str) -> bool:
    """Whether the Examples artifact holds files of `split`."""
    return bool(tf.io.gfile.glob(examples_layout.split_files_pattern(examples_uri, split)))


def split_files(examples_uri: str, split: str) -> List[str]:
    """The GZIP TFRecord files of one split of an Examples artifact."""
    pattern = examples_layout.split_files_pattern(examples_uri, split)
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        have = sorted(os.path.basename(p.rstrip("/")) for p in
                      tf.io.gfile.glob(examples_layout.split_dirs_pattern(examples_uri)))
        raise ExamplesError(f"examples {examples_uri}: no files match {pattern} "
                            f"(splits present: {have or 'none'})")
    return files


def expand_patterns(patterns: Union[str, Sequence[str]], what: str = "examples") -> List[str]:
    """Expand TFX file patterns (fn_args.train_files) to a sorted file list."""
    if isinstance(patterns, str):
        patterns = [patterns]
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise ExamplesError(f"{what}: no files match {list(patterns)}")
    return files


def _record_problem(raw: bytes, required: Dict[str, str]) -> Optional[str]:
    """Why one serialized record is not a re-ID image example (None when it is)."""
    feats = tf.train.Example.FromString(raw).features.feature
    for name, kind in required.items():
        if name not in feats:
            return (f"feature '{name}' is missing (present: {sorted(feats)}); expected the "
                    "reid_examples schema")
        if feats[name].WhichOneof("kind") != kind:
            return f"feature '{name}' is {feats[name].WhichOneof('kind')}, expected {kind}"
    return None


def _read_problem(path: str, error: tf.errors.OpError) -> str:
    return (f"examples file {path}: unreadable ({op_error_text(error)}); "
            "a truncated or corrupt GZIP TFRecord file")


def check_fields(files: Sequence[str], required: Optional[Dict[str, str]] = None) -> None:
    """Read each file's first record; raise ExamplesError naming the file on a bad one."""
    required = REQUIRED_FIELDS if required is None else required
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path, "GZIP").take(1)), None)
        except tf.errors.OpError as e:
            raise ExamplesError(_read_problem(path, e)) from None
        if first is None:
            continue  # an empty shard is legal
        problem = _record_problem(first.numpy(), required)
        if problem:
            raise ExamplesError(f"examples file {path}: {problem}")


def locate_bad_record(files: Sequence[str], error: tf.errors.OpError,
                      required: Optional[Dict[str, str]] = None) -> ExamplesError:
    """After `error` while reading `files`: the ExamplesError naming the file and record
    that caused it (every record is read and checked, so this runs on failure only)."""
    required = REQUIRED_FIELDS if required is None else required
    for path in files:
        good = 0
        try:
            for raw in tf.data.TFRecordDataset(path, "GZIP").as_numpy_iterator():
                problem = _record_problem(raw, required)
                if problem:
                    return ExamplesError(f"examples file {path}: record {good}: {problem}")
                good += 1
        except tf.errors.OpError as e:
            return ExamplesError(f"{_read_problem(path, e)} ({good} records read)")
    return ExamplesError(f"examples files {', '.join(files)}: {op_error_text(error)}")


def _feature_spec(with_image: bool) -> Dict[str, tf.io.FixedLenFeature]:
    spec = {"image_name": tf.io.FixedLenFeature([], tf.string)}
    spec.update({f: tf.io.FixedLenFeature([], tf.int64) for f in INT_FIELDS})
    if with_image:
        spec["image"] = tf.io.FixedLenFeature([], tf.string)
    return spec


@dataclass
class SplitTable:
    """One split in memory: metadata arrays [N] and, optionally, encoded images [N]."""
    name: np.ndarray  # str
    pid: np.ndarray
    camera: np.ndarray
    frame: np.ndarray
    sequence: np.ndarray
    images: Optional[np.ndarray] = None  # object array of bytes

    def __len__(self) -> int:
        return len(self.name)

    def index_of(self) -> Dict[str, int]:
        return {n: i for i, n in enumerate(self.name)}


def read_split(files: Sequence[str], images: bool = True, batch: int = 1024) -> SplitTable:
    """Load one split (metadata, and encoded image bytes when `images`) into memory."""
    check_fields(files, REQUIRED_FIELDS if images else
                 {k: v for k, v in REQUIRED_FIELDS.items() if k != "image"})
    spec = _feature_spec(images)
    ds = (tf.data.TFRecordDataset(list(files), "GZIP", num_parallel_reads=AUTOTUNE)
          .batch(batch).map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=AUTOTUNE)
          .prefetch(AUTOTUNE))
    cols: Dict[str, List[np.ndarray]] = {k: [] for k in spec}
    try:
        for parsed in ds:
            for k, v in parsed.items():
                cols[k].append(v.numpy())
    except tf.errors.OpError as e:
        raise locate_bad_record(files, e, {k: REQUIRED_FIELDS[k] for k in spec}) from None
    out = {k: (np.concatenate(v) if v else np.zeros([0], np.int64 if k in INT_FIELDS else object))
           for k, v in cols.items()}
    names = np.array([n.decode() for n in out["image_name"]], dtype=str)
    unique, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise ExamplesError(f"examples {os.path.dirname(files[0])}: {(counts > 1).sum()} "
                            f"image name(s) appear more than once, e.g. "
                            f"{unique[counts > 1][0]!r}; each image must be one example")
    # by name: the order of records in an ingested artifact is the runner's, not ours
    order = np.argsort(names, kind="stable")
    return SplitTable(name=names[order],
                      pid=out["pid"].astype(np.int64)[order],
                      camera=out["camera"].astype(np.int64)[order],
                      frame=out["frame"].astype(np.int64)[order],
                      sequence=out["sequence"].astype(np.int64)[order],
                      images=out["image"][order] if "image" in out else None)


def decode_image(encoded: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """Encoded JPEG/PNG/BMP bytes → float32 [height, width, 3] pixels in [0, 255]."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), [height, width], method="bilinear")
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape([height, width, 3])
    return image


@dataclass
class Augmentation:
    """Training augmentation: random horizontal flip, pad-and-crop, random erasing."""
    flip: bool = True
    crop_padding: float = 0.08  # pad by this fraction of each side, then crop back
    erasing: float = 0.5  # probability of erasing one random rectangle
    erasing_area: Tuple[float, float] = (0.02, 0.3)
    erasing_aspect: Tuple[float, float] = (0.3, 3.3)

    @classmethod
    def off(cls) -> "Augmentation":
        return cls(flip=False, crop_padding=0.0, erasing=0.0)


def augment(image: tf.Tensor, aug: Augmentation, seed: Optional[tf.Tensor] = None
            ) -> tf.Tensor:
    """Apply `aug` to one float32 [H, W, 3] image.

    Every random draw is a stateless op keyed by `seed` (int64 [2]), so the result
    depends on the seed only, not on thread scheduling; without a seed one is drawn.
    """
    if seed is None:
        seed = tf.random.uniform([2], 0, 2 ** 31 - 1, dtype=tf.int64)
    flip_seed, crop_seed, erase_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=3))
    h, w = int(image.shape[0]), int(image.shape[1])
    if aug.flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    if aug.crop_padding > 0:
        ph, pw = max(1, int(round(h * aug.crop_padding))), max(1, int(round(w * aug.crop_padding)))
        padded = tf.pad(image, [[ph, ph], [pw, pw], [0, 0]], mode="REFLECT")
        image = tf.image.stateless_random_crop(padded, [h, w, 3], crop_seed)
    if aug.erasing > 0:
        image = random_erasing(image, aug, erase_seed)
    return image


def random_erasing(image: tf.Tensor, aug: Augmentation, seed: tf.Tensor) -> tf.Tensor:
    """Zhong et al. 2020: with probability p, fill a random rectangle with noise."""
    h, w = int(image.shape[0]), int(image.shape[1])
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, num=7))

    def uniform(k, shape, lo, hi, dtype=tf.float32):
        return tf.random.stateless_uniform(shape, seeds[k], lo, hi, dtype=dtype)
    area = uniform(0, [], *aug.erasing_area) * h * w
    log_r = uniform(1, [], np.log(aug.erasing_aspect[0]), np.log(aug.erasing_aspect[1]))
    ratio = tf.exp(log_r)
    eh = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area * ratio)), tf.int32), 1, h)
    ew = tf.clip_by_value(tf.cast(tf.round(tf.sqrt(area / ratio)), tf.int32), 1, w)
    y0 = uniform(2, [], 0, h - eh + 1, tf.int32)
    x0 = uniform(3, [], 0, w - ew + 1, tf.int32)
    rows = tf.range(h)[:, None]
    cols = tf.range(w)[None, :]
    inside = (rows >= y0) & (rows < y0 + eh) & (cols >= x0) & (cols < x0 + ew)
    inside = inside[:, :, None] & (uniform(4, [], 0.0, 1.0) < aug.erasing)
    noise = uniform(5, tf.shape(image), 0.0, 255.0)
    return tf.where(inside, noise, image)


def image_loader(images: np.ndarray, height: int, width: int,
                 aug: Optional[Augmentation] = None, seed: int = 0):
    """A tf function (index, draw) → decoded (augmented) image over an in-memory bytes
    array; the augmentation of draw number `draw` is keyed by (seed, draw)."""
    table = tf.constant(images, dtype=tf.string)

    def load(index: tf.Tensor, draw: tf.Tensor) -> tf.Tensor:
        image = decode_image(tf.gather(table, index), height, width)
        if aug is None:
            return image
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(draw, tf.int64)])
        return augment(image, aug, key)
    return load


def pk_batches(labels: np.ndarray, p: int, k: int, steps: int,
               rng: np.random.Generator) -> np.ndarray:
    """Indices [steps, p*k]: p identities per batch, k images each (with replacement
    only for identities that have fewer than k images)."""
    by_label: Dict[int, np.ndarray] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(int(lab), []).append(i)  # type: ignore[arg-type]
    groups = [np.asarray(v) for v in by_label.values()]
    if len(groups) < p:
        raise ValueError(f"P×K sampling needs at least P={p} identities, have {len(groups)}")
    out = np.empty([steps, p * k], np.int64)
    order: List[int] = []
    for s in range(steps):
        if len(order) < p:  # walk identities epoch by epoch
            order.extend(rng.permutation(len(groups)).tolist())
        chosen, order = order[:p], order[p:]
        out[s] = np.concatenate([rng.choice(groups[g], k, replace=len(groups[g]) < k)
                                 for g in chosen])
    return out


def indexed_dataset(indices: np.ndarray, load, extra: Tuple[np.ndarray, ...] = (),
                    batch: Optional[int] = None) -> tf.data.Dataset:
    """Image indices [N] or [N, m] (+ aligned extra arrays) → (images, *extra) batches.

    Each element is decoded in parallel (AUTOTUNE); [N, m] rows give [m, H, W, 3].
    Image c of element n is draw n·max(m, 1) + c of `load`, and elements keep their
    order, so a seeded run yields the same batches every time.
    """
    indices = np.asarray(indices, np.int64)
    ds = tf.data.Dataset.from_tensor_slices((indices,) + tuple(extra)).enumerate()
    m = indices.shape[1] if indices.ndim == 2 else 0

    def fetch(n, element):
        idx, rest = element[0], element[1:]
        if m:
            images = tf.stack([load(idx[c], n * m + c) for c in range(m)])
        else:
            images = load(idx, n)
        return (images,) + tuple(rest)
    ds = ds.map(fetch, num_parallel_calls=AUTOTUNE, deterministic=True)
    if batch:
        ds = ds.batch(batch, drop_remainder=True)
    return ds.prefetch(AUTOTUNE)


def stream_split(files: Sequence[str], height: int, width: int,
                 batch: int = 128) -> tf.data.Dataset:
    """Stream a split in file order: dicts with 'image' [B,H,W,3] and the metadata."""
    check_fields(files)
    spec = _feature_spec(True)

    def parse(serialized):
        ex = tf.io.parse_single_example(serialized, spec)
        ex["image"] = decode_image(ex["image"], height, width)
        return ex
    return (tf.data.TFRecordDataset(list(files), "GZIP")
            .map(parse, num_parallel_calls=AUTOTUNE)
            .batch(batch).prefetch(AUTOTUNE))
