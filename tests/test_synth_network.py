"""The simulated camera network: links, transit times, sessions with own clocks."""
import numpy as np
import pytest

from synth.config import load_config, network_params
from synth.network import (NetworkParams, build_network, simulate_sightings, walk)
from synth.plan import choose_queries, plan_network_domain
from synth.stats import transit_concentration


@pytest.fixture(scope="module")
def net():
    p = NetworkParams(cameras=5, sessions=3, duration_s=3000.0, transit_s=(20.0, 80.0),
                      one_way=0.5, extra_links=2, revisit_prob=0.0)
    return build_network(p, np.random.default_rng(0))


def test_walks_follow_links_with_their_transit_times(net):
    rng = np.random.default_rng(1)
    links = {(l.src, l.dst): l for l in net.links}
    deltas = {}
    for _ in range(3000):
        visits = walk(net, rng)
        for (a, ta), (b, tb) in zip(visits[:-1], visits[1:]):
            assert (a, b) in links, f"walked {a}->{b}, not a link"
            deltas.setdefault((a, b), []).append(tb - ta)
    dwell = np.mean(net.params.dwell_s)
    checked = 0
    for key, d in deltas.items():
        if len(d) >= 100:
            assert np.mean(d) == pytest.approx(links[key].mean_s + dwell, rel=0.1)
            checked += 1
    assert checked >= 3
    # one-way links exist and are never walked backwards
    one_way = [k for k in links if (k[1], k[0]) not in links]
    assert one_way and not any((b, a) in deltas for a, b in one_way)


def test_sessions_have_own_clocks(net):
    sightings = simulate_sightings(net, 400, np.random.default_rng(2))
    fps = net.params.fps
    sessions = {(s.camera, s.sequence): s for s in net.sessions}
    for s in sightings[:500]:
        sess = sessions[(s.camera, s.sequence)]
        assert sess.start_s <= s.time_s < sess.end_s
        assert s.frame == sess.first_frame + round((s.time_s - sess.start_s) * fps)
    # Session boundaries differ per camera, so one person's cross-camera sightings
    # sometimes fall into different sequences (as in Market-1501).
    by_person = {}
    for s in sightings:
        by_person.setdefault(s.person, []).append(s)
    cross = same = 0
    for seen in by_person.values():
        for i, a in enumerate(seen):
            for b in seen[i + 1:]:
                if a.camera != b.camera:
                    cross += a.sequence != b.sequence
                    same += a.sequence == b.sequence
    assert cross > 0.05 * (cross + same) and same > 0


def test_people_reappear_in_the_same_camera():
    cfg = load_config("demo")["domains"]["target"]
    plan = plan_network_domain("target", cfg, seed=0)
    fps = network_params(cfg).fps
    revisits = 0
    by = {}
    for j in plan.jobs:
        if j.pid > 0:
            by.setdefault((j.pid, j.camera, j.sequence), []).append(j.frame)
    for frames in by.values():
        f = np.sort(frames)
        revisits += int(np.any(np.diff(f) > 30 * fps))
    assert revisits >= 10


def test_queries_always_keep_a_cross_camera_match():
    rng = np.random.default_rng(0)
    for _ in range(300):
        cams = list(rng.integers(1, 4, rng.integers(1, 7)))
        q = choose_queries(cams, rng)
        qcams = [cams[i] for i in q]
        assert len(set(qcams)) == len(qcams)      # at most one query per camera
        for i in q:
            assert any(cams[k] != cams[i] for k in range(len(cams)) if k not in q)
        if len(set(cams)) >= 2:
            assert q, cams


def test_some_cameras_number_their_sequences_later():
    rng = np.random.default_rng(0)
    plain = build_network(NetworkParams(sessions=3, renumber_prob=0.0), rng)
    assert {s.sequence for s in plain.sessions} == {1, 2, 3}
    shifted = build_network(NetworkParams(sessions=3, renumber_prob=1.0, renumber_max=2),
                            rng)
    for c in range(1, 7):
        seqs = sorted(s.sequence for s in shifted.sessions if s.camera == c)
        assert seqs[0] in (2, 3) and seqs == list(range(seqs[0], seqs[0] + 3))


def test_same_person_time_deltas_are_concentrated():
    """What TFusion's ST model learns: within a (camera, sequence) node pair, a
    person's cross-camera time deltas are far more concentrated than random pairs'
    (each node pair has its own clock offset, so the window sits on its median)."""
    cfg = load_config("demo")["domains"]["target"]
    jobs = [j for j in plan_network_domain("target", cfg, seed=0).jobs
            if j.split == "train"]
    true_share, random_share = transit_concentration(jobs, window=1000)  # 40 s
    assert true_share > 0.3
    assert true_share > 10 * random_share
