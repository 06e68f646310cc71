"""What to render: one `ImageJob` per output file, with its Market-1501 name.

A network domain splits its simulated identities into train and test ids (disjoint,
as in Market); every sighting of a train id goes to the train split; for a test id
seen in two or more cameras, one sighting per camera becomes a query and the rest go
to the gallery (ids seen in one camera only stay in the gallery); distractors
(pid 0) and junk (pid -1) are added to the gallery at random recorded places and
times. A lists domain takes every name of the real train/query/gallery lists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from core.datasets import LAYOUTS, SPLITS
from core.names import parse_names, read_name_list
from synth.config import ConfigError, network_params
from synth.domain import stable_key
from synth.network import build_network, random_sightings, simulate_sightings


@dataclass(frozen=True)
class ImageJob:
    """One image to render: its domain, split, Market name and ST point."""
    domain: str
    split: str
    name: str
    pid: int
    camera: int
    sequence: int
    frame: int

    def relpath(self) -> str:
        return os.path.join(LAYOUTS["market"][self.split], self.name)


@dataclass
class DomainPlan:
    name: str
    jobs: List[ImageJob]
    truth: Optional[Dict[str, Any]] = None        # network ground truth, if simulated
    source: str = "network"

    def counts(self) -> Dict[str, int]:
        return {s: sum(j.split == s for j in self.jobs) for s in SPLITS}


@dataclass
class DatasetPlan:
    domains: Dict[str, DomainPlan] = field(default_factory=dict)

    @property
    def jobs(self) -> List[ImageJob]:
        return [j for d in self.domains.values() for j in d.jobs]


def market_name(pid: int, camera: int, sequence: int, frame: int, box: int) -> str:
    """`0002_c1s1_000451_03.jpg` (pid -1 is written `-1`, as in Market)."""
    p = "-1" if pid < 0 else f"{pid:04d}"
    return f"{p}_c{camera}s{sequence}_{frame:06d}_{box:02d}.jpg"


class _Namer:
    """Unique Market names: a clash (same pid, camera, sequence, frame) takes the
    next box number, as a second detection in the same frame would."""

    def __init__(self) -> None:
        self.used: set = set()

    def __call__(self, pid: int, camera: int, sequence: int, frame: int,
                 box: int) -> str:
        while True:
            name = market_name(pid, camera, sequence, frame, box)
            if name not in self.used:
                self.used.add(name)
                return name
            box += 1


def choose_queries(cameras: List[int], rng: np.random.Generator) -> set:
    """Indices of one query image per camera of one test identity, such that every
    query keeps a gallery image of the same identity in another camera (Market's
    protocol needs one). Cameras are tried in random order; one that would leave a
    query without a cross-camera match gets no query."""
    by_cam: Dict[int, List[int]] = {}
    for i, c in enumerate(cameras):
        by_cam.setdefault(c, []).append(i)
    if len(by_cam) < 2:
        return set()
    left = {c: len(v) for c, v in by_cam.items()}    # gallery images per camera
    chosen: Dict[int, int] = {}

    def valid() -> bool:
        return all(any(n > 0 for c2, n in left.items() if c2 != c) for c in chosen)

    for c in rng.permutation(sorted(by_cam)):
        c = int(c)
        left[c] -= 1
        chosen[c] = by_cam[c][int(rng.integers(len(by_cam[c])))]
        if not valid():
            left[c] += 1
            del chosen[c]
    return set(chosen.values())


def plan_network_domain(name: str, dcfg: Dict[str, Any], seed: int) -> DomainPlan:
    """Simulate the domain's camera network and assign sightings to splits."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, stable_key(name), 99]))
    net = build_network(network_params(dcfg), rng)
    n = dcfg["identities"]
    sightings = simulate_sightings(net, n, rng)
    pids = rng.permutation(np.arange(1, n + 1))       # person index -> Market pid
    n_test = int(round(n * dcfg["test_fraction"]))
    test = set(int(p) for p in pids[:n_test])
    namer = _Namer()
    jobs: List[ImageJob] = []
    by_pid: Dict[int, List] = {}
    for s in sightings:
        by_pid.setdefault(int(pids[s.person]), []).append(s)
    for pid in sorted(by_pid):
        seen = by_pid[pid]
        box = lambda: int(rng.integers(0, 4))  # noqa: E731
        if pid not in test:
            for s in seen:
                jobs.append(ImageJob(name, "train", namer(pid, s.camera, s.sequence,
                                                          s.frame, box()),
                                     pid, s.camera, s.sequence, s.frame))
            continue
        queries = choose_queries([s.camera for s in seen], rng)
        for i, s in enumerate(seen):
            split = "query" if i in queries else "gallery"
            jobs.append(ImageJob(name, split, namer(pid, s.camera, s.sequence, s.frame,
                                                    box()),
                                 pid, s.camera, s.sequence, s.frame))
    for pid, count in ((0, dcfg["distractors"]), (-1, dcfg["junk"])):
        for s in random_sightings(net, count, rng):
            jobs.append(ImageJob(name, "gallery",
                                 namer(pid, s.camera, s.sequence, s.frame,
                                       int(rng.integers(0, 4))),
                                 pid, s.camera, s.sequence, s.frame))
    return DomainPlan(name, jobs, truth=net.truth(), source="network")


def plan_lists_domain(name: str, lists_dir: str) -> DomainPlan:
    """One job per name of lists_dir/{train,query,gallery}.txt."""
    jobs: List[ImageJob] = []
    for split in SPLITS:
        path = os.path.join(lists_dir, f"{split}.txt")
        if not os.path.isfile(path):
            raise ConfigError(f"{path}: name list not found (domain {name!r} renders "
                              f"one image per name of {lists_dir}/{{train,query,"
                              f"gallery}}.txt; set --lists)")
        names = read_name_list(path)
        bad = [n for n in names if os.path.basename(n) != n or
               not n.lower().endswith((".jpg", ".jpeg", ".png"))]
        if bad:
            raise ConfigError(f"{path}: {len(bad)} name(s) are not plain image file "
                              f"names, first {bad[0]!r}")
        try:
            points = parse_names(names, None, source=path)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        seen = set()
        for n, p in zip(names, points):
            if n in seen:
                raise ConfigError(f"{path}: name {n!r} is listed twice")
            seen.add(n)
            jobs.append(ImageJob(name, split, n, p.pid, p.camera, p.sequence, p.frame))
    return DomainPlan(name, jobs, truth=None, source=os.path.abspath(lists_dir))


def plan_dataset(cfg: Dict[str, Any], seed: int, lists_dir: str) -> DatasetPlan:
    """Jobs of every domain of a validated configuration."""
    plan = DatasetPlan()
    for name, dcfg in cfg["domains"].items():
        if dcfg["st"] == "lists":
            plan.domains[name] = plan_lists_domain(name, lists_dir)
        else:
            plan.domains[name] = plan_network_domain(name, dcfg, seed)
    return plan
