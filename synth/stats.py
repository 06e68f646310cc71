"""Per-identity statistics of a re-ID split, from its file names' ST points.

They say how much cross-camera evidence a split holds, which is what TFusion's ST
model is learned from, and let a SynthReID target be compared with Market-1501:

* identities (pid > 0) and images per identity;
* cameras per identity (distinct cameras an identity is seen in);
* true cross-camera matches per image: images of the same identity in another
  camera, averaged over images (ordered pairs / images);
* the share of true cross-camera pairs whose two images carry different sequence
  numbers (each sequence has its own frame clock).

Distractors (pid 0) and junk (pid -1) are counted apart and left out of the rest.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np

# The statistics compared with Market-1501 (identities are not: a small demo target
# has fewer identities by design).
COMPARED: Sequence[str] = ("images_per_identity", "cameras_per_identity",
                           "cross_camera_matches", "cross_sequence_share")


@dataclass(frozen=True)
class SplitStats:
    images: int                    # all images of the split
    person_images: int             # images with pid > 0
    distractors: int               # pid 0
    junk: int                      # pid -1
    identities: int
    images_per_identity: float
    cameras_per_identity: float
    cross_camera_matches: float    # per person image
    cross_sequence_share: float    # of true cross-camera pairs

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


def _sum_sq_counts(*keys: np.ndarray) -> int:
    """Σ over the distinct key tuples of (images with that key)²: the number of
    ordered image pairs (self-pairs included) that share all the keys."""
    _, counts = np.unique(np.stack(keys, axis=1), axis=0, return_counts=True)
    return int(np.sum(counts.astype(np.int64) ** 2))


def split_stats(points: Iterable) -> SplitStats:
    """Statistics of one split; `points` have `pid`, `camera` and `sequence`
    (e.g. `core.names.STPoint`)."""
    pts = list(points)
    all_pids = np.array([p.pid for p in pts], np.int64)
    distractors, junk = int(np.sum(all_pids == 0)), int(np.sum(all_pids < 0))
    person = all_pids > 0
    n = int(person.sum())
    if n == 0:
        return SplitStats(len(pts), 0, distractors, junk, 0, 0.0, 0.0, 0.0, 0.0)
    pid = all_pids[person]
    cam = np.array([p.camera for p in pts], np.int64)[person]
    seq = np.array([p.sequence for p in pts], np.int64)[person]
    ids = np.unique(pid)
    id_cams = np.unique(np.stack([pid, cam], axis=1), axis=0)
    # Ordered pairs of one identity in different cameras, and among them those
    # with the same sequence number.
    cross_cam = _sum_sq_counts(pid) - _sum_sq_counts(pid, cam)
    same_seq = _sum_sq_counts(pid, seq) - _sum_sq_counts(pid, cam, seq)
    return SplitStats(
        images=len(pts), person_images=n, distractors=distractors, junk=junk,
        identities=len(ids), images_per_identity=n / len(ids),
        cameras_per_identity=len(id_cams) / len(ids),
        cross_camera_matches=cross_cam / n,
        cross_sequence_share=(cross_cam - same_seq) / cross_cam if cross_cam else 0.0)


def gallery_matches_per_query(query: Iterable, gallery: Iterable) -> float:
    """Mean number of gallery images of a query's identity in another camera
    (Market protocol's true matches), over queries with pid > 0."""
    g: Dict[int, Dict[int, int]] = {}
    for p in gallery:
        if p.pid > 0:
            g.setdefault(p.pid, {}).setdefault(p.camera, 0)
            g[p.pid][p.camera] += 1
    counts = [sum(n for c, n in g.get(q.pid, {}).items() if c != q.camera)
              for q in query if q.pid > 0]
    return float(np.mean(counts)) if counts else 0.0


def within_band(stats: SplitStats, reference: SplitStats, band: float = 0.3) -> Dict[str, float]:
    """Ratio stats / reference of each compared statistic that lies outside
    [1 - band, 1 + band] (empty when all are within)."""
    out = {}
    for key in COMPARED:
        ref = getattr(reference, key)
        ratio = getattr(stats, key) / ref if ref else float("inf")
        if not (1 - band) <= ratio <= (1 + band):
            out[key] = ratio
    return out


def dataset_stats(splits: Mapping[str, Sequence]) -> Dict[str, object]:
    """`{"train": SplitStats, "test": SplitStats of query + gallery pooled,
    "gallery_matches_per_query": float}` of a dataset given as points per split
    (train, query, gallery)."""
    missing = [s for s in ("train", "query", "gallery") if s not in splits]
    if missing:
        raise ValueError(f"dataset_stats needs the train, query and gallery splits; "
                         f"missing {', '.join(missing)}")
    return {"train": split_stats(splits["train"]),
            "test": split_stats(list(splits["query"]) + list(splits["gallery"])),
            "gallery_matches_per_query": gallery_matches_per_query(splits["query"],
                                                                   splits["gallery"])}


def transit_concentration(points: Sequence, window: int = 1000) -> Tuple[float, float]:
    """How concentrated true cross-camera time deltas are, the signal TFusion's ST
    model learns: over every (camera, sequence) node pair of different cameras with
    at least 5 true pairs, the share of true pairs' frame deltas within ±`window`
    frames of that node pair's median true delta, and the same share for pairs of
    different identities (the random background). Returns (true share, random
    share)."""
    pts = [p for p in points if p.pid > 0]
    pid = np.array([p.pid for p in pts], np.int64)
    cam = np.array([p.camera for p in pts], np.int64)
    node = np.stack([cam, np.array([p.sequence for p in pts], np.int64)], axis=1)
    frame = np.array([p.frame for p in pts], np.int64)
    nodes, inverse = np.unique(node, axis=0, return_inverse=True)
    members = [np.flatnonzero(inverse.ravel() == k) for k in range(len(nodes))]
    hit = [0, 0]
    total = [0, 0]
    for a, ia in enumerate(members):
        for b, ib in enumerate(members):
            if nodes[a][0] == nodes[b][0]:
                continue
            same = pid[ia][:, None] == pid[ib][None, :]
            if same.sum() < 5:
                continue
            delta = frame[ib][None, :] - frame[ia][:, None]
            near = np.abs(delta - np.median(delta[same])) <= window
            for k, mask in enumerate((same, ~same)):
                hit[k] += int(near[mask].sum())
                total[k] += int(mask.sum())
    return (hit[0] / total[0] if total[0] else 0.0,
            hit[1] / total[1] if total[1] else 0.0)
