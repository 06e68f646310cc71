"""Synthetic camera networks with simulated features (for benchmarks).

A network is a set of cameras with mean transit times between them; each person
enters at a random time, walks a random path of camera visits (next camera among
the current one's neighbours, transit ~ gamma around the mean) and is photographed
a few times per visit. Half the identities are train, the other half query/gallery
(one query per identity and camera, the rest gallery). Features come from
../shared/bench/simulate_features.py's `simulate` (imported by path), so the visual
model has the same style as on the real Market lists.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Dict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SIMULATE_PATH = os.environ.get(
    "TFUSION_SIMULATE_FEATURES",
    os.path.join(HERE, "..", "..", "shared", "bench", "simulate_features.py"))


def load_simulator():
    """The shared `simulate_features` module (raises if missing)."""
    if not os.path.isfile(SIMULATE_PATH):
        raise FileNotFoundError(f"{SIMULATE_PATH}: simulate_features.py not found "
                                f"(set TFUSION_SIMULATE_FEATURES)")
    spec = importlib.util.spec_from_file_location("simulate_features", SIMULATE_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def camera_network(n_cameras: int, n_ids: int, transit: float, duration: int,
                   visits: int = 3, shots: int = 3, shot_gap: int = 5,
                   seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    """Splits {train, query, gallery} of ST points (pid, camera, frame, sequence, name).

    Cameras sit on a line (with a link from the last to the first); the mean transit
    time between neighbours c and c+1 is transit·(1 + (c mod 3)) frames.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(1, n_ids + 1):
        t = int(rng.integers(0, duration))
        cam = int(rng.integers(1, n_cameras + 1))
        for v in range(int(rng.integers(2, visits + 1))):
            for s in range(int(rng.integers(1, shots + 1))):
                rows.append((pid, cam, t + s * shot_gap + int(rng.integers(0, shot_gap))))
            step = 1 if rng.random() < 0.5 else -1
            nxt = (cam - 1 + step) % n_cameras + 1
            mean = transit * (1 + (min(cam, nxt) % 3))
            t += shots * shot_gap + int(rng.gamma(8.0, mean / 8.0))
            cam = nxt
    arr = np.array(rows, np.int64)
    train_ids = rng.permutation(n_ids)[: n_ids // 2] + 1
    is_train = np.isin(arr[:, 0], train_ids)
    out = {}
    test = arr[~is_train]
    # one query per (test identity, camera), the rest gallery
    order = rng.permutation(len(test))
    _, first = np.unique(test[order][:, :2], axis=0, return_index=True)
    is_query = np.zeros(len(test), bool)
    is_query[order[first]] = True
    for split, part in (("train", arr[is_train]), ("query", test[is_query]),
                        ("gallery", test[~is_query])):
        names = np.array([f"{p:04d}_c{c}s1_{f:06d}_00.jpg" for p, c, f in part])
        out[split] = {"pid": part[:, 0], "camera": part[:, 1], "frame": part[:, 2],
                      "sequence": np.ones(len(part), np.int64), "name": names}
    return out


NETWORKS = {
    # a few hundred train images, transit times of a few dozen frames: thin evidence
    "small": dict(n_cameras=4, n_ids=160, transit=20.0, duration=6000, seed=1),
    # the same size, crowded: many people in transit at once, so ST evidence is weak
    "small_crowded": dict(n_cameras=5, n_ids=200, transit=30.0, duration=600, seed=3),
    # 8 cameras, one sequence, ~16k train images
    "eight_camera": dict(n_cameras=8, n_ids=3600, transit=400.0, duration=400000,
                         visits=6, shots=3, seed=2),
}


def write_network(name: str, out_dir: str, noise: float = 1.5, seed: int = 0,
                  shuffle_time: bool = False) -> Dict[str, int]:
    """Write {train,query,gallery}.npz of a named network; returns split sizes.

    shuffle_time permutes the frames within each split: no ST signal is left, so the
    fusion must fall back to vision.
    """
    splits = camera_network(**NETWORKS[name])
    if shuffle_time:
        rng = np.random.default_rng(seed + 99)
        for t in splits.values():
            t["frame"] = rng.permutation(t["frame"])
    feats = load_simulator().simulate(splits, noise=noise, seed=seed)
    os.makedirs(out_dir, exist_ok=True)
    for s, t in splits.items():
        np.savez(os.path.join(out_dir, f"{s}.npz"), features=feats[s], **t)
    return {s: len(t["pid"]) for s, t in splits.items()}
