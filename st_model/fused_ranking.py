"""The fused ranking of the train split: the RankNet teacher (paper §3.4).

For every train image, its top-N fused neighbours among the other train images with
their fused scores (descending), written as GZIP TFRecord files
`fused_ranking-SSSSS-of-NNNNN.tfrecord.gz` of tf.Examples (schema:
schemas/fused_ranking.pbtxt):
  image_name (bytes), neighbour_names (bytes list, best first),
  neighbour_scores (float list, same length).
Pairs the fusion scores -inf (out of reach) never enter a list. `read_fused_ranking`
is the one reader (RankNet's trainer uses it too); it checks every record against the
schema. The writer needs neither TensorFlow nor (for a local folder) Beam
(core/tfrecord.py); TensorFlow is imported only by the reader.
"""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from core import tfrecord
from core.errors import InputError
from core.features import FeatureSet
from core.files import join_path
from core.progress import counter
from st_model import neighbours, workers
from st_model.config import FusionRule
from st_model.scoring import BlockScorer, STTables

PREFIX = "fused_ranking"
# rows scored at a time: a row block's temporaries then stay in the allocator's heap
# (1024 × 4096 float64 blocks score at a third of the speed on this machine)
SCORE_ROWS = 256
SUFFIX = ".tfrecord.gz"


def fused_top_n_rows(scorer: BlockScorer, rows: np.ndarray, n: int,
                     col_block: int = neighbours.DEFAULT_COL_BLOCK,
                     cols: Optional[Tuple[int, int]] = None,
                     offsets: Tuple[int, int] = (0, 0)) -> Tuple[np.ndarray, np.ndarray]:
    """Top-n fused neighbours (train × train, self excluded) of the given rows, among
    all train images or the column block `cols` (a tile: neighbours.merge_top_k).
    The scorer's query / gallery sets hold the train rows from offsets[0] /
    offsets[1] on (the whole split, or a tile's rows as a worker reads them)."""
    r0, c0 = offsets

    def score(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        s = np.asarray(scorer(r - r0, c - c0), np.float64)
        own = neighbours.self_pairs(r, c)
        if own is not None:
            s[own] = -np.inf
        return s
    start, stop = cols or (0, len(scorer.g))
    parts = [neighbours.top_k_rows(score, rows[lo:lo + SCORE_ROWS], stop, n, col_block,
                                   col_start=start)
             for lo in range(0, rows.size, SCORE_ROWS)]
    if not parts:
        return np.zeros((0, n), np.int64), np.zeros((0, n))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def ranking_records(names: np.ndarray, rows: np.ndarray, idx: np.ndarray,
                    scores: np.ndarray) -> Iterator[Tuple[str, List[str], List[float]]]:
    """(image name, neighbour names, neighbour scores) of each row; -1 entries dropped."""
    for r, ii, ss in zip(rows, idx, scores):
        ok = ii >= 0
        yield str(names[r]), [str(names[j]) for j in ii[ok]], [float(s) for s in ss[ok]]


def name_fields(names: np.ndarray) -> List[bytes]:
    """Each name as an encoded BytesList entry (core/tfrecord.py), to join per record."""
    return [tfrecord.bytes_values([str(n).encode()]) for n in names]


def _example(name: bytes, neighbours: bytes, scores) -> bytes:
    """The ranking tf.Example of encoded BytesList entries and the scores."""
    return tfrecord.example({
        "image_name": tfrecord.bytes_feature(name),
        "neighbour_names": tfrecord.bytes_feature(neighbours),
        "neighbour_scores": tfrecord.float_feature(scores),
    })


def serialize_record(record: Tuple[str, List[str], List[float]]) -> bytes:
    """One ranking record as a serialized tf.Example (core/tfrecord.py: no TensorFlow)."""
    name, nb, sc = record
    return _example(tfrecord.bytes_values([name.encode()]),
                    tfrecord.bytes_values([n.encode() for n in nb]), sc)


def ranking_examples(fields: List[bytes], rows: np.ndarray, idx: np.ndarray,
                     scores: np.ndarray) -> Iterator[bytes]:
    """serialize_record of each of ranking_records(names, rows, idx, scores), with the
    names pre-encoded once (`fields` = name_fields(names))."""
    for r, ii, ss in zip(rows.tolist(), idx, scores):
        ok = ii >= 0
        yield _example(fields[r], b"".join([fields[j] for j in ii[ok].tolist()]), ss[ok])


def shard_path(out_dir: str, shard: int, shards: int) -> str:
    return join_path(out_dir, f"{PREFIX}-{shard:05d}-of-{shards:05d}{SUFFIX}")


def ranking_prefix(out_dir: str) -> str:
    """The file prefix Beam's WriteToTFRecord writes the shards under."""
    return join_path(out_dir, PREFIX)


def remove_ranking(out_dir: str) -> int:
    """Delete the ranking files of an earlier run in `out_dir` (a new run may write
    another number of shards, and the reader takes every file); returns the count."""
    from core.files import remove_files
    return len(remove_files(out_dir, PREFIX + "-", SUFFIX))


def write_ranking(out_dir: str, records: Iterable[Tuple[str, List[str], List[float]]],
                  shards: int = 1) -> List[str]:
    """Write records round-robin into `shards` GZIP TFRecord files; returns the paths."""
    return write_examples(out_dir, (serialize_record(r) for r in records), shards)


def write_examples(out_dir: str, examples: Iterable[bytes], shards: int = 1) -> List[str]:
    """Write serialized tf.Examples round-robin into `shards` GZIP TFRecord files
    (TFRecord framing, as Beam's WriteToTFRecord); a local folder is written directly
    (deflate level 1: a third of level 6's time for a 30 % larger file), any other
    through Beam's FileSystems. Returns the paths."""
    paths = [shard_path(out_dir, s, shards) for s in range(shards)]
    writers = [_gzip_writer(p) for p in paths]
    try:
        for i, example in enumerate(examples):
            writers[i % shards].write(tfrecord.frame(example))
    finally:
        for w in writers:
            w.close()
    return paths


class _LocalGzip:
    """A local GZIP file written as Beam's CompressedFile writes one (at level 1)."""

    def __init__(self, path: str):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "wb")
        self._deflate = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> None:
        self._file.write(self._deflate.compress(data))

    def close(self) -> None:
        try:
            self._file.write(self._deflate.flush())
        finally:
            self._file.close()


def _gzip_writer(path: str):
    from core.files import is_remote
    if not is_remote(path):
        return _LocalGzip(path)
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    return FileSystems.create(path, compression_type=CompressionTypes.GZIP)


def write_ranking_in_memory(train: FeatureSet, tables: STTables, config: FusionRule,
                            output_dir: str,
                            col_block: int = neighbours.DEFAULT_COL_BLOCK,
                            timing: Optional[Dict] = None) -> List[str]:
    """The fused ranking of `train` scored in this process (row blocks, col_block
    train columns at a time) and written to `output_dir` as one file; returns its
    paths. Row blocks are scored on workers.pmap's threads while this one writes.
    `timing` (optional) gets "ranking_write_s": the wall seconds spent serializing,
    compressing and writing (the rest is waiting for scores)."""
    scorer = BlockScorer(tables, train, train, config)
    report = counter("fused train ranking")
    scoring = [0.0]
    fields = name_fields(train.names)
    spans = neighbours.row_blocks(len(train))

    def top_n(span: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = np.arange(*span, dtype=np.int64)
        return (rows,) + fused_top_n_rows(scorer, rows, config.ranking_top_n, col_block)

    def records():
        blocks = workers.pmap(top_n, spans)
        for _, stop in spans:
            t = time.monotonic()
            rows, idx, sc = next(blocks)
            scoring[0] += time.monotonic() - t
            yield from ranking_examples(fields, rows, idx, sc)
            report(stop, len(train))
    t0 = time.monotonic()
    paths = write_examples(output_dir, records())
    if timing is not None:
        timing["ranking_write_s"] = time.monotonic() - t0 - scoring[0]
    return paths


class RankingError(InputError):
    """A fused ranking artifact that cannot be used (names the artifact and the file)."""


@dataclass
class FusedRanking:
    """A fused ranking as read: per train image, its neighbours best first."""
    uri: str
    names: List[str]
    neighbours: List[List[str]]
    scores: List[np.ndarray]

    def __len__(self) -> int:
        return len(self.names)


def ranking_files(uri: str) -> List[str]:
    """The artifact's files: `uri` itself if a file, else fused_ranking-*.tfrecord.gz in
    `uri` or one folder below it (e.g. a Split-train/ of a TFX artifact); read through
    Beam's FileSystems (local, `gs://…`, any registered scheme)."""
    from apache_beam.io.filesystems import FileSystems
    from core.files import exists, glob_escape, is_remote
    pattern = f"{PREFIX}-*{SUFFIX}"
    if not is_remote(uri) and os.path.isfile(uri):
        return [uri]
    root = glob_escape(uri.rstrip("/"))
    found = FileSystems.match([join_path(root, pattern), join_path(root, "*", pattern)])
    files = sorted(m.path for r in found for m in r.metadata_list)
    if not files and is_remote(uri) and exists(uri):
        return [uri]  # an object store's file (its "folders" are only name prefixes)
    if not files:
        raise RankingError(f"fused ranking artifact {uri}: no files match {pattern}")
    return files


def _feature_values(example) -> Dict[str, list]:
    """{feature name: its values} of a tf.Example (bytes, ints or floats)."""
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[key] = list(getattr(feature, kind).value) if kind else []
    return out


def read_records(path: str, where: str) -> List[bytes]:
    """Every record of one GZIP TFRecord file (through Beam's FileSystems and its
    TFRecord framing, as write_ranking writes them); RankingError starting with
    `where` when the file is not one (or is truncated)."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.io.tfrecordio import _TFRecordUtil
    out: List[bytes] = []
    try:
        with FileSystems.open(path, compression_type=CompressionTypes.GZIP) as f:
            while True:
                record = _TFRecordUtil.read_record(f)
                if record is None:
                    return out
                out.append(record)
    except (ValueError, OSError, EOFError, zlib.error) as e:
        reason = str(e)
        if reason.startswith("Not a valid TFRecord"):  # then the bytes in hex
            reason = reason.split(":", 1)[0]
        raise RankingError(f"{where} is not a readable GZIP TFRecord file "
                           f"({reason}; after {len(out)} record(s))") from None


def read_fused_ranking(uri: str) -> FusedRanking:
    """The one reader of the fused ranking artifact: every record is checked against
    schemas/fused_ranking.pbtxt, scores must descend and anchors must be distinct;
    RankingError names the artifact, the file and the record otherwise."""
    import tensorflow as tf  # lazily
    from schemas import schema_path
    from schemas.check import ExampleValidator
    validator = ExampleValidator.from_pbtxt(schema_path("fused_ranking"))
    names: List[str] = []
    neighbours: List[List[str]] = []
    scores: List[np.ndarray] = []
    files = ranking_files(uri)
    for path in files:
        where = f"fused ranking artifact {uri}: {path}"
        for n, raw in enumerate(read_records(path, where)):
            try:
                values = _feature_values(tf.train.Example.FromString(raw))
            except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and kin
                raise RankingError(f"{where} record {n} is not a tf.Example ({e})") from None
            problems = validator.problems(values)
            if problems:
                raise RankingError(f"{where} record {n} does not fit "
                                   f"schemas/fused_ranking.pbtxt: {'; '.join(problems)}")
            name = values["image_name"][0].decode()
            nb = [v.decode() for v in values["neighbour_names"]]
            sc = np.asarray(values["neighbour_scores"], np.float64)
            if len(nb) != len(sc):
                raise RankingError(f"{where} image {name}: {len(nb)} neighbour_names but "
                                   f"{len(sc)} neighbour_scores")
            if len(sc) > 1 and np.any(np.diff(sc) > 1e-6 * (1 + np.abs(sc[:-1]))):
                raise RankingError(f"{where} image {name}: neighbour_scores are not in "
                                   "descending order")
            names.append(name)
            neighbours.append(nb)
            scores.append(sc)
    if not names:
        raise RankingError(f"fused ranking artifact {uri} is empty: 0 records in "
                           f"{len(files)} file(s)")
    if len(set(names)) != len(names):
        seen, dup = set(), None
        for name in names:
            if name in seen:
                dup = name
                break
            seen.add(name)
        raise RankingError(f"fused ranking artifact {uri}: image {dup!r} is ranked more "
                           "than once")
    return FusedRanking(uri, names, neighbours, scores)


def read_ranking(out_dir: str) -> Dict[str, Tuple[List[str], List[float]]]:
    """All records under out_dir: image name -> (neighbour names, scores)."""
    r = read_fused_ranking(out_dir)
    return {n: (nb, sc.tolist()) for n, nb, sc in zip(r.names, r.neighbours, r.scores)}
