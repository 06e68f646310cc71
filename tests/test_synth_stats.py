"""Per-identity statistics of re-ID splits, and the demo preset against Market-1501."""
import itertools

import numpy as np
import pytest

from core.names import STPoint
from synth.config import load_config
from synth.plan import plan_lists_domain, plan_network_domain
from synth.stats import (COMPARED, dataset_stats, gallery_matches_per_query,
                         split_stats, transit_concentration, within_band)


def P(pid, cam, seq, frame=0):
    return STPoint(pid=pid, camera=cam, frame=frame, sequence=seq)


def brute_force(points):
    people = [p for p in points if p.pid > 0]
    cross = [(a, b) for a, b in itertools.permutations(people, 2)
             if a.pid == b.pid and a.camera != b.camera]
    return len(cross) / len(people), np.mean([a.sequence != b.sequence for a, b in cross])


def test_split_stats_counts_identities_cameras_and_pairs():
    pts = [P(1, 1, 1), P(1, 1, 1), P(1, 2, 1), P(1, 3, 2), P(2, 1, 1), P(2, 2, 2),
           P(0, 1, 1), P(-1, 2, 1)]
    s = split_stats(pts)
    assert (s.images, s.person_images, s.distractors, s.junk) == (8, 6, 1, 1)
    assert s.identities == 2
    assert s.images_per_identity == pytest.approx(3.0)
    assert s.cameras_per_identity == pytest.approx(2.5)
    # pid 1: 4*4 - (2*2 + 1 + 1) = 10 ordered pairs, pid 2: 2; over 6 images
    assert s.cross_camera_matches == pytest.approx(2.0)
    assert s.cross_sequence_share == pytest.approx(8 / 12)


def test_split_stats_match_brute_force_on_random_splits():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pts = [P(int(rng.integers(-1, 8)), int(rng.integers(1, 5)), int(rng.integers(1, 4)))
               for _ in range(int(rng.integers(5, 60)))]
        s = split_stats(pts)
        if not any(p.pid > 0 for p in pts) or s.cross_camera_matches == 0:
            continue
        matches, share = brute_force(pts)
        assert s.cross_camera_matches == pytest.approx(matches)
        assert s.cross_sequence_share == pytest.approx(share)


def test_gallery_matches_and_band():
    q = [P(1, 1, 1), P(2, 2, 1)]
    g = [P(1, 1, 1), P(1, 2, 1), P(1, 3, 1), P(2, 2, 1), P(0, 1, 1)]
    assert gallery_matches_per_query(q, g) == pytest.approx(1.0)   # (2 + 0) / 2
    ref = split_stats([P(1, 1, 1), P(1, 2, 2), P(2, 1, 1), P(2, 2, 1)])
    assert within_band(ref, ref) == {}
    far = split_stats([P(1, 1, 1), P(1, 1, 1), P(1, 1, 1), P(1, 2, 1)])
    assert set(within_band(far, ref)) <= set(COMPARED) and within_band(far, ref)
    with pytest.raises(ValueError, match="gallery"):
        dataset_stats({"train": [], "query": []})


def test_transit_concentration_separates_fixed_transit_from_random():
    rng = np.random.default_rng(1)
    pts = []
    for pid in range(1, 200):
        t = int(rng.integers(0, 100_000))
        pts += [P(pid, 1, 1, t), P(pid, 2, 1, t + 500 + int(rng.integers(-50, 50)))]
    true_share, random_share = transit_concentration(pts, window=100)
    assert true_share == pytest.approx(1.0)
    assert random_share < 0.01
    shuffled = [P(p.pid, p.camera, 1, int(rng.integers(0, 100_000))) for p in pts]
    assert transit_concentration(shuffled, window=100)[0] < 0.1


def _plan_stats(preset, domain, seed):
    jobs = plan_network_domain(domain, load_config(preset)["domains"][domain], seed).jobs
    return dataset_stats({s: [j for j in jobs if j.split == s]
                          for s in ("train", "query", "gallery")})


@pytest.fixture(scope="module")
def market(market_lists):
    jobs = plan_lists_domain("market", market_lists).jobs
    return dataset_stats({s: [j for j in jobs if j.split == s]
                          for s in ("train", "query", "gallery")})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_demo_target_is_market_like_and_affordable(market, seed):
    demo = _plan_stats("demo", "target", seed)
    assert within_band(demo["train"], market["train"], 0.3) == {}
    assert within_band(demo["test"], market["test"], 0.3) == {}
    assert demo["train"].identities < market["train"].identities / 3
    assert demo["train"].images <= 3200
    assert demo["test"].images <= 4000


def test_demo_source_has_many_identities_with_few_images():
    src = _plan_stats("demo", "source", 0)["train"]
    assert 550 <= src.identities <= 650
    assert 4 <= src.images_per_identity <= 6
    assert src.images <= 3500
