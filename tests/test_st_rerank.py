"""k-reciprocal re-ranking (st_model/rerank.py) against a dense reference written
from Zhong et al.'s recipe, and visit pooling (st_model/visits.py) against brute
force."""
import numpy as np
import pytest

from st_model import rerank, visits, workers


def _similarity(n=70, ids=9, dim=8, seed=0):
    """A dense similarity of clustered unit vectors (ties impossible)."""
    rng = np.random.default_rng(seed)
    proto = rng.standard_normal((ids, dim)) * 1.5
    x = proto[rng.integers(0, ids, n)] + rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def _dense_reference(s, n_query, k1, k2, lam, tau):
    """Zhong et al.'s re-ranking on a dense [n, n] similarity, loop by loop
    (distance d = −s/τ; self first)."""
    n = s.shape[0]
    s = s.copy()
    np.fill_diagonal(s, np.inf)
    rank = np.argsort(-s, axis=1, kind="stable")

    def recip(i, k):
        fwd = rank[i, :k + 1]
        return np.array([j for j in fwd if i in rank[j, :k + 1]])

    v = np.zeros((n, n))
    for i in range(n):
        r = recip(i, k1)
        exp = list(r)
        for j in r:
            rj = recip(j, int(np.around(k1 / 2)))
            if len(np.intersect1d(rj, r)) > 2 / 3 * len(rj):
                exp.extend(rj)
        exp = np.unique(exp)
        si = s[i, exp].copy()
        best = si[exp != i].max() if (exp != i).any() else 0.0
        si[exp == i] = best
        w = np.exp((si - best) / tau)
        v[i, exp] = w / w.sum()
    v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jac = np.zeros((n_query, n - n_query))
    for q in range(n_query):
        for g in range(n_query, n):
            jac[q, g - n_query] = (np.minimum(v[q], v[g]).sum()
                                   / np.maximum(v[q], v[g]).sum())
    np.fill_diagonal(s, 0.0)
    return jac, (1 - lam) * jac + lam * s[:n_query, n_query:] / tau


@pytest.mark.parametrize("k1,k2,tau", [(6, 3, 1.0), (10, 1, 0.2), (4, 4, 50.0)])
@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_blockwise_rerank_matches_the_dense_reference(k1, k2, tau, threads):
    with workers.threads(threads):
        _check_against_the_dense_reference(k1, k2, tau)


def _check_against_the_dense_reference(k1, k2, tau):
    s = _similarity()
    n, nq = s.shape[0], 12
    params = rerank.RerankParams(k1=k1, k2=k2, lam=0.3, tau=tau)
    block = lambda r, c: s[np.ix_(r, c)]  # noqa: E731
    pairs = lambda r, c: s[r, c]  # noqa: E731
    index, _ = rerank.neighbour_lists(block, n, max(k1 + 1, k2), row_block=16,
                                      col_block=8)
    v = rerank.query_expansion(rerank.set_weights(rerank.expanded_sets(index, k1, n),
                                                  pairs, tau), index, k2)
    overlap = rerank.JaccardOverlap(v[:nq], v[nq:])
    jac, final = _dense_reference(s, nq, k1, k2, 0.3, tau)
    assert jac.max() > 0.2 and (jac == 0).any()          # a non-trivial case
    np.testing.assert_allclose(overlap.toarray(), jac, atol=1e-12)
    for lo in range(0, nq, 5):          # query blocks, as a ranking asks for them
        rows = np.arange(lo, min(lo + 5, nq))
        np.testing.assert_allclose(overlap.rows(rows), jac[rows], atol=1e-12)
    got = rerank.reranked_score(lambda q, g: s[np.ix_(q, g + nq)], overlap, params)(
        np.arange(nq), np.arange(n - nq))
    np.testing.assert_allclose(got, final, atol=1e-12)
    overlap2, sizes = rerank.rerank_overlap(block, pairs, nq, n, params)
    np.testing.assert_allclose(overlap2.toarray(), jac, atol=1e-12)
    assert sizes["reciprocal_set"] >= 1


def test_expansion_adds_a_neighbours_set_only_when_it_mostly_overlaps():
    # items 0-3 one tight group, 4 close to 0 only one-way
    s = np.full((6, 6), -1.0)
    for a in range(4):
        for b in range(4):
            s[a, b] = 1.0 - 0.01 * abs(a - b)
    s[4, 0], s[0, 4], s[5, 4], s[4, 5] = 0.5, -0.5, 0.9, 0.9
    index, _ = rerank.neighbour_lists(lambda r, c: s[np.ix_(r, c)], 6, 4)
    sets = rerank.expanded_sets(index, 3, 6).toarray() > 0
    assert sets[0, :4].all() and not sets[0, 4]
    assert sets[4, 5] and sets[5, 4] and not sets[4, 0]


def test_window_pairs_are_every_same_node_pair_within_the_window_once():
    rng = np.random.default_rng(1)
    node = rng.integers(0, 3, 200)
    frame = rng.integers(0, 300, 200)
    for lo, hi in ((0, 10), (20, 45)):
        i, j = visits.window_pairs(node, frame, lo, hi)
        got = {tuple(sorted(p)) for p in zip(i, j)}
        assert len(got) == i.size
        d = np.abs(frame[:, None] - frame[None, :])
        ok = (node[:, None] == node[None, :]) & (d >= lo) & (d <= hi)
        ok[np.tril_indices(200)] = False
        assert got == {tuple(p) for p in np.argwhere(ok)}


def test_link_threshold_keeps_the_estimated_false_share_within_fdr():
    rng = np.random.default_rng(2)
    far = rng.normal(0.0, 0.1, 5000)
    near = np.r_[rng.normal(0.0, 0.1, 500), rng.normal(0.6, 0.05, 100)]
    c0 = visits.link_threshold(near, far, 0.1)
    assert 0.2 < c0 < 0.5
    links = (near >= c0).sum()
    false = (far >= c0).sum() * near.size / far.size
    assert false <= 0.1 * links
    assert visits.link_threshold(rng.normal(0, 0.1, 50), far, 0.1) > 0.3
    assert visits.link_threshold(near, np.zeros(0), 0.1) == np.inf


def test_pooled_features_are_unit_means_of_linked_detections():
    x = np.eye(4, dtype=np.float32)
    p = visits.pooled_features(x, np.array([0, 1]), np.array([1, 2]), beta=0.5)
    want = np.array([[1, .5, 0, 0], [.5, 1, .5, 0], [0, .5, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(p, want / np.linalg.norm(want, axis=1, keepdims=True),
                               rtol=1e-6)


def test_reranked_train_ranking_is_eq6_over_the_train_split_alone():
    """The RankNet teacher with rerank_teacher (fused_rerank.reranked_train_top_n):
    every train image's top-n other train images by eq. 6, the Jaccard overlap taken
    against every other train image, checked against dense sums over V'."""
    from dataclasses import replace

    import report_case
    from st_model.config import FusionRule
    from st_model.fused_rerank import params_of, pool_visits, reranked_train_top_n
    from st_model.scoring import BlockScorer
    train = report_case.build_case()["train"]
    tables = report_case.st_tables(train)
    config = replace(FusionRule(), rerank_k1=8, rerank_k2=3, ranking_top_n=7)
    idx, score, info = reranked_train_top_n(train, tables, config, 25.0)
    n = len(train)
    assert idx.shape == score.shape == (n, 7) and info["reciprocal_set"] >= 1
    items, _ = pool_visits(train, config, 25.0)
    scorer = BlockScorer(tables, items, items, config)
    v, _ = rerank.rerank_weights(scorer, scorer.pairs, n, params_of(config))
    v = v.toarray()
    jac = np.array([[np.minimum(v[a], v[b]).sum() / np.maximum(v[a], v[b]).sum()
                     for b in range(n)] for a in range(n)])
    s = np.asarray(scorer(np.arange(n), np.arange(n)), np.float64)
    want = (1 - config.rerank_lambda) * jac + config.rerank_lambda * s / config.rerank_tau
    np.fill_diagonal(want, -np.inf)
    assert (jac[~np.eye(n, dtype=bool)] > 0).any()
    order = np.argsort(-want, axis=1, kind="stable")[:, :7]
    np.testing.assert_allclose(score, np.take_along_axis(want, order, 1), atol=1e-12)
    np.testing.assert_array_equal(idx, order)
    assert not (idx == np.arange(n)[:, None]).any()
