"""RankNet training triples from the fused ranking artifact (TFusion step 5).

The artifact (schemas/fused_ranking.pbtxt) holds, per target train image, its fused
top-k neighbours, best first: GZIP TFRecord files `fused_ranking-*.tfrecord.gz` of
tf.Examples with `image_name` (bytes), `neighbour_names` (bytes list) and
`neighbour_scores` (float list, descending, same length).

For an anchor a, i is drawn uniformly from the fused ranks `near` and j from `far`,
with rank(j) > rank(i) (the paper: near = [1, 25], far = [25, 50]; RankNetConfig's
defaults: near = [1, 3] among k-reciprocal neighbours, far = [25, 50]). The target probability that i ranks above j is

    P̄_ij = sigmoid((s_ai − s_aj) / τ),                                     (target)

s the fused scores. Fused scores have no fixed scale (P_v·P_st/P_rand), so τ = 0 means
"auto": τ = median(s_ai − s_aj) / ln 9 over the drawn triples, i.e. the median
triple gets target 0.9. The order of (i, j) is randomised: with probability ½ the
triple is stored as (a, j, i) with target 1 − P̄_ij, so the network cannot learn a
position bias.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import AbstractSet, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from st_model import fused_ranking
from st_model.fused_ranking import FusedRanking, RankingError, ranking_files  # noqa: F401
from trainer import runtime
from trainer.config import check_windows
import tensorflow as tf


def read_fused_ranking(uri: str) -> FusedRanking:
    """Read and check the fused ranking artifact (st_model.fused_ranking, the one reader)."""
    return fused_ranking.read_fused_ranking(uri)


def target_probability(s_i: np.ndarray, s_j: np.ndarray, temperature: float) -> np.ndarray:
    """P̄_ij = sigmoid((s_i − s_j) / τ)  (module docstring, eq. 'target')."""
    z = (np.asarray(s_i, np.float64) - np.asarray(s_j, np.float64)) / temperature
    return (1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))).astype(np.float32)


def auto_temperature(diffs: np.ndarray) -> float:
    """τ such that the median fused-score difference maps to P̄ = 0.9."""
    med = float(np.median(diffs)) if len(diffs) else 0.0
    return med / math.log(9.0) if med > 0 else 1.0


@dataclass
class Triplets:
    anchor: np.ndarray   # int64 [N] indices into the train split
    first: np.ndarray    # int64 [N]
    second: np.ndarray   # int64 [N]
    target: np.ndarray   # float32 [N], P̄(first ranks above second)
    temperature: float
    skipped: Dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.anchor)

    def rows(self) -> np.ndarray:
        return np.stack([self.anchor, self.first, self.second], axis=1)


def sample_triplets(ranking: FusedRanking, index_of: Dict[str, int], count: int,
                    rng: np.random.Generator, near: Tuple[int, int] = (1, 25),
                    far: Tuple[int, int] = (25, 50), temperature: float = 0.0,
                    split_name: str = "train split",
                    camera: Optional[np.ndarray] = None,
                    reciprocal_k: int = 0,
                    anchors: Optional[AbstractSet[str]] = None,
                    confident_fraction: float = 1.0,
                    per_anchor: float = 0.0) -> Triplets:
    """Draw `count` triples, cycling over the anchors in random order (see module doc).

    With `camera` (camera of every train image), j is drawn only among the far-window
    images from i's camera, so that the order of i and j cannot be learned from camera
    appearance; triples with no such j fall back to the whole window (counted).
    With `reciprocal_k` > 0, i is drawn only among near-window neighbours that hold the
    anchor in their own fused top-`reciprocal_k` (k-reciprocal neighbours, Zhong et al.,
    CVPR 2017): a weak fused ranking is far more precise on mutual pairs. Anchors with
    no such neighbour are skipped and counted.
    Anchors or neighbours absent from the train split, and anchors with fewer than two
    usable neighbours, are skipped and counted (reported on stderr). With `anchors`,
    only those records are anchors (the others still decide k-reciprocity).
    With `confident_fraction` < 1, i is drawn only among the near-window neighbours whose
    fused score is in that top share of all near-window scores (pooled over the
    anchors): a fused score is comparable across anchors, and its high values are far
    more often true matches. Anchors left without such a neighbour are skipped and
    counted.
    With `per_anchor` > 0, `count` is raised to per_anchor × the usable anchors, so a
    larger target is covered as densely as a small one (RankNetConfig.triples_per_anchor).
    """
    check_windows(near, far, reciprocal_k)
    skipped = {"anchor_not_in_examples": 0, "neighbour_not_in_examples": 0,
               "too_few_neighbours": 0}
    if reciprocal_k:
        skipped["no_reciprocal_neighbour"] = 0
        top = {index_of.get(name, -1): {index_of.get(n, -1) for n in nb[:reciprocal_k]}
               for name, nb in zip(ranking.names, ranking.neighbours)}
    usable: List[Tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    for name, nb, sc in zip(ranking.names, ranking.neighbours, ranking.scores):
        if anchors is not None and name not in anchors:
            continue
        a = index_of.get(name)
        if a is None:
            skipped["anchor_not_in_examples"] += 1
            continue
        idx = np.array([index_of.get(n, -1) for n in nb], np.int64)
        ok = (idx >= 0) & (idx != a)
        skipped["neighbour_not_in_examples"] += int(np.sum(idx < 0))
        idx, s = idx[ok], sc[ok]
        if len(idx) < 2:
            skipped["too_few_neighbours"] += 1
            continue
        near_ok = np.arange(len(idx)) < min(near[1], len(idx) - 1)
        near_ok &= np.arange(len(idx)) >= near[0] - 1
        if reciprocal_k:
            near_ok &= np.array([a in top.get(int(i), ()) for i in idx])
            if not near_ok.any():
                skipped["no_reciprocal_neighbour"] += 1
                continue
        usable.append((a, idx, s, np.flatnonzero(near_ok)))
    if confident_fraction < 1.0 and usable:
        usable = _confident(usable, confident_fraction, skipped)
    if not usable:
        raise RankingError(f"fused ranking artifact {ranking.uri}: no anchor has two "
                           f"neighbours in the {split_name} ({len(ranking)} records; "
                           f"skipped {skipped}) — was it built from these examples?")
    if any(skipped.values()):
        runtime.log(f"triplets: skipped {skipped} (of {len(ranking)} ranking records)")
    covering = math.ceil(per_anchor * len(usable))
    if covering > count:
        runtime.log(f"triplets: {covering} triples ({per_anchor:g} per anchor over "
                    f"{len(usable)} anchors) instead of {count}")
        count = covering
    anchor, first, second = (np.empty(count, np.int64) for _ in range(3))
    s_i, s_j = np.empty(count), np.empty(count)
    order: List[int] = []
    unmatched = 0
    for t in range(count):
        if not order:
            order = rng.permutation(len(usable)).tolist()
        a, idx, s, near_i = usable[order.pop()]
        n = len(idx)
        # i from the near window, leaving room for j below it (rank 1 on short lists)
        ri = int(near_i[rng.integers(len(near_i))]) if len(near_i) else 0
        lo_j, hi_j = max(far[0] - 1, ri + 1), min(far[1], n) - 1
        if hi_j < lo_j:  # short list: j anywhere below i
            lo_j, hi_j = ri + 1, n - 1
        rj = int(rng.integers(lo_j, hi_j + 1))
        if camera is not None:
            window = np.arange(lo_j, hi_j + 1)
            same = window[camera[idx[window]] == camera[idx[ri]]]
            if len(same):
                rj = int(rng.choice(same))
            else:
                unmatched += 1
        anchor[t], first[t], second[t], s_i[t], s_j[t] = a, idx[ri], idx[rj], s[ri], s[rj]
    if camera is not None:
        skipped["no_same_camera_j"] = unmatched
        if unmatched:
            runtime.log(f"triplets: {unmatched} of {count} triples found no far-window "
                        "image from i's camera; j drawn from the whole window")
    tau = temperature if temperature > 0 else auto_temperature(s_i - s_j)
    target = target_probability(s_i, s_j, tau)
    swap = rng.random(count) < 0.5
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    target = np.where(swap, 1.0 - target, target).astype(np.float32)
    return Triplets(anchor, first, second, target, tau, skipped)


def held_out_anchors(names: Sequence[str], fraction: float, seed: int) -> Set[str]:
    """About `fraction` of the anchor `names`, chosen by a hash of the name and `seed`,
    so every round holds out the same images."""
    import zlib
    return {n for n in names if zlib.crc32(f"{seed}:{n}".encode()) % 1000 < 1000 * fraction}


def sample_held_out(ranking: FusedRanking, held: Set[str], table, config, split_name: str
                    ) -> Optional[Triplets]:
    """Triples of the `held` anchors, drawn as the training triples are (holdout_fraction
    of the training count, at least 64; seed + 1), to measure the order accuracy of a
    trained model on anchors it never saw; None (and a note on stderr) when no held-out
    anchor has usable neighbours."""
    if not held:
        return None
    count = max(64, int(round(run_triplets(config) * config.holdout_fraction)))
    try:
        return sample_for_config(ranking, table, config, split_name, anchors=held,
                                 count=count, seed=config.seed + 1)
    except RankingError:
        runtime.log(f"triplets: none of the {len(held)} held-out anchors has usable "
                    "neighbours; held-out order accuracy is not measured")
        return None


def run_triplets(config) -> int:
    """How many triples one RankNet run of `config` trains on at least: its steps
    (rounded up to whole epochs, trainer.training.epoch_plan) × batch_triplets."""
    from trainer import training
    per_epoch, epochs = training.epoch_plan(config)
    return epochs * per_epoch * config.batch_triplets


def steps_to_cover(config, triples: int):
    """`config` with its steps raised, if needed, so that one run trains on every one
    of `triples` triples (a larger target's triples_per_anchor share)."""
    if triples <= run_triplets(config):
        return config
    return replace(config, steps=math.ceil(triples / config.batch_triplets))


def _confident(usable: List[Tuple[int, np.ndarray, np.ndarray, np.ndarray]],
               fraction: float, skipped: Dict[str, int]):
    """Keep the near-window candidates whose fused score reaches the (1 − fraction)
    quantile of all near-window candidates' scores; count the anchors left without."""
    pooled = np.concatenate([s[near] for _, _, s, near in usable])
    floor = np.quantile(pooled, 1.0 - fraction) if len(pooled) else -np.inf
    kept = []
    skipped["below_confidence"] = 0
    for a, idx, s, near in usable:
        near = near[s[near] >= floor]
        if len(near):
            kept.append((a, idx, s, near))
        else:
            skipped["below_confidence"] += 1
    return kept


def sample_for_config(ranking: FusedRanking, table, config, split_name: str,
                      exclude: AbstractSet[str] = frozenset(),
                      anchors: Optional[AbstractSet[str]] = None,
                      count: Optional[int] = None, seed: Optional[int] = None) -> Triplets:
    """The triples one RankNet run of `config` (RankNetConfig) trains on: as many as its
    steps × batch_triplets, or triples_per_anchor × the usable anchors where that is
    more (or exactly `count`), drawn with its seed (or `seed`), rank windows,
    τ and sampling options from `ranking` over `table` (trainer.data.SplitTable of the
    target train split), with no anchor in `exclude` (the held-out anchors) or only
    the `anchors` given."""
    if exclude:
        anchors = set(ranking.names if anchors is None else anchors) - set(exclude)
    return sample_triplets(ranking, table.index_of(),
                           run_triplets(config) if count is None else count,
                           np.random.default_rng(config.seed if seed is None else seed),
                           tuple(config.near_ranks), tuple(config.far_ranks),
                           config.temperature, split_name=split_name,
                           camera=table.camera if config.same_camera_pairs else None,
                           reciprocal_k=config.reciprocal_k, anchors=anchors,
                           confident_fraction=config.confident_fraction,
                           per_anchor=config.triples_per_anchor if count is None else 0.0)


# ---------------------------------------------------------------- triplets Examples
# One tf.Example per triple, so that the pipeline's RankNet Trainer is the stock TFX
# Trainer on an Examples artifact: the encoded images of a, i, j with their names and
# the target P̄(i ranks above j).
TRIPLET_ROLES = ("anchor", "first", "second")


def triplet_example(names: Tuple[str, str, str], images: Tuple[bytes, bytes, bytes],
                    target: float) -> bytes:
    """Serialized tf.Example of one triple (features <role>_name, <role>_image, target)."""
    feats = {"target": tf.train.Feature(float_list=tf.train.FloatList(value=[target]))}
    for role, name, image in zip(TRIPLET_ROLES, names, images):
        feats[f"{role}_name"] = tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[name.encode()]))
        feats[f"{role}_image"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def triplet_examples(trip: Triplets, names: np.ndarray, images: np.ndarray):
    """Serialized examples of every triple of `trip` (indices into names / images)."""
    for a, i, j, t in zip(trip.anchor, trip.first, trip.second, trip.target):
        yield triplet_example((names[a], names[i], names[j]),
                              (images[a], images[i], images[j]), float(t))


@dataclass
class TripletTable:
    images: np.ndarray   # object [M] encoded bytes, each image once
    names: List[str]     # [M]
    rows: np.ndarray     # int64 [N, 3] indices into images (a, i, j)
    target: np.ndarray   # float32 [N]


def read_triplet_examples(files: Sequence[str], allow_empty: bool = False) -> TripletTable:
    """Read triplets Examples (triplet_example) into memory, each image kept once; no
    triple at all is an error unless `allow_empty` (an empty held-out split)."""
    index: Dict[str, int] = {}
    images: List[bytes] = []
    rows: List[List[int]] = []
    target: List[float] = []
    for path in files:
        for n, raw in enumerate(fused_ranking.read_records(path, f"triplets file {path}")):
            f = tf.train.Example.FromString(raw).features.feature
            missing = [k for k in ["target"] + [f"{r}_{x}" for r in TRIPLET_ROLES
                                                for x in ("name", "image")] if k not in f]
            if missing:
                raise RankingError(f"triplets file {path}: record {n} lacks {missing} "
                                   f"(not a triplets Examples artifact?)")
            row = []
            for role in TRIPLET_ROLES:
                name = f[f"{role}_name"].bytes_list.value[0].decode()
                if name not in index:
                    index[name] = len(images)
                    images.append(f[f"{role}_image"].bytes_list.value[0])
                row.append(index[name])
            rows.append(row)
            target.append(f["target"].float_list.value[0])
    if not rows and not allow_empty:
        raise RankingError(f"triplets {files[0] if files else '(no files)'}: no triples")
    out = np.empty(len(images), dtype=object)
    out[:] = images
    return TripletTable(out, list(index), np.asarray(rows, np.int64).reshape(-1, 3),
                        np.asarray(target, np.float32))
