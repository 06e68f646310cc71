"""ST histograms: blockwise top-k, visual / exact random / diff models."""
import numpy as np
import pytest

from st_model import histograms, neighbours, random_model
from st_model.histograms import make_grid
from st_model.nodes import build_nodes, in_reach


def _points(n, seed, cams=4, seqs=2, span=5000):
    rng = np.random.default_rng(seed)
    return (rng.integers(1, cams + 1, n), rng.integers(1, seqs + 1, n),
            rng.integers(0, span, n))


@pytest.mark.parametrize("mode", ["camera_sequence", "tfusion"])
@pytest.mark.parametrize("width", [1, 37, 100])
def test_exact_random_model_equals_brute_force(mode, width):
    cam, seq, frame = _points(250, seed=width)
    nodes = build_nodes(cam, seq, mode)
    node = nodes.lookup(cam, seq)
    grid = make_grid(int(frame.max() - frame.min()), width)
    fast, info = random_model.random_histogram(node, cam, seq, frame, mode, nodes.size, grid)
    ref = random_model.brute_force_random_histogram(node, cam, seq, frame, mode,
                                                    nodes.size, grid)
    assert info["frame_quantum"] == 1
    np.testing.assert_array_equal(fast, ref)
    # every in-reach ordered pair is counted exactly once
    ok = in_reach(cam[:, None], seq[:, None], cam[None, :], seq[None, :], mode)
    assert fast.sum() == ok.sum()


def test_random_model_quantises_only_past_the_exact_span(monkeypatch):
    monkeypatch.setattr(random_model, "MAX_EXACT_SPAN", 1000)
    cam, seq, frame = _points(100, seed=3, span=5000)
    nodes = build_nodes(cam, seq, "camera_sequence")
    grid = make_grid(5000, 500)
    counts, info = random_model.random_histogram(nodes.lookup(cam, seq), cam, seq, frame,
                                                 "camera_sequence", nodes.size, grid)
    assert info["frame_quantum"] == 5
    ok = cam[:, None] != cam[None, :]
    assert counts.sum() == ok.sum()  # no pair lost, only their deltas are quantised


@pytest.mark.parametrize("quantum", [1, 5])
def test_random_model_is_exact_for_sub_nodes_of_distant_and_unequal_time_ranges(
        quantum, monkeypatch):
    # each sub-node's series spans only its own frames: short and long ones, far apart,
    # overlapping or not, and (quantum 5) frames already on the quantum's lattice so
    # the quantised counts must equal the brute force's exactly
    rng = np.random.default_rng(7)
    ranges = {(1, 1): (0, 300), (2, 1): (100_000, 100_040), (3, 1): (50, 120_000),
              (1, 2): (99_990, 100_500), (2, 2): (7, 8)}
    cam, seq, frame = [], [], []
    for (c, s), (lo, hi) in ranges.items():
        n = 40
        cam += [c] * n
        seq += [s] * n
        frame += list(rng.integers(lo, hi, n))
    cam, seq, frame = np.array(cam), np.array(seq), np.array(frame, np.int64)
    if quantum > 1:
        monkeypatch.setattr(random_model, "MAX_EXACT_SPAN", 25_000)
        frame = frame.min() + (frame - frame.min()) // quantum * quantum
    nodes = build_nodes(cam, seq, "camera_sequence")
    node = nodes.lookup(cam, seq)
    for width in (1, 7, 450):
        grid = make_grid(int(frame.max() - frame.min()), width)
        fast, info = random_model.random_histogram(node, cam, seq, frame, "camera_sequence",
                                                   nodes.size, grid)
        assert info["frame_quantum"] == quantum
        ref = random_model.brute_force_random_histogram(node, cam, seq, frame,
                                                        "camera_sequence", nodes.size, grid)
        np.testing.assert_array_equal(fast, ref)


# (k, col_block): blocks narrower than the first block's head (FIRST_WIDTH_PER_K · k)
# and a single block far wider than it, whose head sets the threshold
@pytest.mark.parametrize("k,col_block", [(6, 23), (3, 130), (6, 130), (2, 60)])
def test_top_k_blockwise_equals_full_sort_with_index_tie_break(k, col_block):
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, (90, 130)).astype(float)   # many ties
    s[rng.random(s.shape) < 0.2] = -np.inf           # excluded pairs
    s[5, 3:] = -np.inf                               # fewer than k candidates
    s[6, :100] = -np.inf                             # all of them past the head
    idx, sc = neighbours.top_k(lambda r, c: s[np.ix_(r, c)], 90, 130, k,
                               row_block=17, col_block=col_block)
    for r in range(90):
        ref = sorted((c for c in range(130) if np.isfinite(s[r, c])),
                     key=lambda c: (-s[r, c], c))[:k]
        got = [c for c in idx[r] if c >= 0]
        assert got == ref
        np.testing.assert_array_equal(sc[r][:len(ref)], s[r, ref])


def test_top_k_from_a_guessed_threshold_is_exact_even_where_the_guess_is_too_high():
    rng = np.random.default_rng(3)
    n_rows, n_cols, k = 40, 3000, 16
    s = rng.integers(0, 50, (n_rows, n_cols)).astype(float)   # ties
    s[rng.random(s.shape) < 0.1] = -np.inf
    sample = np.arange(512) * n_cols // 512       # the guess's columns (asserted below)
    s[0, sample] = 100.0                          # the guess: 100, beaten by none
    s[1, :] = -np.inf                             # no candidate at all
    s[2, 5:] = -np.inf                            # fewer than k
    s[3, :] = 7.0                                 # all tied
    score = lambda r, c: s[np.ix_(r, c)]  # noqa: E731
    rows = np.arange(n_rows)
    guess = neighbours._seed_threshold(score, rows, n_cols, k, 0)
    assert guess is not None and guess[0] == 100.0 and np.isneginf(guess[1])
    idx, sc = neighbours.top_k_rows(score, rows, n_cols, k, col_block=256)
    for r in range(n_rows):
        ref = sorted((c for c in range(n_cols) if np.isfinite(s[r, c])),
                     key=lambda c: (-s[r, c], c))[:k]
        assert [c for c in idx[r] if c >= 0] == ref
        np.testing.assert_array_equal(sc[r][:len(ref)], s[r, ref])


def test_visual_scores_exclude_same_camera():
    x = np.eye(4, dtype=np.float32)
    x[1] = x[0]
    cam = np.array([1, 1, 2, 2])
    score = neighbours.visual_score_block(x, x, cam, cam, self_pairs=True)
    idx, _ = neighbours.top_k(score, 4, 4, 2)
    assert set(idx[0]) <= {2, 3}   # image 1 is identical but in the same camera


def test_diff_model_is_all_in_reach_pairs_past_the_top_k():
    cam, seq, frame = _points(120, seed=5)
    mode = "camera_sequence"
    nodes = build_nodes(cam, seq, mode)
    node = nodes.lookup(cam, seq)
    grid = make_grid(5000, 50)
    x = np.random.default_rng(1).standard_normal((120, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    idx, _ = neighbours.top_k(neighbours.visual_score_block(x, x, cam, cam, True),
                              120, 120, 5)
    i, j = histograms.neighbour_pairs(idx)
    node_pair, d = histograms.pair_deltas(i, j, node, frame, cam, seq, mode, nodes.size)
    visual = histograms.count_histogram(node_pair, d, nodes.size, grid)
    rand, _ = random_model.random_histogram(node, cam, seq, frame, mode, nodes.size, grid)
    diff = histograms.diff_histogram(rand, visual)
    # brute force: every in-reach ordered pair that is not a top-k pair
    top = set(zip(i.tolist(), j.tolist()))
    ref = np.zeros_like(diff)
    for a in range(120):
        for b in range(120):
            if in_reach(cam[a], seq[a], cam[b], seq[b], mode) and (a, b) not in top:
                ref[node[a], node[b], grid.bin_of(frame[b] - frame[a])] += 1
    np.testing.assert_array_equal(diff, ref)
    assert visual.sum() == len(i)   # every top-k pair is in reach here (other camera)


def test_grid_bins_and_clipping():
    grid = make_grid(1000, 100)
    assert grid.bin_of(np.array([0]))[0] == grid.n_bins // 2  # 0 sits mid-bin
    b = grid.bin_of(np.array([-10**6, -1000, 1000, 10**6]))
    assert b[0] == 0 and b[-1] == grid.n_bins - 1
    assert 0 < b[1] < b[2] < grid.n_bins - 1


def test_nodes_modes_and_unseen_cameras():
    cam = np.array([1, 1, 2, 2])
    seq = np.array([1, 2, 1, 2])
    cs = build_nodes(cam, seq, "camera_sequence")
    tf = build_nodes(cam, seq, "tfusion")
    assert cs.size == 4 and tf.size == 2
    assert cs.labels() == ["c1s1", "c1s2", "c2s1", "c2s2"]
    assert cs.lookup(np.array([2, 1]), np.array([9, 2])).tolist() == [-1, 1]
    # a camera train never saw is an unseen node too (neutral ST factor), counted
    assert cs.lookup(np.array([7]), np.array([1])).tolist() == [-1]
    assert cs.unseen(np.array([7, 7, 2, 1]), np.array([1, 1, 9, 2])) == {
        "images_unseen_camera": 2, "images_unseen_node": 1, "unseen_cameras": [7]}
    assert not in_reach(1, 1, 2, 2, "tfusion") and in_reach(1, 1, 2, 2, "camera_sequence")


def test_random_counts_rebin_kept_lags_as_a_fresh_computation(monkeypatch):
    # the second grid reads the kept lag counts; past the memory budget it recomputes
    cam, seq, frame = _points(300, seed=11)
    nodes = build_nodes(cam, seq, "camera_sequence")
    node = nodes.lookup(cam, seq)
    grids = [make_grid(5000, w) for w in (100, 37, 1)]
    for budget in (random_model.MAX_KEPT_LAG_BYTES, 0):
        monkeypatch.setattr(random_model, "MAX_KEPT_LAG_BYTES", budget)
        counts = random_model.RandomCounts(node, cam, seq, frame, "camera_sequence")
        for grid in grids:
            got, _ = counts.histogram(nodes.size, grid)
            ref = random_model.brute_force_random_histogram(node, cam, seq, frame,
                                                            "camera_sequence",
                                                            nodes.size, grid)
            np.testing.assert_array_equal(got, ref)
        assert (counts._lags is not None) == (budget > 0)
