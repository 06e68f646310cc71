"""The Beam transforms give exactly the in-memory ST model and fused ranking: in one
process, and with two separate worker processes that read the train file."""
import numpy as np
import pytest

apache_beam = pytest.importorskip("apache_beam")

from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402
from apache_beam.testing.util import assert_that  # noqa: E402

from core.features import load_features, save_features  # noqa: E402
from st_model.beam_transforms import EstimateSTModel  # noqa: E402
from st_model.config import FusionRule, STConfig, resolve_settings  # noqa: E402
from st_model.estimate import estimate_st_model, frame_span  # noqa: E402

IN_PROCESS = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
              "--direct_num_workers=1"]
TWO_PROCESSES = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                 "--direct_num_workers=2"]


def write_train(path, n=300, seed=0, revisits=0.0):
    """A small train split with identities that move between cameras, as raw arrays
    (load_features normalises them) in an .npz file; a share `revisits` of the
    images is seen 5000-15000 frames later (people who come back)."""
    rng = np.random.default_rng(seed)
    pid = rng.integers(1, 40, n)
    cam = rng.integers(1, 4, n)
    seq = rng.integers(1, 3, n)
    proto = rng.standard_normal((40, 16))
    x = proto[pid] + 0.8 * rng.standard_normal((n, 16))
    frame = pid * 300 + cam * 40 + rng.integers(0, 30, n)
    if revisits:
        frame = frame + (rng.random(n) < revisits) * rng.integers(5000, 15000, n)
    np.savez(path, features=x.astype(np.float32), camera=cam, frame=frame, sequence=seq,
             pid=pid, name=np.array([f"img{i:04d}" for i in range(n)]))
    return str(path)


def as_shards(path, shard_rows):
    """The feature file at `path` rewritten as a folder of row shards beside it."""
    from core.features import save_feature_shards
    folder = str(path).replace(".npz", "_shards")
    save_feature_shards(load_features(str(path)), folder, shard_rows)
    return folder


@pytest.mark.parametrize("mode, storage, revisits", [("camera_sequence", "file", 0.0),
                                                     ("tfusion", "file", 0.0),
                                                     ("camera_sequence", "shards", 0.0),
                                                     ("camera_sequence", "file", 0.4)])
def test_beam_estimate_equals_in_memory(mode, storage, revisits, tmp_path, monkeypatch):
    path = write_train(tmp_path / "train.npz", n=600 if revisits else 300,
                       revisits=revisits)
    train = load_features(path)
    if storage == "shards":
        # shards that do not line up with the row / column blocks; no step of the
        # job may load the whole split (only single shards)
        path = as_shards(path, 37)
        from core import features
        real = features.load_features

        def shard_only(p, **kw):
            assert p != path, "a step loaded the whole train split"
            return real(p, **kw)
        monkeypatch.setattr(features, "load_features", shard_only)
    config = resolve_settings(STConfig(mode=mode, top_k=4)).st
    span = frame_span(train)
    # small row and column blocks: several tiles per row block, merged per row
    expected = estimate_st_model(train, config, span, row_block=64, col_block=48)
    assert expected.visual.sum() > 0
    # with revisits the three-part mixture holds (smoothing.fit_broad)
    assert (expected.params.get("broad_share", 0) > 0) == (revisits > 0)

    def check(models):
        assert len(models) == 1
        assert models[0].same_as(expected)

    with apache_beam.Pipeline(options=PipelineOptions(IN_PROCESS)) as p:
        model = p | EstimateSTModel(path, config, span, row_block=64, col_block=48)
        assert_that(model, check)


def test_saved_features_load_back_bit_for_bit(tmp_path):
    train = load_features(write_train(tmp_path / "raw.npz"))
    back = load_features(save_features(train, str(tmp_path / "staged.npz")))
    assert np.array_equal(back.features, train.features)
    assert all(np.array_equal(getattr(back, k), getattr(train, k))
               for k in ("camera", "frame", "sequence", "pid", "name"))


def test_tiles_merged_in_any_order_give_the_full_scan_with_its_tie_order():
    """Top-k per row over column tiles, merged in any order = the one-pass scan,
    incl. ties (lower index first) and rows with fewer than k candidates."""
    from st_model import neighbours
    rng = np.random.default_rng(5)
    n, k = 90, 7
    s = np.round(rng.standard_normal((n, n)), 1)        # many tied scores
    s[rng.random((n, n)) < 0.3] = -np.inf               # excluded pairs
    s[3, :] = -np.inf
    s[3, [10, 50]] = 0.5                                 # a row with 2 candidates
    score = lambda r, c: s[np.ix_(r, c)]  # noqa: E731
    rows = np.arange(20, 40)
    full = neighbours.top_k_rows(score, rows, n, k, col_block=n)
    parts = [neighbours.top_k_rows(score, rows, c1, k, 16, col_start=c0)
             for (_, (c0, c1)) in neighbours.tiles((20, 40), n, 16)]
    assert len(parts) == 6
    for order in (parts, parts[::-1], parts[2:] + parts[:2]):
        idx, sc = neighbours.merge_top_k(order, k)
        assert np.array_equal(idx, full[0]) and np.array_equal(sc, full[1])
    assert (full[0][:, 0] >= 0).all() and (full[1] == full[1].max(axis=1)[:, None]).any()
    row3 = neighbours.top_k_rows(score, np.array([3]), n, k, col_block=n)
    idx, sc = neighbours.merge_top_k(
        [neighbours.top_k_rows(score, np.array([3]), c1, k, 16, col_start=c0)
         for (_, (c0, c1)) in neighbours.tiles((3, 4), n, 16)], k)
    assert idx[0].tolist() == [10, 50, -1, -1, -1, -1, -1]
    assert np.array_equal(idx, row3[0])


@pytest.mark.parametrize("storage", ["file", "shards"])
def test_two_worker_processes_give_the_in_memory_model_and_ranking(storage, tmp_path):
    """fuse's Beam job on the DirectRunner with 2 separate worker processes, on a
    feature file or a folder of row shards: the same ST model and fused ranking as
    the in-memory path, bit for bit."""
    from pipeline.fuse_job import run_beam
    from st_model.fused_ranking import write_ranking_in_memory
    from st_model.fused_ranking import read_ranking
    from st_model.scoring import STTables
    path = write_train(tmp_path / "train.npz", n=400, seed=3)
    train = load_features(path)
    config = resolve_settings(STConfig(top_k=4), FusionRule(ranking_top_n=10))
    span = frame_span(train)
    expected = estimate_st_model(train, config.st, span, col_block=100)
    write_ranking_in_memory(train, STTables.from_model(expected), config.rule,
                            str(tmp_path / "mem"), col_block=100)
    if storage == "shards":
        path = as_shards(path, 64)
    model = run_beam(path, config, span, str(tmp_path / "beam"), TWO_PROCESSES,
                     col_block=100)
    assert model.visual.sum() > 0 and model.same_as(expected)
    mem, beam = read_ranking(str(tmp_path / "mem")), read_ranking(str(tmp_path / "beam"))
    assert len(mem) == len(train) and beam == mem


def test_thin_evidence_retry_on_beam_gives_the_in_memory_model_and_ranking(tmp_path):
    """Where the first estimate shows no transit, the Beam path pools the visits on
    the launcher and estimates again on the staged pooled features: the in-memory
    model and fused ranking (of the raw features), and the staged file removed."""
    import os

    from pipeline.fuse_job import run_beam
    from st_model.beam_transforms import STAGED_POOLED
    from st_model.fused_ranking import read_ranking, write_ranking_in_memory
    from st_model.scoring import STTables
    from test_st_estimator import thin_network
    raw, query, gallery = thin_network(1)
    path = save_features(raw, str(tmp_path / "train.npz"))
    train = load_features(path)
    config = resolve_settings(STConfig(), FusionRule(ranking_top_n=10))
    span = frame_span(train, query, gallery)
    expected = estimate_st_model(train, config.st, span)
    assert expected.params["thin_visit_pooling"]["visit_links"] > 0
    write_ranking_in_memory(train, STTables.from_model(expected), config.rule,
                            str(tmp_path / "mem"))
    out = str(tmp_path / "beam")
    model = run_beam(path, config, span, out, IN_PROCESS)
    assert model.same_as(expected)
    assert read_ranking(out) == read_ranking(str(tmp_path / "mem"))
    assert not os.path.exists(os.path.join(out, STAGED_POOLED))
