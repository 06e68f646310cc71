"""Feature sets in the interchange format (.npz), loaded and validated.

A feature set is one .npz file, or a folder of row shards
`features-SSSSS-of-NNNNN.npz` (each an .npz of the same format holding consecutive
rows, in shard order): the form a Beam worker reads block by block (FeatureRows).
It holds `features` float32 [N, D], `camera`, `frame` int64 [N],
`sequence` int64 [N] (optional, default 1), `pid` int64 [N] (optional; -1 junk,
0 distractor; evaluation only, never used to build ST models) and `name` str [N]
(optional). Every problem raises `FeatureFileError` naming the file and the problem.
Files are read through Beam's FileSystems (local, `gs://…`, any registered scheme).
A file written by `save_features` also holds `unit_rows` (its rows are already
L2-normalised and load unchanged, so a reloaded set equals the saved one bit for bit).
"""
from __future__ import annotations

import os
import re
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from core.errors import InputError


class FeatureFileError(InputError):
    """A feature file (or in-memory feature set) that cannot be used."""


@dataclass
class FeatureSet:
    """Embeddings of one split with their ST points (rows L2-normalised on load)."""
    features: np.ndarray            # float32 [N, D]
    camera: np.ndarray              # int64 [N]
    frame: np.ndarray               # int64 [N]
    sequence: np.ndarray            # int64 [N]
    pid: Optional[np.ndarray] = None   # int64 [N] or None
    name: Optional[np.ndarray] = None  # str [N] or None
    source: str = "<memory>"

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def first_name(self) -> Optional[str]:
        return None if self.name is None or not len(self.name) else str(self.name[0])

    @property
    def names(self) -> np.ndarray:
        """Image names; `source#index` when the file carries none."""
        if self.name is not None:
            return self.name
        return default_names(self.source, 0, len(self))

    def subset(self, index: np.ndarray) -> "FeatureSet":
        """Rows `index` of this set (same source)."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return FeatureSet(self.features[index], self.camera[index], self.frame[index],
                          self.sequence[index], pick(self.pid), pick(self.name),
                          self.source)


def default_names(source: str, start: int, stop: int) -> np.ndarray:
    """`source#index` for rows start..stop-1 of a feature set without names."""
    base = os.path.basename(source.rstrip("/"))
    return np.array([f"{base}#{i}" for i in range(start, stop)])


def _int_column(arr: np.ndarray, key: str, n: int, source: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise FeatureFileError(f"{source}: '{key}' has shape {arr.shape}, expected [{n}] "
                               f"(one value per row of 'features')")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) \
                and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise FeatureFileError(f"{source}: '{key}' must hold integers, got dtype "
                                   f"{arr.dtype}")
    return arr.astype(np.int64)


def make_feature_set(features: np.ndarray, camera: np.ndarray, frame: np.ndarray,
                     sequence: Optional[np.ndarray] = None,
                     pid: Optional[np.ndarray] = None,
                     name: Optional[np.ndarray] = None,
                     source: str = "<memory>", unit_rows: bool = False) -> FeatureSet:
    """Validate arrays into a FeatureSet; features are L2-normalised (cosine = dot)
    unless `unit_rows` says they already are (files written by save_features)."""
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise FeatureFileError(f"{source}: 'features' has shape {x.shape}, expected "
                               f"a non-empty [N, D] matrix")
    if not np.issubdtype(x.dtype, np.number):
        raise FeatureFileError(f"{source}: 'features' has non-numeric dtype {x.dtype}")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise FeatureFileError(f"{source}: 'features' has NaN/inf values in {bad.sum()} "
                               f"row(s), first at row {rows[0]}")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise FeatureFileError(f"{source}: 'features' has {(norms == 0).sum()} all-zero "
                               f"row(s), first at row {np.flatnonzero(norms == 0)[0]}")
    if not unit_rows:
        x /= norms[:, None]
    n = x.shape[0]
    cam = _int_column(camera, "camera", n, source)
    frm = _int_column(frame, "frame", n, source)
    seq = (np.ones(n, np.int64) if sequence is None
           else _int_column(sequence, "sequence", n, source))
    p = None if pid is None else _int_column(pid, "pid", n, source)
    nm = None
    if name is not None:
        nm = np.asarray(name).astype(str)
        if nm.shape != (n,):
            raise FeatureFileError(f"{source}: 'name' has shape {nm.shape}, expected [{n}]")
        unique, counts = np.unique(nm, return_counts=True)
        if (counts > 1).any():
            raise FeatureFileError(f"{source}: 'name' repeats {(counts > 1).sum()} image "
                                   f"name(s), e.g. {unique[counts > 1][0]!r}; every row "
                                   "must be a distinct image")
    if (frm < 0).any():
        raise FeatureFileError(f"{source}: 'frame' has {(frm < 0).sum()} negative value(s)")
    return FeatureSet(x, cam, frm, seq, p, nm, source)


def _read_npz(path: str, keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Arrays of an .npz file (all, or those of `keys` it holds), or
    FeatureFileError saying why it is unreadable."""
    from core.files import open_file
    try:
        f = open_file(path)
    except Exception as e:  # noqa: BLE001 - any filesystem's "cannot open"
        raise FeatureFileError(f"{path}: feature file cannot be opened ({e})") from None
    with f:
        if not zipfile.is_zipfile(f):
            f.seek(0)
            head = f.read(8)
            raise FeatureFileError(f"{path}: not an .npz archive (a zip of .npy arrays, "
                                   f"as written by numpy.savez); it starts with {head!r}")
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as data:
                return {k: data[k] for k in data.files if keys is None or k in keys}
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise FeatureFileError(
                    f"{path}: holds an object (pickled) array, which is not loaded for "
                    "safety; save plain numeric/str arrays (e.g. "
                    "features.astype(np.float32))") from None
            raise FeatureFileError(f"{path}: not a readable .npz file ({e})") from None
        except Exception as e:  # noqa: BLE001 - any unreadable archive is reported alike
            raise FeatureFileError(f"{path}: not a readable .npz file ({e})") from None


def _check_exists(path: str) -> None:
    from core.files import exists
    if not exists(path):
        raise FeatureFileError(f"{path}: feature file does not exist")


def _missing(data: Dict[str, np.ndarray], path: str, required: Sequence[str]) -> None:
    missing = [k for k in required if k not in data]
    if missing:
        raise FeatureFileError(f"{path}: missing array(s) {', '.join(missing)}; "
                               f"found {', '.join(data) or 'none'}")


SHARD_PREFIX = "features-"
SHARD_SUFFIX = ".npz"
_SHARD_NAME = re.compile(r"features-(\d{5})-of-(\d{5})\.npz$")


def shard_name(shard: int, shards: int) -> str:
    return f"{SHARD_PREFIX}{shard:05d}-of-{shards:05d}{SHARD_SUFFIX}"


def is_sharded(path: str) -> bool:
    """Whether `path` names a folder of row shards rather than one .npz file."""
    from core.files import is_folder_path
    return is_folder_path(path, SHARD_SUFFIX)


def split_features_path(folder: str, split: str) -> str:
    """The features of one split in a folder of splits: its folder of row shards
    `folder/<split>/` when there is one, else the file `folder/<split>.npz`."""
    from core.files import join_path, list_files
    shards = join_path(folder, split)
    return shards if list_files(shards) else join_path(folder, split + SHARD_SUFFIX)


class Shard(NamedTuple):
    """One file of a feature set: rows start..stop-1, with the file's size and
    modification time (a worker's cache key: a rewritten file is read again)."""
    path: str
    start: int
    stop: int
    size: int
    mtime: float


def shard_files(path: str) -> List[Tuple[str, int, float]]:
    """(path, size, mtime) of the files of a feature set in row order: the file
    itself, or the complete series of shards of a folder (errors name what is
    missing)."""
    from core.files import file_metadata, list_files
    if not is_sharded(path):
        _check_exists(path)
        meta = file_metadata(path)
        return [(path, meta.size_in_bytes, meta.last_updated_in_seconds)]
    found, listed = {}, list_files(path)
    if not listed:
        raise FeatureFileError(f"{path}: feature file does not exist (nor a folder of "
                               "feature shards)")
    for m in listed:
        match = _SHARD_NAME.search(m.path.rsplit("/", 1)[-1])
        if match:
            found[(int(match.group(1)), int(match.group(2)))] = m
    if not found:
        raise FeatureFileError(f"{path}: no feature file or shards "
                               f"({SHARD_PREFIX}SSSSS-of-NNNNN{SHARD_SUFFIX}) there")
    counts = sorted({n for _, n in found})
    if len(counts) > 1:
        raise FeatureFileError(f"{path}: shards of different series (-of- "
                               f"{', '.join(str(c) for c in counts)}); remove the stale ones")
    total = counts[0]
    missing = [i for i in range(total) if (i, total) not in found]
    if missing:
        raise FeatureFileError(f"{path}: {len(missing)} of {total} shard(s) missing, "
                               f"first {shard_name(missing[0], total)}")
    return [(found[(i, total)].path, found[(i, total)].size_in_bytes,
             found[(i, total)].last_updated_in_seconds) for i in range(total)]


def shard_layout(path: str) -> Tuple[List[Shard], "STPoints"]:
    """The shards of a feature set with the rows each holds, and its ST points (read
    from the shards' ST columns only): what a Beam job plans with and passes to its
    workers to read row blocks (FeatureRows)."""
    out, parts, start = [], [], 0
    for f, size, mtime in shard_files(path):
        parts.append(_st_columns(f))
        out.append(Shard(f, start, start + len(parts[-1]), size, mtime))
        start = out[-1].stop
    return out, _join_points(parts, path)


def _concat(parts: List[Dict[str, np.ndarray]], key: str, path: str):
    have = [key in p for p in parts]
    if not any(have):
        return None
    if not all(have):
        raise FeatureFileError(f"{path}: '{key}' is in {sum(have)} of {len(parts)} "
                               "shard(s); every shard must hold the same arrays")
    return np.concatenate([np.asarray(p[key]) for p in parts])


def load_features(path: str, require_pid: bool = False) -> FeatureSet:
    """Load and validate a feature file or a folder of row shards (errors name the
    file and the problem)."""
    parts = []
    for f, _, _ in shard_files(path):
        data = _read_npz(f)
        _missing(data, f, ("features", "camera", "frame") +
                 (("pid",) if require_pid else ()))
        parts.append(data)
    if len(parts) > 1:
        dims = sorted({np.asarray(p["features"]).shape[1:] for p in parts})
        if len(dims) > 1:
            raise FeatureFileError(f"{path}: shards hold features of different shapes "
                                   f"{dims}")
    get = lambda k: _concat(parts, k, path)  # noqa: E731
    unit = all(bool(p.get("unit_rows", False)) for p in parts)
    return make_feature_set(get("features"), get("camera"), get("frame"), get("sequence"),
                            get("pid"), get("name"), source=path, unit_rows=unit)


class STPoints(NamedTuple):
    """The ST points of a feature set without its features: camera, frame, sequence
    int64 [N] and pid int64 [N] or None (evaluation and plots only)."""
    camera: np.ndarray
    frame: np.ndarray
    sequence: np.ndarray
    pid: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.camera.shape[0])


def _st_columns(path: str) -> STPoints:
    """The ST columns of one .npz file."""
    data = _read_npz(path, ("camera", "frame", "sequence", "pid"))
    _missing(data, path, ("camera", "frame"))
    n = np.asarray(data["camera"]).shape[0]
    cam = _int_column(data["camera"], "camera", n, path)
    frm = _int_column(data["frame"], "frame", n, path)
    seq = (np.ones(n, np.int64) if "sequence" not in data
           else _int_column(data["sequence"], "sequence", n, path))
    pid = None if "pid" not in data else _int_column(data["pid"], "pid", n, path)
    return STPoints(cam, frm, seq, pid)


def _join_points(parts: List[STPoints], path: str) -> STPoints:
    if len(parts) == 1:
        return parts[0]
    pid = None
    if any(p.pid is not None for p in parts):
        pid = _concat([p._asdict() for p in parts], "pid", path)
    return STPoints(*(np.concatenate([getattr(p, k) for p in parts])
                      for k in ("camera", "frame", "sequence")), pid)


def load_st_points(path: str) -> STPoints:
    """The ST points of a feature file or shard folder, without its features: what
    planning a Beam job over the file, or plotting its ST model, needs."""
    return _join_points([_st_columns(f) for f, _, _ in shard_files(path)], path)


def layout_points(layout: Sequence[Shard], source: str) -> STPoints:
    """The ST points of the shards of `layout` (a worker's copy: N int64 columns)."""
    return _join_points([_st_columns(sh.path) for sh in layout], source)


def layout_names(layout: Sequence[Shard], source: str) -> np.ndarray:
    """The image names of the shards of `layout`, `source#index` where none."""
    out = []
    for sh in layout:
        data = _read_npz(sh.path, ("name",))
        out.append(np.asarray(data["name"]).astype(str) if "name" in data
                   else default_names(source, sh.start, sh.stop))
    return np.concatenate(out)


@dataclass
class FeatureHeader:
    """What a launcher needs of a feature set whose features only the Beam workers
    read: its ST points, feature dimension, first image name, source and shard
    layout."""
    points: STPoints
    dim: int
    first_name: Optional[str]
    source: str
    layout: List[Shard]

    def __len__(self) -> int:
        return len(self.points)

    camera = property(lambda self: self.points.camera)
    frame = property(lambda self: self.points.frame)
    sequence = property(lambda self: self.points.sequence)
    pid = property(lambda self: self.points.pid)


def _npy_shape(path: str, key: str) -> Tuple[int, ...]:
    """Shape of array `key` of an .npz file, from its .npy header (no data read)."""
    from core.files import open_file
    with open_file(path) as f, zipfile.ZipFile(f) as z, z.open(f"{key}.npy") as a:
        version = np.lib.format.read_magic(a)
        return tuple(np.lib.format._read_array_header(a, version)[0])


def read_header(path: str) -> FeatureHeader:
    """The FeatureHeader of a feature file or shard folder (ST columns, the .npy
    header of the features and the first name: never the feature matrix)."""
    layout, points = shard_layout(path)
    files = [sh.path for sh in layout]
    try:
        dims = {_npy_shape(f, "features")[1:] for f in files}
    except KeyError:
        raise FeatureFileError(f"{path}: missing array features") from None
    except Exception as e:  # noqa: BLE001 - any unreadable header is reported alike
        raise FeatureFileError(f"{path}: not a readable .npz file ({e})") from None
    if len(dims) != 1 or len(next(iter(dims))) != 1:
        raise FeatureFileError(f"{path}: 'features' must be [N, D] with one D in every "
                               f"shard, got {sorted(dims)}")
    names = _read_npz(files[0], ("name",)).get("name")
    first = None if names is None or not len(names) else str(np.asarray(names)[0])
    return FeatureHeader(points, int(next(iter(dims))[0]), first, path, layout)


def _arrays(fs: FeatureSet) -> Dict[str, np.ndarray]:
    arrays = {"features": fs.features, "camera": fs.camera, "frame": fs.frame,
              "sequence": fs.sequence, "unit_rows": np.array(True)}
    if fs.pid is not None:
        arrays["pid"] = fs.pid
    if fs.name is not None:
        arrays["name"] = fs.name
    return arrays


def save_features(fs: FeatureSet, path: str) -> str:
    """Write a FeatureSet so that load_features gives it back bit for bit."""
    from core.files import write_with
    arrays = _arrays(fs)
    return write_with(path, lambda buf: np.savez(buf, **arrays))


def save_feature_shards(fs: FeatureSet, folder: str, shard_rows: int) -> List[str]:
    """Write a FeatureSet as a folder of row shards of `shard_rows` rows (earlier
    shards there are removed first); load_features(folder) gives it back bit for
    bit."""
    from core.files import join_path, make_folder, remove_files
    make_folder(folder)
    remove_files(folder, SHARD_PREFIX, SHARD_SUFFIX)
    n = len(fs)
    starts = list(range(0, n, max(1, int(shard_rows))))
    return [save_features(fs.subset(np.arange(s, min(s + shard_rows, n))),
                          join_path(folder, shard_name(i, len(starts))))
            for i, s in enumerate(starts)]


class FeatureRows:
    """Consecutive rows of a feature set as a worker reads them: only the shards
    that hold them, the last `cache_shards` of them kept (memory bounded by the
    shard size, not by N). A one-file set is a single shard."""

    def __init__(self, layout: Sequence[Shard], source: str, cache_shards: int = 8):
        self.layout, self.source = list(layout), source
        self.cache_shards = max(1, int(cache_shards))
        self._cache: "OrderedDict[int, FeatureSet]" = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.layout[-1].stop if self.layout else 0

    def _shard(self, i: int) -> FeatureSet:
        with self._lock:
            if i in self._cache:
                self._cache.move_to_end(i)
                return self._cache[i]
        fs = load_features(self.layout[i].path)
        sh = self.layout[i]
        if len(fs) != sh.stop - sh.start:
            raise FeatureFileError(f"{sh.path}: holds {len(fs)} rows, expected "
                                   f"{sh.stop - sh.start} (changed while the job ran?)")
        with self._lock:
            self._cache[i] = fs
            while len(self._cache) > self.cache_shards:
                self._cache.popitem(last=False)
        return fs

    def rows(self, start: int, stop: int) -> FeatureSet:
        """Rows start..stop-1 as a FeatureSet (names `source#index` by global index
        when the set carries none)."""
        parts = []
        for i, sh in enumerate(self.layout):
            if sh.stop > start and sh.start < stop:
                fs = self._shard(i)
                lo, hi = max(start, sh.start) - sh.start, min(stop, sh.stop) - sh.start
                parts.append(fs.subset(np.arange(lo, hi)))
        if len(parts) == 1:
            out = parts[0]
        else:
            cat = lambda k: (None if getattr(parts[0], k) is None  # noqa: E731
                             else np.concatenate([getattr(p, k) for p in parts]))
            out = FeatureSet(*(cat(k) for k in ("features", "camera", "frame",
                                                "sequence", "pid", "name")))
        name = out.name if out.name is not None else default_names(self.source, start,
                                                                     stop)
        return FeatureSet(out.features, out.camera, out.frame, out.sequence, out.pid,
                          name, self.source)
