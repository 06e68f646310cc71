"""Feature sets in the interchange format (.npz), loaded and validated.

A feature set holds `features` float32 [N, D], `camera`, `frame` int64 [N],
`sequence` int64 [N] (optional, default 1), `pid` int64 [N] (optional; -1 junk,
0 distractor; evaluation only, never used to build ST models) and `name` str [N]
(optional). Every problem raises `FeatureFileError` naming the file and the problem.
Files are read through Beam's FileSystems (local, `gs://…`, any registered scheme).
A file written by `save_features` also holds `unit_rows` (its rows are already
L2-normalised and load unchanged, so a reloaded set equals the saved one bit for bit).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from st_model.errors import InputError


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
    def names(self) -> np.ndarray:
        """Image names; `source#index` when the file carries none."""
        if self.name is not None:
            return self.name
        base = os.path.basename(self.source)
        return np.array([f"{base}#{i}" for i in range(len(self))])

    def subset(self, index: np.ndarray) -> "FeatureSet":
        """Rows `index` of this set (same source)."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return FeatureSet(self.features[index], self.camera[index], self.frame[index],
                          self.sequence[index], pick(self.pid), pick(self.name),
                          self.source)


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
    from st_model.files import open_file
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
    from st_model.files import exists
    if not exists(path):
        raise FeatureFileError(f"{path}: feature file does not exist")


def _missing(data: Dict[str, np.ndarray], path: str, required: Sequence[str]) -> None:
    missing = [k for k in required if k not in data]
    if missing:
        raise FeatureFileError(f"{path}: missing array(s) {', '.join(missing)}; "
                               f"found {', '.join(data) or 'none'}")


def load_features(path: str, require_pid: bool = False) -> FeatureSet:
    """Load and validate one .npz feature file (errors name the file and the problem)."""
    _check_exists(path)
    data = _read_npz(path)
    _missing(data, path, ("features", "camera", "frame") + (("pid",) if require_pid else ()))
    return make_feature_set(data["features"], data["camera"], data["frame"],
                            data.get("sequence"), data.get("pid"), data.get("name"),
                            source=path, unit_rows=bool(data.get("unit_rows", False)))


def load_st_points(path: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(camera, frame, sequence) int64 [N] of a feature file, without its features:
    what planning a Beam job over the file needs."""
    _check_exists(path)
    data = _read_npz(path, ("camera", "frame", "sequence"))
    _missing(data, path, ("camera", "frame"))
    n = np.asarray(data["camera"]).shape[0]
    cam = _int_column(data["camera"], "camera", n, path)
    frm = _int_column(data["frame"], "frame", n, path)
    seq = (np.ones(n, np.int64) if "sequence" not in data
           else _int_column(data["sequence"], "sequence", n, path))
    return cam, frm, seq


def save_features(fs: FeatureSet, path: str) -> str:
    """Write a FeatureSet so that load_features gives it back bit for bit."""
    from st_model.files import write_with
    arrays = {"features": fs.features, "camera": fs.camera, "frame": fs.frame,
              "sequence": fs.sequence, "unit_rows": np.array(True)}
    if fs.pid is not None:
        arrays["pid"] = fs.pid
    if fs.name is not None:
        arrays["name"] = fs.name
    return write_with(path, lambda buf: np.savez(buf, **arrays))
