"""The ST estimator on small synthetic networks where the truth is known: soft
neighbour weights, evidence read against the chance level, the cross-validated
bandwidth, the frame step, thin evidence and the oracle model."""
from dataclasses import replace

import numpy as np
import pytest

from core.features import make_feature_set
from st_model import chance, estimate, random_model, smoothing
from st_model.config import FusionRule, STConfig
from st_model.evaluation import evaluate
from st_model.scoring import STTables
from st_model.st_artifact import load_st_model, save_st_model

TRANSIT = 300       # frames from camera 1 to camera 2 (and back: −300)


def _network(n_ids=150, noise=1.0, shots=3, shuffle=False, seed=0, duration=60_000):
    """Each person: `shots` images in camera 1 a few frames apart, then the same in
    camera 2 TRANSIT ± 15 frames later; x = prototype + noise. Returns (train, query,
    gallery) with disjoint identities (half train)."""
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(1, n_ids + 1):
        t0 = int(rng.integers(0, duration))
        t1 = t0 + int(rng.normal(TRANSIT, 15))
        for cam, t in ((1, t0), (2, t1)):
            for s in range(shots):
                rows.append((pid, cam, t + 4 * s))
    arr = np.array(rows, np.int64)
    protos = rng.standard_normal((n_ids + 1, 16))
    x = protos[arr[:, 0]] + noise * rng.standard_normal((len(arr), 16))
    frame = rng.permutation(arr[:, 2]) if shuffle else arr[:, 2]
    train = arr[:, 0] <= n_ids // 2
    test = np.flatnonzero(~train)
    is_query = np.zeros(len(arr), bool)
    is_query[test[(arr[test, 1] == 1) & (np.arange(test.size) % shots == 0)]] = True
    gallery = ~train & ~is_query

    def split(m):
        return make_feature_set(x[m], arr[m, 1], frame[m], None, arr[m, 0])
    return split(train), split(is_query), split(gallery)


@pytest.fixture(scope="module")
def weak_network():
    return _network(noise=1.6)


def test_neighbour_weights_soft_hard_and_missing():
    cos = np.array([[0.9, 0.8, -np.inf], [0.5, 0.5, 0.1]])
    best_row = np.array([0.9, 0.5])
    best_col = np.array([[0.95, 0.8, 0.0], [0.5, 0.7, 0.1]])   # each neighbour's best
    w = estimate.neighbour_weights(cos, best_row, best_col, (0.0, 0.1), 2.0)
    # gap to the better of the two images' best scores, in σ units, times β
    np.testing.assert_allclose(w[0], [np.exp(-1.0), np.exp(-2.0), 0.0])
    np.testing.assert_allclose(w[1], [1.0, np.exp(-4.0), np.exp(-8.0)])
    np.testing.assert_array_equal(
        estimate.neighbour_weights(cos, best_row, best_col, (0.0, 0.1), None),
        [[1, 1, 0], [1, 1, 1]])


def test_frame_step_finds_the_sampling_period_only_when_there_is_one():
    rng = np.random.default_rng(0)
    assert estimate.frame_step(rng.integers(0, 10**6, 5000)) == 1
    assert estimate.frame_step(25 * rng.integers(0, 10**5, 5000) + 1) == 25


def test_true_pair_weight_keeps_excess_and_deficit_and_drops_noise():
    b = 50
    random = np.zeros((2, 2, b), np.int64)
    random[0, 1] = 1000
    w_total = 100.0
    visual = np.zeros((2, 2, b))
    visual[0, 1] = w_total / b          # exactly the chance level
    visual[0, 1, 10] += 20.0            # a transit peak
    visual[0, 1, 30] -= 1.9             # fewer neighbours than chance
    visual[0, 1, 40] += 0.5             # a wobble within the noise
    sq = visual.copy()                  # unit weights: Σw² = Σw
    sigma = np.zeros((2, 2))
    out = chance.true_pair_weight(visual, random.astype(float), visual, sq, random,
                                  sigma, 1.0, 0.5)
    level = 0.5 * visual[0, 1].sum() / b            # (1 − c) · W · r
    sd = np.sqrt(visual[0, 1].sum() / b + 1.0)      # chance noise + one delta
    assert out[0, 1, 10] == pytest.approx(level + visual[0, 1, 10] - visual[0, 1].sum() / b
                                          - sd, rel=1e-6)
    assert out[0, 1, 30] < level                     # deficit kept
    assert out[0, 1, 40] == pytest.approx(level)     # noise dropped
    assert out[0, 1, 0] == pytest.approx(level)
    assert (out[1] == 0).all() and (out[0, 0] == 0).all()
    # the fit finds almost no true neighbours (c → 1): the surplus is capped at
    # their mass S = (1 − c) W, so one peak cannot become the whole ST model
    few = chance.true_pair_weight(visual, random.astype(float), visual, sq, random,
                                  sigma, 1.0, 0.999)
    surplus = np.maximum(few[0, 1] - 0.001 * visual[0, 1].sum() / b, 0).sum()
    assert surplus <= 0.001 * visual[0, 1].sum() + 1e-9
    # chance_level "whole": the whole chance level W · r under the same deviations
    whole = chance.true_pair_weight(visual, random.astype(float), visual, sq, random,
                                    sigma, 1.0, 0.5, whole_chance=True)
    np.testing.assert_allclose(whole[0, 1] - out[0, 1], level, rtol=1e-9)
    # revisits (broad share g of the background c): the broad part is true mass
    # spread like the deltas smoothed at H (b̂), kept without passing the threshold
    broad = np.zeros_like(visual)
    broad[0, 1, 20:30] = 0.1
    rev = chance.true_pair_weight(visual, random.astype(float), visual, sq, random,
                                  sigma, 1.0, 0.5, broad=broad, broad_share=0.4)
    w = visual[0, 1].sum()
    base = 0.5 * w / b + 0.5 * 0.4 * w * broad[0, 1]    # (1 − c) W r + c g W b̂
    assert rev[0, 1, 0] == pytest.approx(base[0])
    assert rev[0, 1, 25] > out[0, 1, 25]                # revisits lift P_st there
    null = (1 - 0.2) * w / b + 0.2 * w * broad[0, 1]    # the chance level with revisits
    assert rev[0, 1, 10] == pytest.approx(base[10] + visual[0, 1, 10] - null[10] - sd,
                                          rel=1e-6)


def test_sure_threshold_is_high_on_noise_and_low_on_structure():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 1, 2000))
    z[1, 0, :600] += rng.normal(0, 4, 600)              # a pair with real deviations
    lam = chance.sure_threshold(z)[:, 0, 0]
    assert lam[0] >= 2.0 and lam[1] <= 1.2


def test_sure_threshold_minimises_the_risk_computed_per_threshold():
    # the slot-cumulative SURE against the risk summed directly for each λ, with
    # |z| exactly on thresholds (the ≤ boundary) and pairs of several kinds
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 4, 300)) * rng.uniform(0.3, 4, (3, 4, 1))
    z[0, 0, :50] = np.round(z[0, 0, :50], 1)
    z[1, 1] = 0.0
    t = chance.SURE_THRESHOLDS
    z2 = z[..., None] ** 2
    risk = (np.minimum(z2, t * t) - 2.0 * (z2 <= t * t)).sum(axis=2)
    ref = t[np.argmin(risk, axis=2)]
    np.testing.assert_array_equal(chance.sure_threshold(z)[..., 0], ref)


def test_cross_validated_bandwidth_does_not_collapse_on_repeated_deltas():
    rng = np.random.default_rng(0)
    # 150 visits: each gives 4 near-identical deltas (one visit, several images)
    base = rng.normal(500, 60, 150).round()
    delta = np.repeat(base, 4) + np.tile([0, 1, 2, 3], 150)
    anchor_time = np.repeat(rng.integers(0, 10**6, 150), 4)
    fold = estimate.delta_folds(np.zeros(delta.size, np.int64), anchor_time, 1000)
    node_pair = np.zeros(delta.size, np.int64)
    bg = np.full(delta.size, 1e-5)
    cands = smoothing.bandwidth_grid(1, 4000)
    def choose(folds):
        return smoothing.choose_bandwidth(smoothing.cv_densities(
            node_pair, delta.astype(np.int64), np.ones(delta.size), folds, bg, cands),
            cands)[0]
    h_cv, h_loo = choose(fold), choose(np.arange(delta.size) % 2)
    assert 15 <= h_cv <= 120          # the spread of the visits (σ 60)
    assert h_loo < 4                  # alternating folds see the repeats: collapse


def test_estimated_model_finds_the_transit_and_fusion_beats_vision(weak_network):
    train, query, gallery = weak_network
    cfg = STConfig()
    model = estimate.estimate_st_model(train, cfg, estimate.frame_span(train, query, gallery))
    tables = STTables.from_model(model)
    a, b = model.nodes.lookup(np.array([1, 2]), np.array([1, 1]))
    centres = model.grid.centres()
    assert abs(centres[np.argmax(tables.log_ratio[a, b])] - TRANSIT) < 60
    assert abs(centres[np.argmax(tables.log_ratio[b, a])] + TRANSIT) < 60
    assert 0.3 < model.params["background_weight"] < 1.0
    vis = evaluate(query, gallery, None, FusionRule())
    fus = evaluate(query, gallery, tables, FusionRule())
    oracle = estimate.oracle_st_model(train, cfg, estimate.frame_span(train, query, gallery))
    bound = evaluate(query, gallery, STTables.from_model(oracle), FusionRule())
    assert fus.rank1 > vis.rank1 + 15
    assert bound.rank1 >= fus.rank1 - 2


@pytest.mark.parametrize("n_ids", [12, 150])
def test_no_st_signal_or_thin_evidence_falls_back_to_vision(n_ids):
    train, query, gallery = _network(n_ids=n_ids, noise=1.6, shuffle=n_ids > 12, seed=3)
    cfg = STConfig()
    model = estimate.estimate_st_model(train, cfg, estimate.frame_span(train, query, gallery))
    t = STTables.from_model(model)
    m = model.nodes.size
    assert np.abs(t.log_ratio[:m, :m]).max() < 1.0   # no confident ST factor anywhere
    vis = evaluate(query, gallery, None, FusionRule())
    fus = evaluate(query, gallery, t, FusionRule())
    assert fus.rank1 >= vis.rank1 - 1


def thin_network(seed=1, shuffle=False):
    """Twelve detections per visit, each too noisy for its visual neighbours to show
    the transit; their visit means show it."""
    return _network(n_ids=300, noise=2.6, shots=12, seed=seed, shuffle=shuffle)


@pytest.mark.parametrize("seed", [1, 2])   # 1: flat-wide bandwidth, 2: flat log-ratios
def test_thin_evidence_pools_each_visit_and_finds_the_transit(seed):
    train, query, gallery = thin_network(seed)
    cfg = STConfig()
    span = estimate.frame_span(train, query, gallery)
    first = estimate.estimate_once(train, cfg, span)
    assert estimate.shows_no_transit(first, span, cfg)
    model = estimate.estimate_st_model(train, cfg, span)
    assert model.params["thin_visit_pooling"]["visit_links"] > 0
    assert not estimate.shows_no_transit(model, span, cfg)
    # neighbours found on pooled features, cosines scored as the raw features' are
    assert estimate.scoring_stats(model) == estimate.scoring_stats(first)
    tables = STTables.from_model(model)
    a, b = model.nodes.lookup(np.array([1, 2]), np.array([1, 1]))
    assert abs(model.grid.centres()[np.argmax(tables.log_ratio[a, b])] - TRANSIT) < 60
    vis = evaluate(query, gallery, None, FusionRule())
    assert evaluate(query, gallery, tables, FusionRule()).rank1 > vis.rank1 + 50
    assert evaluate(query, gallery, STTables.from_model(first), FusionRule()).rank1 \
        < vis.rank1 + 5
    off = estimate.estimate_st_model(train, replace(cfg, thin_visit_fdr=None), span)
    assert off.same_as(first) and "thin_visit_pooling" not in off.params


def test_thin_evidence_retry_reuses_the_random_model_exactly(monkeypatch):
    train, query, gallery = thin_network(1)
    cfg = STConfig()
    span = estimate.frame_span(train, query, gallery)
    made = []
    counts = random_model.RandomCounts

    class Counted(counts):
        def __init__(self, *args):
            made.append(1)
            super().__init__(*args)
    monkeypatch.setattr(random_model, "RandomCounts", Counted)
    model = estimate.estimate_st_model(train, cfg, span)
    assert len(made) == 1 and "thin_visit_pooling" in model.params
    first = estimate.estimate_once(train, cfg, span)
    pooled, info = estimate.thin_visit_pooling(train, cfg, first, span)
    again = estimate.estimate_once(pooled, cfg, span,
                                   stats_for_scoring=estimate.scoring_stats(first))
    again.params.update(info)
    assert len(made) == 3 and again.same_as(model)   # a fresh random model: the same


def test_cv_terms_are_the_other_folds_weighted_kernel_density():
    rng = np.random.default_rng(4)
    n = 150                                     # > LOO_EVAL_POINTS: a subset is evaluated
    delta = rng.integers(-3000, 3000, n)
    weight, fold, bg = rng.random(n), rng.integers(0, 2, n), rng.random(n)
    cands = smoothing.bandwidth_grid(5, 2000)
    t = smoothing.pair_cv_terms(7, delta, weight, fold, bg, cands)
    order = np.argsort(delta, kind="stable")
    d, w, f = delta[order].astype(float), weight[order], fold[order]
    ev = np.unique(np.linspace(0, n - 1, smoothing.LOO_EVAL_POINTS).round().astype(int))
    other = f[None, :] != f[ev][:, None]
    ref = np.stack([(other * w * np.exp(-0.5 * ((d[ev][:, None] - d) / h) ** 2)).sum(1)
                    / ((other * w).sum(1) * h * np.sqrt(2 * np.pi)) for h in cands], 1)
    np.testing.assert_allclose(t.kde, ref, rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(t.other, (other * w).sum(1), rtol=1e-12)
    np.testing.assert_array_equal(t.background, bg[order][ev])
    assert (t.pair == 7).all()
    assert smoothing.pair_cv_terms(7, delta, weight, np.zeros(n, np.int64), bg,
                                   cands) is None   # no delta in the other fold


def test_thin_evidence_pooling_finds_nothing_where_time_carries_nothing():
    train, query, gallery = thin_network(1, shuffle=True)
    cfg = STConfig()
    span = estimate.frame_span(train, query, gallery)
    model = estimate.estimate_st_model(train, cfg, span)
    assert estimate.shows_no_transit(model, span, cfg)
    vis = evaluate(query, gallery, None, FusionRule())
    assert evaluate(query, gallery, STTables.from_model(model), FusionRule()).rank1 \
        >= vis.rank1 - 1


def test_oracle_needs_train_identities_and_artifact_v1_still_loads(tmp_path, weak_network):
    train, _, _ = weak_network
    anonymous = make_feature_set(train.features, train.camera, train.frame)
    with pytest.raises(ValueError, match="oracle ST model needs train pids"):
        estimate.oracle_st_model(anonymous, STConfig())
    model = estimate.estimate_st_model(train, STConfig(top_k=3))
    path = save_st_model(model, str(tmp_path))
    back = load_st_model(path)
    assert back.same_as(model) and back.params["evidence"] == "visual_above_chance"
    # a version-1 artifact: integer top-k counts, no visual_sq, no evidence field
    with np.load(path) as z:
        header = z["header"].item().replace('"version": 2', '"version": 1')
        header = header.replace('"evidence": "visual_above_chance", ', '')
        np.savez(tmp_path / "v1.npz", visual=np.rint(z["visual"]).astype(np.int64),
                 random=z["random"], node_camera=z["node_camera"],
                 node_sequence=z["node_sequence"], header=np.array(header))
    v1 = load_st_model(str(tmp_path / "v1.npz"))
    assert v1.params["evidence"] == "visual"
    np.testing.assert_array_equal(v1.visual_sq, v1.visual)
    assert np.isfinite(STTables.from_model(v1).log_ratio).all()
