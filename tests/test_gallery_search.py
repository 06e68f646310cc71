"""The gallery index (rows sorted by ST node and time) and the pruned search: the same
top-k as the exhaustive scan, with fewer rows scored where the ST model allows."""
import numpy as np
import pytest

from core.features import make_feature_set
from st_model.config import FusionRule
from st_model.evaluation import score_function
from st_model.gallery_index import build_index, load_index, write_index
from st_model.gallery_search import GallerySearch
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex
from st_model.scoring import STTables
from st_model.st_artifact import STModel

DIM = 32


def sharp_model(scale: float) -> STModel:
    """3 cameras; node 0 -> 1 at Δ ∈ [0, 500), node 0 -> 2 at Δ ∈ [1000, 1500) (bins of
    10 frames on [-3000, 3000)); no smoothing, no shrinkage: outside the windows the
    log-ratio is the floor, log(1e-6 / P_rand) ≈ -8.5."""
    nodes = NodeIndex("camera_sequence", np.array([1, 2, 3]), np.array([1, 1, 1]))
    grid = DeltaGrid(10, -3000, 600)
    m = nodes.size
    vis = np.zeros((m, m, 600))
    rnd = np.full((m, m, 600), 10, np.int64)
    rnd[nodes.cameras[:, None] == nodes.cameras[None, :]] = 0
    vis[0, 1, 300:350] = 20
    vis[0, 2, 400:450] = 20
    vis[1, 2, 350:400] = 20
    params = {"bandwidth_frames": 0.0, "kappa": 0.0, "prior_count": 0.0, "floor": 1e-6,
              "window_frames": 0, "rand_floor": 2e-5, "max_delta": None,
              "vision_mean": 0.0, "vision_scale": scale}
    return STModel(nodes, grid, vis, rnd, params)


def gallery_and_queries(seed=0, n=6000, q=24):
    rng = np.random.default_rng(seed)
    g = make_feature_set(rng.standard_normal((n, DIM)), rng.integers(1, 4, n),
                         rng.integers(0, 100000, n), np.ones(n, np.int64),
                         pid=rng.integers(1, 500, n),
                         name=np.array([f"g{i:05d}" for i in rng.permutation(n)]))
    # queries: copies of gallery rows (so some rows score cos = 1), in camera 1 mostly
    pick = rng.choice(n, q, replace=False)
    cam = np.where(np.arange(q) % 6 == 5, 9, 1)          # every 6th in an unseen camera
    qs = make_feature_set(g.features[pick] + 0.3 * rng.standard_normal((q, DIM)), cam,
                          rng.integers(10000, 90000, q), np.ones(q, np.int64),
                          pid=g.pid[pick])
    return g, qs


def exhaustive_top(model, g, q, k, exclude=None):
    """Top-k gallery names by st_model's own scoring and tie rule (ranked by index
    in name order), as metrics.ranked_gallery ranks."""
    order = np.argsort(g.names, kind="stable")
    gs = g.subset(order)
    gs.name = g.names[order]
    fn = score_function(q, gs, STTables.from_model(model), FusionRule())
    out = []
    for qi in range(len(q)):
        s = fn(np.array([qi]), np.arange(len(gs)))[0]
        if exclude is not None:
            s = np.where(exclude(qi)[order], -np.inf, s)
        top = np.lexsort((np.arange(len(gs)), -s))[:k]
        out.append([str(gs.name[i]) for i in top])
    return out


def hit_names(index, results):
    return [[str(index.rows.names[h.row]) for h in r.hits] for r in results]


def pruned_and_full(model, g, q, k=10):
    """(index, pruned results, exhaustive results), both checked against st_model's
    own exhaustive ranking."""
    index = build_index(model, g, "fp", {})
    search = GallerySearch(index, STTables.from_model(model), FusionRule())
    pruned = search.search(q, k, pruned=True)
    full = search.search(q, k, pruned=False)
    assert hit_names(index, pruned) == hit_names(index, full) == exhaustive_top(
        model, g, q, k)
    return index, pruned, full


@pytest.mark.parametrize("scale", [0.25, 0.05], ids=["windows_certify", "second_pass"])
def test_pruned_top_k_equals_exhaustive(scale):
    model = sharp_model(scale)
    g, q = gallery_and_queries()
    index, pruned, full = pruned_and_full(model, g, q)
    for a, b in zip(pruned, full):
        # the same pairs; BLAS may round a slice's dot products one ulp differently
        np.testing.assert_allclose([h.fused for h in a.hits], [h.fused for h in b.hits],
                                   rtol=1e-6)
    unseen = np.flatnonzero(q.camera == 9)
    assert all(pruned[i].passes == 0 and pruned[i].rows_scored == len(g) for i in unseen)
    seen = [r for i, r in enumerate(pruned) if i not in unseen]
    if scale == 0.25:   # the windows alone certify most: a few % of the rows scored
        few = [r for r in seen if r.passes == 1 and r.rows_scored < 0.05 * len(g)]
        assert len(few) >= 0.75 * len(seen)
    else:               # vision could beat the floor: wider passes, or the full scan
        assert all(r.passes != 1 for r in seen)
        # and rows outside every window (log-ratio ≤ -5.9 there, +2.5 inside) enter
        assert any(h.st_factor < -5 for r in full for h in r.hits)


@pytest.mark.parametrize("scale", [0.25, 0.05], ids=["windows_certify", "second_pass"])
def test_reach_bounds_every_pass_and_keeps_the_exhaustive_top_k(scale):
    """With a reach (max_delta) no pass and no fallback scores a row further away in
    time, and the top-k is still the exhaustive scan's (which scores −∞ there)."""
    model = sharp_model(scale)
    g, q = gallery_and_queries()
    plain = GallerySearch(build_index(model, g, "fp", {}), STTables.from_model(model),
                          FusionRule()).search(q, 10, pruned=False)
    model.params["max_delta"] = 4000
    index, pruned, full = pruned_and_full(model, g, q)
    # the reach changed some top-10s (far rows ranked there without it) ...
    assert hit_names(index, full) != hit_names(index, plain)
    for qi, r in enumerate(pruned):
        near = np.abs(index.rows.frame - q.frame[qi]) <= 4000
        assert all(near[h.row] for h in r.hits)
        # ... and no query scored more rows than its reach holds (~8 % of them)
        assert r.rows_scored <= near.sum()
    unseen = np.flatnonzero(q.camera == 9)
    assert all(pruned[i].passes == 0 and 0 < pruned[i].rows_scored < 0.1 * len(g)
               for i in unseen)


def test_pruned_search_respects_excluded_rows():
    model = sharp_model(0.25)
    g, q = gallery_and_queries(1)
    index = build_index(model, g, "fp", {})
    search = GallerySearch(index, STTables.from_model(model), FusionRule())
    ex_sorted = lambda qi: index.rows.pid == q.pid[qi]  # noqa: E731
    pruned = search.search(q, 10, True, ex_sorted)
    names = [[str(index.rows.names[h.row]) for h in r.hits] for r in pruned]
    assert names == exhaustive_top(model, g, q, 10, lambda qi: g.pid == q.pid[qi])
    assert all(index.rows.pid[h.row] != q.pid[i] for i, r in enumerate(pruned)
               for h in r.hits)


def test_index_sorted_by_node_and_time_round_trips(tmp_path):
    model = sharp_model(0.25)
    g, _ = gallery_and_queries(n=500)
    index = build_index(model, g, "fp", {"split": "gallery"})
    key = index.node * 10 ** 7 + index.rows.frame
    assert (np.diff(key) >= 0).all()
    for b in range(model.nodes.size):
        s, e = index.node_start[b], index.node_start[b + 1]
        assert (index.rows.camera[s:e] == model.nodes.cameras[b]).all()
    write_index(index, str(tmp_path / "idx"))
    back = load_index(str(tmp_path / "idx"))
    np.testing.assert_array_equal(back.rows.features, index.rows.features)
    np.testing.assert_array_equal(back.name_rank, index.name_rank)
    assert list(back.rows.names) == list(index.rows.names)
    assert back.header["bundle_fingerprint"] == "fp"
    assert sorted(back.rows.names) == sorted(g.names)
