"""Ranking metrics: Market protocol, tie rule, blockwise streaming, bad inputs."""
import os

import numpy as np
import pytest

from st_model import metrics
from st_model.metrics import RankingResult, evaluate_features, evaluate_ranking


# ----------------------------------------------------------------- reference

def brute_force(scores, q_pid, q_cam, g_pid, g_cam):
    """Per-query full sort of the whole gallery, the textbook way (torchreid)."""
    best, aps, inps = [], [], []
    for q in range(len(q_pid)):
        s = scores[q]
        keep = (g_pid != -1) & ~((g_pid == q_pid[q]) & (g_cam == q_cam[q]))
        order = np.argsort(-s, kind="stable")          # ties: lower index first
        order = order[keep[order]]
        hit = (g_pid[order] == q_pid[q]) & (q_pid[q] > 0)
        if not hit.any():
            continue
        pos = np.flatnonzero(hit) + 1
        best.append(pos[0])
        aps.append(np.mean(np.arange(1, len(pos) + 1) / pos))
        inps.append(len(pos) / pos[-1])
    best = np.array(best)
    cmc = [100.0 * np.mean(best <= k) for k in range(1, 51)]
    return dict(rank1=cmc[0], rank5=cmc[4], rank10=cmc[9], mAP=100 * np.mean(aps),
                mINP=100 * np.mean(inps), queries=len(best),
                excluded=len(q_pid) - len(best), cmc=cmc)


def lookup(scores):
    """score_fn over a precomputed matrix, recording the size of every call."""
    calls = []

    def fn(q_idx, g_idx):
        calls.append((len(q_idx), len(g_idx)))
        return scores[np.ix_(q_idx, g_idx)]
    fn.calls = calls
    return fn


def assert_matches(result: RankingResult, ref: dict):
    for key in ("rank1", "rank5", "rank10", "mAP", "mINP"):
        assert getattr(result, key) == pytest.approx(ref[key], abs=1e-9), key
    assert result.queries == ref["queries"]
    assert result.excluded == ref["excluded"]
    np.testing.assert_allclose(result.cmc, ref["cmc"], atol=1e-9)


def random_problem(rng, n_q, n_g, n_pid=12, n_cam=4, kind="ties"):
    q_pid = rng.integers(-1, n_pid, n_q)            # some junk / distractor queries
    q_cam = rng.integers(1, n_cam + 1, n_q)
    g_pid = rng.integers(-1, n_pid, n_g)
    g_cam = rng.integers(1, n_cam + 1, n_g)
    same = q_pid[:, None] == g_pid[None, :]          # matches tend to rank high
    if kind == "ties":                               # few values, matches tie negatives
        scores = (rng.integers(0, 6, (n_q, n_g)) + 2 * same) / 5.0
    elif kind == "inf":                              # ties at +-inf too
        scores = rng.choice([-np.inf, -1.0, 0.0, 0.5, np.inf], (n_q, n_g)) + same
    else:
        scores = rng.standard_normal((n_q, n_g)) + 0.3 * same
    return scores, q_pid, q_cam, g_pid, g_cam


@pytest.fixture(params=["sparse", "dense"])
def counting(request, monkeypatch):
    """Force one of the two ways of counting the items ranked above a match."""
    monkeypatch.setattr(metrics, "_SPARSE_COST", 0 if request.param == "sparse"
                        else 10 ** 12)
    return request.param


# ------------------------------------------------------------ hand-computed

# gallery index:   0    1    2    3    4    5    6
G_PID = np.array([1,   2,   1,  -1,   0,   1,   2])
G_CAM = np.array([2,   2,   1,   3,   3,   3,   3])
Q_PID = np.array([1, 2, 3, -1])
Q_CAM = np.array([1, 2, 1, 1])
HAND = np.array([
    # query 0 (pid 1, cam 1): g2 same pid+cam and g3 junk are ignored; valid order
    # g0 .9 (match, rank 1), g4 .85 (distractor), g1 .8, g5 .7 (match, rank 4), g6 .2
    # AP = (1/1 + 2/4) / 2 = 0.75, INP = 2/4
    [0.9, 0.8, 0.95, 0.99, 0.85, 0.7, 0.2],
    # query 1 (pid 2, cam 2): g1 same pid+cam, g3 junk ignored; g2, g4, g6 tie at .6
    # and the lower gallery index ranks first: g2, g4, g6 (match, rank 3), g0, g5
    # AP = 1/3, INP = 1/3
    [0.5, 0.9, 0.6, 0.99, 0.6, 0.1, 0.6],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],    # query 2 (pid 3): no match -> excluded
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7],    # query 3 (junk pid): excluded
])


def test_hand_computed_case(counting):
    r = evaluate_ranking(lookup(HAND), Q_PID, Q_CAM, G_PID, G_CAM)
    assert r.queries == 2 and r.excluded == 2
    assert r.rank1 == pytest.approx(50.0)            # query 0 at rank 1, query 1 at 3
    assert r.rank5 == pytest.approx(100.0) and r.rank10 == pytest.approx(100.0)
    assert r.mAP == pytest.approx(100 * (0.75 + 1 / 3) / 2, abs=1e-12)   # 54.1667
    assert r.mINP == pytest.approx(100 * (0.5 + 1 / 3) / 2, abs=1e-12)
    assert r.cmc[:3] == pytest.approx((50.0, 50.0, 100.0))
    assert r.as_dict() == {"rank1": r.rank1, "rank5": r.rank5, "rank10": r.rank10,
                           "mAP": r.mAP, "queries": 2}
    assert len(r.cmc) == 50
    short = evaluate_ranking(lookup(HAND), Q_PID, Q_CAM, G_PID, G_CAM, max_rank=3)
    assert short.cmc == r.cmc[:3] and short.rank10 == r.rank10


def test_hand_computed_match_ranks_and_per_query_values():
    m = metrics.query_match_ranks(lookup(HAND), Q_PID, Q_CAM, G_PID, G_CAM)
    assert m.n_query == 4 and m.excluded == 2
    assert dict(zip(m.queries.tolist(), [r.tolist() for r in m.ranks])) == \
        {0: [1, 4], 1: [3]}
    assert metrics.best_rank([1, 4]) == 1 and metrics.best_rank([3]) == 3
    assert metrics.average_precision([1, 4]) == pytest.approx(0.75, abs=1e-15)
    assert metrics.average_precision([3]) == pytest.approx(1 / 3, abs=1e-15)
    assert metrics.inverse_negative_penalty([1, 4]) == 0.5
    r = metrics.ranking_result(m, max_rank=5)
    assert (r.rank1, r.rank5, r.queries, r.excluded) == (50.0, 100.0, 2, 2)
    for bad in ([], [0, 2], [3, 3], [4, 2], [[1, 2]], [1.0, 2.0]):
        with pytest.raises(ValueError, match="match ranks must"):
            metrics.average_precision(np.array(bad))


def test_match_ranks_agree_with_brute_force_positions():
    rng = np.random.default_rng(11)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 40, 200, kind="ties")
    m = metrics.query_match_ranks(lookup(scores), q_pid, q_cam, g_pid, g_cam, 6, 17)
    got = dict(zip(m.queries.tolist(), m.ranks))
    for q in range(len(q_pid)):
        keep = (g_pid != -1) & ~((g_pid == q_pid[q]) & (g_cam == q_cam[q]))
        order = np.argsort(-scores[q], kind="stable")
        order = order[keep[order]]
        pos = np.flatnonzero((g_pid[order] == q_pid[q]) & (q_pid[q] > 0)) + 1
        if pos.size:
            np.testing.assert_array_equal(got.pop(q), pos)
    assert not got and m.excluded == len(q_pid) - m.queries.size > 0


def test_tie_rule_follows_gallery_index():
    # move query 1's match (pid 2, cam 3) to gallery index 0 and the pid-1 image
    # there to index 6: the three-way tie at .6 now puts the match first.
    perm = np.array([6, 1, 2, 3, 4, 5, 0])
    g_pid, g_cam, scores = G_PID[perm], G_CAM[perm], HAND[1:2, perm]
    r = evaluate_ranking(lookup(scores), Q_PID[1:2], Q_CAM[1:2], g_pid, g_cam)
    assert (r.rank1, r.mAP) == (pytest.approx(100.0), pytest.approx(100.0))


def test_distractors_are_negatives_and_junk_is_ignored():
    g_pid = np.array([0, -1, 7])
    g_cam = np.array([2, 2, 2])
    scores = np.array([[0.9, 0.95, 0.5]])      # distractor above the match, junk higher
    r = evaluate_ranking(lookup(scores), [7], [1], g_pid, g_cam)
    assert r.rank1 == 0.0 and r.rank5 == 100.0
    assert r.mAP == pytest.approx(50.0)        # match at rank 2 (junk skipped)
    # a distractor query names nobody: other distractors are not its matches
    with pytest.raises(ValueError, match="no valid queries"):
        evaluate_ranking(lookup(scores), [0], [1], g_pid, g_cam)


def test_same_camera_images_of_the_query_identity_are_ignored():
    # g0 is the query's identity in the query's camera: neither a match nor a negative
    scores = np.array([[0.99, 0.5, 0.4]])
    r = evaluate_ranking(lookup(scores), [3], [1], [3, 3, 5], [1, 2, 2])
    assert r.rank1 == 100.0 and r.mAP == 100.0
    # the same image in another camera is a match, so it counts
    r = evaluate_ranking(lookup(scores), [3], [1], [3, 3, 5], [4, 2, 2])
    assert r.rank1 == 100.0 and r.mAP == pytest.approx(100.0)
    # and an other identity's image in the query camera is a negative
    r = evaluate_ranking(lookup(scores), [3], [1], [4, 3, 5], [1, 2, 2])
    assert r.rank1 == 0.0 and r.mAP == pytest.approx(50.0)


# ----------------------------------------------------- against brute force

@pytest.mark.parametrize("seed,kind,blocks", [
    (0, "ties", (7, 5)), (1, "ties", (1, 1)), (2, "continuous", (16, 33)),
    (3, "inf", (4, 9)), (4, "ties", (1000, 1000)), (5, "continuous", (3, 64)),
    (6, "inf", (50, 2)), (7, "ties", (13, 17)),
])
def test_agrees_with_brute_force(seed, kind, blocks, counting):
    rng = np.random.default_rng(seed)
    n_q, n_g = rng.integers(20, 80), rng.integers(50, 300)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, n_q, n_g, kind=kind)
    ref = brute_force(scores, q_pid, q_cam, g_pid, g_cam)
    assert 0 < ref["excluded"] < n_q                 # the case exercises exclusion
    r = evaluate_ranking(lookup(scores), q_pid, q_cam, g_pid, g_cam, *blocks)
    assert_matches(r, ref)


def test_many_matches_per_query_agree_with_brute_force(counting):
    rng = np.random.default_rng(11)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 40, 400, n_pid=3,
                                                        kind="ties")
    r = evaluate_ranking(lookup(scores), q_pid, q_cam, g_pid, g_cam, 6, 37)
    assert_matches(r, brute_force(scores, q_pid, q_cam, g_pid, g_cam))


def test_block_sizes_give_identical_results(counting):
    rng = np.random.default_rng(21)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 90, 250, kind="ties")
    results = [evaluate_ranking(lookup(scores), q_pid, q_cam, g_pid, g_cam, qb, gb)
               for qb, gb in [(1000, 1000), (1, 1), (8, 3), (17, 64), (90, 249)]]
    assert all(r == results[0] for r in results[1:])


def test_score_fn_is_called_in_blocks_only():
    rng = np.random.default_rng(5)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 60, 500)
    fn = lookup(scores)
    evaluate_ranking(fn, q_pid, q_cam, g_pid, g_cam, query_block=8, gallery_block=32)
    assert fn.calls and max(q for q, _ in fn.calls) <= 8
    assert max(g for _, g in fn.calls) <= 32


def test_score_jitter_between_calls_does_not_count_a_match_above_itself(counting):
    # scores well separated, but each call returns them shifted by a tiny, call-
    # dependent amount (as a re-blocked float matmul may): ranks must not change.
    rng = np.random.default_rng(8)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 50, 200, kind="ties")
    same = q_pid[:, None] == g_pid[None, :]
    distinct = rng.permutation(scores.size).reshape(scores.shape)
    scores = 1e-3 * (distinct + scores.size * same)
    n_calls = [0]

    def jittery(q_idx, g_idx):
        n_calls[0] += 1
        return scores[np.ix_(q_idx, g_idx)] + (1e-9 if n_calls[0] % 2 else -1e-9)
    r = evaluate_ranking(jittery, q_pid, q_cam, g_pid, g_cam, 7, 23)
    assert_matches(r, brute_force(scores, q_pid, q_cam, g_pid, g_cam))


def test_arrays_returned_by_score_fn_are_never_modified():
    rng = np.random.default_rng(4)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 40, 150)
    kept = []

    def caching(q_idx, g_idx):          # keeps what it returns, as a cache would
        kept.append(scores[np.ix_(q_idx, g_idx)])
        return kept[-1]
    r = evaluate_ranking(caching, q_pid, q_cam, g_pid, g_cam, 8, 32)
    assert_matches(r, brute_force(scores, q_pid, q_cam, g_pid, g_cam))
    assert kept and not any(np.isnan(k).any() for k in kept)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, bool])
def test_score_dtypes(dtype, counting):
    rng = np.random.default_rng(9)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 30, 120, kind="ties")
    scores = (scores * 5).astype(dtype)
    r = evaluate_ranking(lookup(scores), q_pid, q_cam, g_pid, g_cam, 4, 16)
    assert_matches(r, brute_force(scores.astype(np.float64), q_pid, q_cam, g_pid, g_cam))


# ----------------------------------------------------------- features

def test_evaluate_features_is_cosine_ranking():
    rng = np.random.default_rng(3)
    _, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 70, 260)
    centres = rng.standard_normal((20, 16))
    qf = centres[q_pid + 1] + 0.8 * rng.standard_normal((70, 16))
    gf = centres[g_pid + 1] + 0.8 * rng.standard_normal((260, 16))
    qf[0] *= 1000.0                                   # scale must not matter
    qn = qf / np.linalg.norm(qf, axis=1, keepdims=True)
    gn = gf / np.linalg.norm(gf, axis=1, keepdims=True)
    ref = brute_force(qn @ gn.T, q_pid, q_cam, g_pid, g_cam)
    r = evaluate_features(qf.astype(np.float32), gf.astype(np.float32), q_pid, q_cam,
                          g_pid, g_cam, query_block=16, gallery_block=50)
    assert r.mAP == pytest.approx(ref["mAP"], abs=1e-4)      # float32 inputs
    r64 = evaluate_features(qf, gf, q_pid, q_cam, g_pid, g_cam, 16, 50)
    assert_matches(r64, ref)
    assert r64.rank1 > 50.0                          # the features do carry identity


def test_evaluate_features_rejects_bad_features():
    f = np.ones((3, 4))
    pid, cam = np.array([1, 2, 3]), np.array([1, 1, 1])
    bad = f.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="query_features.*NaN.*row 1"):
        evaluate_features(bad, f, pid, cam, pid, cam + 1)
    zero = f.copy()
    zero[2] = 0
    with pytest.raises(ValueError, match="gallery_features.*all-zero"):
        evaluate_features(f, zero, pid, cam, pid, cam + 1)
    with pytest.raises(ValueError, match="dimension"):
        evaluate_features(f, np.ones((3, 5)), pid, cam, pid, cam + 1)
    with pytest.raises(ValueError, match="length mismatch.*4 query feature rows"):
        evaluate_features(np.ones((4, 4)), f, pid, cam, pid, cam + 1)
    with pytest.raises(ValueError, match="gallery_features.*shape"):
        evaluate_features(f, np.ones(3), pid, cam, pid, cam + 1)


# ------------------------------------------------------------- bad inputs

def test_bad_inputs_raise_clear_errors():
    fn = lookup(HAND)
    with pytest.raises(ValueError, match="length mismatch.*query_pid has 3.*query_cam"):
        evaluate_ranking(fn, Q_PID[:3], Q_CAM, G_PID, G_CAM)
    with pytest.raises(ValueError, match="length mismatch.*gallery_pid"):
        evaluate_ranking(fn, Q_PID, Q_CAM, G_PID, G_CAM[:-1])
    with pytest.raises(ValueError, match="query set is empty"):
        evaluate_ranking(fn, [], [], G_PID, G_CAM)
    with pytest.raises(ValueError, match="no valid queries"):
        evaluate_ranking(fn, Q_PID[2:], Q_CAM[2:], G_PID, G_CAM)
    with pytest.raises(ValueError, match="gallery is empty"):
        evaluate_ranking(fn, Q_PID, Q_CAM, [], [])
    with pytest.raises(ValueError, match="query_pid.*integers"):
        evaluate_ranking(fn, Q_PID + 0.5, Q_CAM, G_PID, G_CAM)
    with pytest.raises(ValueError, match="gallery_block must be a positive integer"):
        evaluate_ranking(fn, Q_PID, Q_CAM, G_PID, G_CAM, gallery_block=0)
    with pytest.raises(ValueError, match="fusion: .*query_cam"):
        evaluate_ranking(fn, Q_PID, Q_CAM[:1], G_PID, G_CAM, source="fusion")


def test_nan_scores_and_wrong_shapes_are_rejected():
    nan = HAND.copy()
    nan[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN scores.*query 1, gallery 5"):
        evaluate_ranking(lookup(nan), Q_PID, Q_CAM, G_PID, G_CAM, 2, 3)
    with pytest.raises(ValueError, match="score_fn returned shape"):
        evaluate_ranking(lambda q, g: np.zeros((len(g), len(q) + 1)),
                         Q_PID, Q_CAM, G_PID, G_CAM)


def test_progress_goes_to_stderr(capsys):
    evaluate_ranking(lookup(HAND), Q_PID, Q_CAM, G_PID, G_CAM, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "ranked 2/2 queries" in out.err


# ------------------------------------------------------------ real Market lists

def test_market_protocol_on_the_real_lists(market_lists):
    """All 3,368 Market queries have a true match; a perfect score is 100 / 100."""
    from core.names import parse_name, read_name_list

    def points(split):
        pts = [parse_name(n, "market")
               for n in read_name_list(os.path.join(market_lists, f"{split}.txt"))]
        return (np.array([p.pid for p in pts]), np.array([p.camera for p in pts]))
    q_pid, q_cam = points("query")
    g_pid, g_cam = points("gallery")
    def perfect(q_idx, g_idx):     # identity first, arbitrary order within groups
        same = q_pid[q_idx, None] == g_pid[None, g_idx]
        return same + ((q_idx[:, None] * 7919 + g_idx[None, :] * 104729) % 997) / 2000
    r = evaluate_ranking(perfect, q_pid, q_cam, g_pid, g_cam, 512, 8192)
    assert (r.queries, r.excluded) == (3368, 0)
    assert r.rank1 == 100.0 and r.mAP == pytest.approx(100.0)


def test_drifting_score_fn_cannot_push_precision_above_one():
    # every call scores all pairs a little lower than the call before, so each
    # match's own score beats every streamed score: ranks must still be distinct
    n_calls = [0]

    def drifting(q_idx, g_idx):
        n_calls[0] += 1
        return np.full((q_idx.size, g_idx.size), 0.5 - 1e-12 * n_calls[0])
    g_pid, g_cam = np.array([1, 1, 1, 2]), np.array([2, 3, 4, 2])
    r = evaluate_ranking(drifting, [1], [1], g_pid, g_cam, gallery_block=2)
    assert r.mAP == pytest.approx(100.0) and r.mINP == pytest.approx(100.0)


def test_ranked_gallery_and_evaluable_queries_follow_the_protocol():
    fn = lookup(HAND)
    g, s, match = metrics.ranked_gallery(fn, 0, Q_PID, Q_CAM, G_PID, G_CAM, top=10)
    assert g.tolist() == [0, 4, 1, 5, 6] and match.tolist() == [1, 0, 0, 1, 0]
    np.testing.assert_allclose(s, [0.9, 0.85, 0.8, 0.7, 0.2])
    g, _, match = metrics.ranked_gallery(fn, 1, Q_PID, Q_CAM, G_PID, G_CAM, top=3,
                                         gallery_block=2)
    assert g.tolist() == [2, 4, 6] and match.tolist() == [0, 0, 1]      # tie rule
    assert metrics.evaluable_queries(Q_PID, Q_CAM, G_PID, G_CAM).tolist() == [0, 1]
    rng = np.random.default_rng(9)
    scores, q_pid, q_cam, g_pid, g_cam = random_problem(rng, 30, 120, kind="inf")
    ref = brute_force(scores, q_pid, q_cam, g_pid, g_cam)
    firsts = []
    for q in metrics.evaluable_queries(q_pid, q_cam, g_pid, g_cam):
        _, _, match = metrics.ranked_gallery(lookup(scores), q, q_pid, q_cam, g_pid,
                                             g_cam, top=120, gallery_block=7)
        firsts.append(1 + int(np.argmax(match)))
    assert len(firsts) == ref["queries"]
    assert 100.0 * np.mean(np.array(firsts) == 1) == pytest.approx(ref["rank1"])
    np.testing.assert_allclose([100.0 * np.mean(np.array(firsts) <= k)
                                for k in range(1, 51)], ref["cmc"])
    with pytest.raises(ValueError, match="query index 4 outside"):
        metrics.ranked_gallery(fn, 4, Q_PID, Q_CAM, G_PID, G_CAM, top=3)
