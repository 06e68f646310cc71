"""Smoothing, bandwidth choice, the ST artifact, block scoring and fusion rules."""
import numpy as np
import pytest

from core.features import make_feature_set
from st_model import fusion as fz
from st_model import estimate, histograms, smoothing
from st_model.config import FusionRule, STConfig
from st_model.estimate import estimate_st_model
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex
from st_model.scoring import BlockScorer, STTables
from st_model.st_artifact import STModel, load_st_model, save_st_model


def test_gaussian_smoothing_keeps_mass_and_box_counts_windows():
    c = np.zeros((2, 2, 101))
    c[0, 1, 50] = 7
    s = smoothing.gaussian_smooth(c, 3.0)
    assert s.sum() == pytest.approx(7) and s[0, 1].argmax() == 50 and s[0, 1, 50] < 7
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 40).astype(float)
    box = smoothing.box_smooth(x, 3)
    ref = [x[max(0, i - 3):i + 4].sum() for i in range(40)]
    np.testing.assert_allclose(box, ref)


def test_shrinkage():
    np.testing.assert_allclose(smoothing.shrinkage(np.array([0, 20, 180]), 20),
                               [0, 0.5, 0.9])


def _bandwidth(deltas_per_pair, span=20000, per_pair=False, folds=None):
    node_pair = np.concatenate([np.full(len(d), p) for p, d in enumerate(deltas_per_pair)])
    d = np.concatenate(deltas_per_pair).astype(np.int64)
    bg = np.full(d.size, 1.0 / span)
    fold = np.arange(d.size) % 2 if folds is None else folds
    cands = smoothing.bandwidth_grid(1, 4000)
    h, c, info = smoothing.choose_bandwidth(
        smoothing.cv_densities(node_pair, d, np.ones(d.size), fold, bg, cands), cands)
    return (h, c, info["pair_bandwidth"]) if per_pair else (h, c)


def test_loo_bandwidth_follows_the_spread_of_the_deltas():
    rng = np.random.default_rng(0)
    narrow = [rng.normal(m, 10, 150).round() for m in (30, 60, 90)]
    wide = [rng.normal(m, 600, 150).round() for m in (3000, 6000, 9000)]
    h_narrow, c_narrow = _bandwidth(narrow)
    h_wide, _ = _bandwidth(wide)
    assert 2 <= h_narrow <= 30 < 200 <= h_wide <= 1500
    # half of the deltas uniform (false neighbours): the background weight sees them
    mixed = [np.concatenate([a, rng.integers(-10000, 10000, 150)]) for a in narrow]
    _, c_mixed = _bandwidth(mixed)
    assert c_narrow < 0.3 and 0.3 <= c_mixed <= 0.7


def test_each_node_pair_gets_its_own_bandwidth_or_flat():
    rng = np.random.default_rng(1)
    sharp = rng.normal(100, 8, 400).round()               # sharp transit
    slow = rng.normal(5000, 500, 400).round()             # slow, spread transit
    flat = rng.integers(-10000, 10000, 400)               # no temporal structure
    _, _, per_pair = _bandwidth([sharp, flat], per_pair=True)
    assert 2 <= per_pair["0"] <= 20
    assert per_pair["1"] == smoothing.FLAT
    # a pair spread > 16 times wider than the transits: the three-part mixture takes
    # it in its broad part (revisits) and every pair keeps the pooled width
    h, _, per_pair = _bandwidth([sharp, slow, flat], per_pair=True)
    assert set(per_pair.values()) == {h}


def test_three_part_mixture_takes_revisits_and_only_when_there_are_some():
    rng = np.random.default_rng(0)
    transit = rng.normal(300, 15, 480)
    revisits = rng.normal(4000, 1500, 360)               # the same people, much later
    false = rng.integers(-20000, 20000, 360)
    cands = smoothing.bandwidth_grid(1, 5000)

    def choose(d):
        d = d.round().astype(np.int64)
        anchor = rng.integers(0, 10**6, d.size)
        fold = estimate.delta_folds(np.zeros(d.size, np.int64), anchor, 1000)
        return smoothing.choose_bandwidth(smoothing.cv_densities(
            np.zeros(d.size, np.int64), d, np.ones(d.size), fold,
            np.full(d.size, 1 / 40000), cands), cands)
    h, c, info = choose(np.concatenate([transit, revisits, false]))
    assert 8 <= h <= 30                                  # the transit's spread (σ 15)
    assert 1000 <= info["broad_bandwidth"] <= 6000 and info["broad_share"] > 0
    assert info["broad_gain"] > np.log(1200)
    h, c, info = choose(np.concatenate([transit, false]))
    assert 8 <= h <= 30 and info["broad_bandwidth"] is None and info["broad_share"] == 0


def _tiny_model(mode="camera_sequence"):
    nodes = NodeIndex(mode, np.array([1, 1, 2]), np.array([1, 2, 1]) if mode != "tfusion"
                      else np.array([0, 0, 0]))
    grid = DeltaGrid(10, -50, 10)
    m = nodes.size
    vis = np.zeros((m, m, 10), np.int64)
    rnd = np.full((m, m, 10), 10, np.int64)
    same_cam = nodes.cameras[:, None] == nodes.cameras[None, :]
    rnd[same_cam] = 0     # the random model never pairs a camera with itself
    vis[0, 2, 6] = 8      # node 0 -> node 2 at Δ in [10, 20)
    vis[0, 2, 2] = 1
    params = {"bandwidth_frames": 0.0, "kappa": 0.0, "prior_count": 0.0, "floor": 1e-6,
              "window_frames": 0, "rand_floor": 2e-5, "max_delta": None,
              "vision_mean": 0.0, "vision_scale": 0.5}
    return STModel(nodes, grid, vis, rnd, params)


def test_tables_hand_computed_log_ratio_and_neutral_pairs():
    t = STTables.from_model(_tiny_model())
    # P_st(2, bin 6 | 0) = 8/9, P_rand(2, bin 6 | 0) = 10 / (node 0's 10 bins × 10)
    assert t.p_st[0, 2, 6] == pytest.approx(8 / 9)
    assert t.p_rand[0, 2, 6] == pytest.approx(10 / 100)
    assert t.log_ratio[0, 2, 6] == pytest.approx(np.log((8 / 9) / (10 / 100)), rel=1e-6)
    assert t.log_ratio[0, 2, 0] == pytest.approx(np.log(1e-6 / 0.1), rel=1e-6)  # floor
    # same camera / unseen gallery node: the score of an average random pair of node 0
    neutral = (t.p_rand[0, 2] * t.log_ratio[0, 2]).sum()
    assert neutral < 0
    np.testing.assert_allclose(t.log_ratio[0, 1], neutral, rtol=1e-5)
    np.testing.assert_allclose(t.log_ratio[0, 3], neutral, rtol=1e-5)
    assert t.log_ratio[3].max() == t.log_ratio[3].min() == 0.0  # unseen query node


def test_block_scorer_matches_manual_log_linear_and_bayes():
    model = _tiny_model()
    t = STTables.from_model(model)
    x = np.eye(3, dtype=np.float32)
    q = make_feature_set(x[:1], [1], [100], [1])
    g = make_feature_set(x + 0.5, [2, 2, 1], [115, 135, 115], [1, 1, 1])
    cos = q.features @ g.features.T
    lin = BlockScorer(t, q, g, FusionRule())(np.arange(1), np.arange(3))
    neutral = (t.p_rand[0, 2] * t.log_ratio[0, 2]).sum()
    lr = np.array([t.log_ratio[0, 2, 6], t.log_ratio[0, 2, 8], neutral])
    np.testing.assert_allclose(lin[0], cos[0] / 0.5 + lr, rtol=1e-6)
    bay = BlockScorer(t, q, g, FusionRule(fusion="bayes"))(np.arange(1), np.arange(3))
    p_v = (1 + cos[0]) / 2
    ratio = [t.p_st[0, 2, 6] / t.p_rand[0, 2, 6], t.p_st[0, 2, 8] / t.p_rand[0, 2, 8], 1.0]
    ref = p_v * np.array(ratio)
    np.testing.assert_allclose(bay[0], ref, rtol=1e-5)


def test_fast_flat_index_equals_the_divided_one():
    # the row term + column term − [r_g < r_q] index against (Δ − lo) // w + bases,
    # for frames on either side of bin edges and several widths
    model = _tiny_model()
    rng = np.random.default_rng(3)
    for width in (1, 3, 10):
        grid = histograms.make_grid(400, width)
        n = model.nodes.size
        m = STModel(model.nodes, grid, np.zeros((n, n, grid.n_bins)),
                    np.ones((n, n, grid.n_bins)), dict(model.params))
        tables = STTables.from_model(m)
        q = make_feature_set(rng.standard_normal((40, 3)), rng.integers(1, 4, 40),
                             rng.integers(0, 350, 40), np.ones(40, int))
        g = make_feature_set(rng.standard_normal((50, 3)), rng.integers(1, 4, 50),
                             rng.integers(0, 350, 50), np.ones(50, int))
        scorer = BlockScorer(tables, q, g, FusionRule())
        assert not scorer.clip
        qi, gi = np.arange(40)[:, None], np.arange(50)[None, :]
        delta = g.frame[gi] - q.frame[qi]
        np.testing.assert_array_equal(scorer.fast_flat(qi, gi), scorer._flat(qi, gi, delta))


def test_unseen_camera_queries_rank_by_vision_alone():
    t = STTables.from_model(_tiny_model())
    rng = np.random.default_rng(0)
    q = make_feature_set(rng.standard_normal((2, 3)), [7, 7], [100, 900], [1, 1])
    g = make_feature_set(rng.standard_normal((6, 3)), [1, 2, 2, 1, 7, 2],
                         [115, 135, 300, 90, 100, 111], [1, 1, 1, 2, 1, 1])
    s = BlockScorer(t, q, g, FusionRule())(np.arange(2), np.arange(6))
    np.testing.assert_allclose(s, (q.features @ g.features.T) / 0.5, rtol=1e-6)


def test_tfusion_out_of_reach_pairs_score_zero():
    model = _tiny_model("tfusion")
    model.params["window_frames"] = 10
    model.params["max_delta"] = 40
    t = STTables.from_model(model)
    x = np.eye(3, dtype=np.float32)
    q = make_feature_set(x[:1], [1], [100], [1])
    g = make_feature_set(x + 0.5, [2, 2, 2], [115, 115, 200], [1, 2, 1])
    s = BlockScorer(t, q, g, FusionRule(fusion="bayes"))(
        np.arange(1), np.arange(3))
    assert s[0, 0] > 0 and s[0, 1] == 0 and s[0, 2] == 0  # other sequence; |Δ| > max


def test_bayesian_fusion_eq9():
    p_v, p_st, p_diff, p_rand = 0.6, 0.3, 0.1, 0.05
    assert fz.bayesian_fusion(p_v, p_st, p_diff, p_rand) == pytest.approx(p_v * p_st / p_rand)
    a, b = 0.2, 0.1
    ref = (p_st * (1 - a) - b * p_diff) * (p_v + a / (1 - a - b)) / p_rand
    assert fz.bayesian_fusion(p_v, p_st, p_diff, p_rand, a, b) == pytest.approx(ref)
    assert fz.log_linear_fusion(np.log(0.5), np.log(4.0), 2.0) == pytest.approx(np.log(0.25 * 4))
    assert fz.logistic_fusion(0.0, 0.0, 1, 5, 1, 5) == pytest.approx(0.25)


def test_artifact_round_trip_and_version_check(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    cam = rng.integers(1, 4, n)
    fs = make_feature_set(rng.standard_normal((n, 8)), cam, rng.integers(0, 3000, n),
                          rng.integers(1, 3, n))
    model = estimate_st_model(fs, STConfig(top_k=3))
    path = save_st_model(model, str(tmp_path))
    back = load_st_model(path)
    assert back.same_as(model)
    assert back.params["bandwidth_frames"] > 0 and back.grid.width <= 100
    np.testing.assert_array_equal(back.diff, model.random - model.visual)
    bad = tmp_path / "bad.npz"
    np.savez(bad, visual=model.visual, random=model.random, node_camera=[1],
             node_sequence=[1], header=np.array('{"format": "x", "version": 9}'))
    with pytest.raises(ValueError, match="bad.npz: unsupported ST model format"):
        load_st_model(str(bad))


@pytest.mark.parametrize("sigma", [15.0, 16.0, 60.0, 300.0])
def test_wide_gaussian_smoothing_by_fft_equals_the_direct_filter(sigma):
    from scipy.ndimage import gaussian_filter1d
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.4, (3, 4, 700)).astype(float)
    counts[0, 0] = 0.0
    counts[1, :, 300:] = 0.0
    got = smoothing.gaussian_smooth(counts, sigma)   # 16 bins and up: by FFT
    ref = gaussian_filter1d(counts, sigma, axis=-1, mode="constant", truncate=4.0)
    assert got.shape == ref.shape and (got >= 0).all()
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13 * ref.max())
    np.testing.assert_array_equal(got[0, 0], 0.0)
