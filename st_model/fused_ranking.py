"""The fused ranking of the train split: the RankNet teacher (paper §3.4).

For every train image, its top-N fused neighbours among the other train images with
their fused scores (descending), written as GZIP TFRecord files
`fused_ranking-SSSSS-of-NNNNN.tfrecord.gz` of tf.Examples (schema:
schemas/fused_ranking.pbtxt):
  image_name (bytes), neighbour_names (bytes list, best first),
  neighbour_scores (float list, same length).
Pairs the fusion scores -inf (out of reach) never enter a list.
TensorFlow is imported only inside the functions that build or read tf.Examples.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, Iterator, List, Tuple

import numpy as np

from st_model import neighbours
from st_model.scoring import BlockScorer

PREFIX = "fused_ranking"
SUFFIX = ".tfrecord.gz"


def fused_top_n_rows(scorer: BlockScorer, rows: np.ndarray, n: int,
                     col_block: int = neighbours.DEFAULT_COL_BLOCK
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Top-n fused neighbours (train × train, self excluded) of the given rows."""
    def score(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        s = np.asarray(scorer(r, c), np.float64)
        s[r[:, None] == c[None, :]] = -np.inf
        return s
    return neighbours.top_k_rows(score, rows, len(scorer.g), n, col_block)


def ranking_records(names: np.ndarray, rows: np.ndarray, idx: np.ndarray,
                    scores: np.ndarray) -> Iterator[Tuple[str, List[str], List[float]]]:
    """(image name, neighbour names, neighbour scores) of each row; -1 entries dropped."""
    for r, ii, ss in zip(rows, idx, scores):
        ok = ii >= 0
        yield str(names[r]), [str(names[j]) for j in ii[ok]], [float(s) for s in ss[ok]]


def serialize_record(record: Tuple[str, List[str], List[float]]) -> bytes:
    """One ranking record as a serialized tf.Example."""
    import tensorflow as tf  # lazily: only the writer needs it
    name, nb, sc = record
    feat = {
        "image_name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()])),
        "neighbour_names": tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[n.encode() for n in nb])),
        "neighbour_scores": tf.train.Feature(float_list=tf.train.FloatList(value=sc)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feat)).SerializeToString()


def shard_path(out_dir: str, shard: int, shards: int) -> str:
    return os.path.join(out_dir, f"{PREFIX}-{shard:05d}-of-{shards:05d}{SUFFIX}")


def write_ranking(out_dir: str, records: Iterable[Tuple[str, List[str], List[float]]],
                  shards: int = 1) -> List[str]:
    """Write records round-robin into `shards` GZIP TFRecord files; returns the paths."""
    import tensorflow as tf  # lazily: only the writer needs it
    os.makedirs(out_dir, exist_ok=True)
    paths = [shard_path(out_dir, s, shards) for s in range(shards)]
    opts = tf.io.TFRecordOptions(compression_type="GZIP")
    writers = [tf.io.TFRecordWriter(p, opts) for p in paths]
    try:
        for i, rec in enumerate(records):
            writers[i % shards].write(serialize_record(rec))
    finally:
        for w in writers:
            w.close()
    return paths


def read_ranking(out_dir: str) -> Dict[str, Tuple[List[str], List[float]]]:
    """All records under out_dir: image name -> (neighbour names, scores)."""
    import tensorflow as tf  # lazily
    paths = sorted(glob.glob(os.path.join(out_dir, f"{PREFIX}-*{SUFFIX}")))
    if not paths:
        raise FileNotFoundError(f"{out_dir}: no {PREFIX}-*{SUFFIX} files")
    out = {}
    for raw in tf.data.TFRecordDataset(paths, compression_type="GZIP"):
        ex = tf.train.Example.FromString(raw.numpy())
        f = ex.features.feature
        name = f["image_name"].bytes_list.value[0].decode()
        out[name] = ([v.decode() for v in f["neighbour_names"].bytes_list.value],
                     list(f["neighbour_scores"].float_list.value))
    return out
