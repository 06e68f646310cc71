"""Per-query evaluation examples and the TFMA ranking metrics / gates on them.

TFMA runs as the TFX Evaluator runs it (pipeline.ranking_metrics.run_ranking_analysis)
on the examples of a small synthetic camera network: every metric must agree with
st_model.evaluation.evaluate (the `tfusion fuse` evaluation) to 1e-6, for the candidate
and for the baseline model, and the gates must bless / refuse as configured.
"""
import json
import os

import numpy as np
import pytest

from core.features import make_feature_set
from pipeline import eval_examples as ee
from pipeline import ranking_metrics as rm
from schemas import schema_path
from schemas.check import ExampleValidator
from st_model import evaluation
from st_model.config import resolve_settings
from st_model.estimate import estimate_st_model, frame_span
from st_model.scoring import STTables

import tensorflow as tf  # noqa: E402  (after pipeline: tf.keras 2)
import tensorflow_model_analysis as tfma  # noqa: E402

ST, CONFIG = resolve_settings()
N_CAM = 4
TRANSIT = 400          # frames from camera c to camera c + 1


def _walks(rng, pids, cams_per_person=N_CAM):
    """(pid, camera, frame) of two shots per camera visit, cameras 1..k in order."""
    rows = []
    for p in pids:
        t = int(rng.integers(0, 30000))
        k = cams_per_person if p % 9 else 1           # every 9th person: one camera
        for c in range(1, k + 1):
            for s in range(2):
                rows.append((p, c, t + (c - 1) * TRANSIT + s * 10
                             + int(rng.integers(0, 40))))
    return np.array(rows, np.int64)


def _features(rng, pid, protos, noise):
    x = protos[np.maximum(pid, 0) % len(protos)] * (pid[:, None] > 0)
    return x + noise * rng.standard_normal((pid.size, protos.shape[1]))


def _world(noise, seed):
    """Train / query / gallery FeatureSets of one model (visual noise) and its ST
    tables. Same images whatever the model: only the features change."""
    rng = np.random.default_rng(0)                    # the images: fixed
    train = _walks(rng, range(1, 61))
    test = _walks(rng, range(61, 121))
    first = np.r_[True, test[1:, 0] != test[:-1, 0]]   # first shot of each person
    q_rows, g_rows = test[first], test[~first]
    extra = np.array([(0, 2, 500), (0, 3, 9000), (-1, 1, 700), (-1, 4, 100)])
    q_rows = np.vstack([q_rows, [(-1, 2, 800), (0, 1, 300)]])   # excluded queries
    g_rows = np.vstack([g_rows, extra, [(0, c, int(f)) for c, f in
                                        zip(rng.integers(1, 5, 40),
                                            rng.integers(0, 32000, 40))]])
    feat_rng = np.random.default_rng(seed)            # the model: varies
    protos = feat_rng.standard_normal((200, 16))
    sets = {}
    for split, rows in (("train", train), ("query", q_rows), ("gallery", g_rows)):
        names = [f"{split}_{i:04d}_{p}_c{c}" for i, (p, c, _) in enumerate(rows)]
        sets[split] = make_feature_set(
            _features(feat_rng, rows[:, 0], protos, noise), rows[:, 1], rows[:, 2],
            pid=rows[:, 0], name=names, source=f"{split}_noise{noise}.npz")
    model = estimate_st_model(sets["train"], ST,
                              frame_span(sets["train"], sets["query"], sets["gallery"]))
    return ee.EvalModel(sets["query"], sets["gallery"], STTables.from_model(model))


@pytest.fixture(scope="module")
def models():
    return {"candidate": _world(2.0, 1), "baseline": _world(1.2, 2)}


@pytest.fixture(scope="module")
def reference(models):
    """st_model's own metrics of both models (vision and fused)."""
    return {name: {"vision": evaluation.evaluate(m.query, m.gallery, None, CONFIG),
                   "fused": evaluation.evaluate(m.query, m.gallery, m.tables, CONFIG)}
            for name, m in models.items()}


@pytest.fixture(scope="module")
def examples_uri(models, tmp_path_factory):
    uri = str(tmp_path_factory.mktemp("eval_examples"))
    built = ee.build_eval_examples(models["candidate"], models["baseline"], CONFIG)
    counts = ee.write_eval_examples(uri, built)
    return uri, counts


@pytest.fixture(scope="module")
def drop(reference):
    """Candidate's fused rank-1 below the baseline's (points; > 0 by construction)."""
    d = reference["baseline"]["fused"].rank1 - reference["candidate"]["fused"].rank1
    assert d > 2.0, "the test world must make the candidate worse than the baseline"
    return d


_runs = {}


def analyse(uri, tmp_root, min_rank1, max_drop, with_baseline, has_baseline,
            beam_args=()):
    """One TFMA run (shared between tests); returns (blessed, output path)."""
    key = (uri, min_rank1, max_drop, with_baseline, has_baseline, tuple(beam_args))
    if key not in _runs:
        out = os.path.join(tmp_root, f"tfma_{len(_runs)}")
        cfg = rm.ranking_eval_config(min_rank1, max_drop, with_baseline)
        _runs[key] = (rm.run_ranking_analysis(uri, out, cfg, has_baseline,
                                              list(beam_args)), out)
    return _runs[key]


def metric_values(out, model_name=None):
    result = tfma.load_eval_result(out, model_name=model_name)
    (slice_key, by_output), = result.slicing_metrics
    return {k: v["doubleValue"] for k, v in by_output[""][""].items()}


def expected(ref, count):
    out = {"query_count": float(count)}
    for ranking in ("vision", "fused"):
        r = ref[ranking]
        out.update({f"{ranking}_rank1": r.rank1, f"{ranking}_rank5": r.rank5,
                    f"{ranking}_rank10": r.rank10, f"{ranking}_mAP": r.mAP})
    return out


# ------------------------------------------------------------- the examples

def test_eval_examples_hold_every_evaluated_query_and_list_the_excluded(
        models, reference, examples_uri):
    uri, counts = examples_uri
    cand = models["candidate"]
    vis = reference["candidate"]["vision"]
    assert counts == {"queries": len(cand.query), "evaluated": vis.queries,
                      "excluded": vis.excluded}
    # the world exercises every case of the protocol
    g_pid = cand.gallery.pid
    assert (g_pid == -1).any() and (g_pid == 0).any() and vis.excluded >= 4
    path = os.path.join(uri, "Split-eval", "data_tfrecord-00000-of-00001.gz")
    records = [tf.train.Example.FromString(r.numpy()).features.feature
               for r in tf.data.TFRecordDataset(path, compression_type="GZIP")]
    assert len(records) == counts["evaluated"]
    index = [f["query_index"].int64_list.value[0] for f in records]
    assert index == sorted(index)
    ranks = evaluation.match_ranks(cand.query, cand.gallery, cand.tables, CONFIG)
    fused = dict(zip(ranks.queries.tolist(), ranks.ranks))
    schema = ExampleValidator.from_pbtxt(schema_path("eval_examples"))
    for q, f in zip(index, records):
        values = {k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in f.items()}
        assert schema.problems(values) == []
        assert f["query_name"].bytes_list.value[0].decode() == cand.query.names[q]
        np.testing.assert_array_equal(f["fused_ranks"].int64_list.value, fused[q])
        assert set(f) == {"query_name", "query_index", "prediction", "vision_ranks",
                          "fused_ranks", "baseline_vision_ranks",
                          "baseline_fused_ranks"}
    with open(os.path.join(uri, "eval_examples.json")) as f:
        report = json.load(f)
    excluded = set(report["excluded_queries"])
    assert len(excluded) == counts["excluded"]
    assert excluded == set(cand.query.names) - {cand.query.names[q] for q in index}
    one_camera = [n for n, p in zip(cand.query.names, cand.query.pid) if p > 0 and p % 9 == 0]
    assert one_camera and excluded.issuperset(one_camera)


def test_baseline_must_rank_the_same_images(models):
    cand, base = models["candidate"], models["baseline"]
    short = ee.EvalModel(base.query.subset(np.arange(len(base.query) - 1)),
                         base.gallery, base.tables)
    with pytest.raises(ValueError, match="baseline query set is not the candidate"):
        ee.build_eval_examples(cand, short, CONFIG)
    with pytest.raises(ValueError, match="baseline has none"):
        ee.build_eval_examples(cand, ee.EvalModel(base.query, base.gallery), CONFIG)


# --------------------------------------------------------- TFMA metrics

def test_tfma_metrics_agree_with_st_model_for_candidate_and_baseline(
        reference, examples_uri, drop, tmp_path_factory):
    uri, counts = examples_uri
    blessed, out = analyse(uri, str(tmp_path_factory.getbasetemp()), 0.0, drop + 1.0,
                           with_baseline=True, has_baseline=True)
    assert blessed                   # the drop lies within the tolerance
    for model in ("candidate", "baseline"):
        got = metric_values(out, model)
        want = expected(reference[model], counts["evaluated"])
        assert set(want) <= set(got)
        for name, value in want.items():
            assert got[name] == pytest.approx(value, abs=1e-6), (model, name)
    got = metric_values(out, "candidate")
    assert got["fused_rank1_diff"] == pytest.approx(-drop, abs=1e-6)
    # reading the wrong ranking or the wrong model's ranks would show: all differ
    values = [reference[m][r].mAP for m in ("candidate", "baseline")
              for r in ("vision", "fused")]
    assert min(np.diff(sorted(values))) > 0.1


def test_fused_rank1_drop_beyond_tolerance_is_not_blessed(examples_uri, drop,
                                                          tmp_path_factory):
    uri, _ = examples_uri
    # in separate worker processes: the metrics import by name and pickle
    blessed, out = analyse(uri, str(tmp_path_factory.getbasetemp()), 0.0, drop - 1.0,
                           with_baseline=True, has_baseline=True,
                           beam_args=("--direct_running_mode=multi_processing",
                                      "--direct_num_workers=2"))
    assert not blessed
    failures = tfma.load_validation_result(out).metric_validations_per_slice
    failed = {f.metric_key.name for s in failures for f in s.failures}
    assert failed == {"fused_rank1"}


def test_first_run_without_baseline_gates_on_the_lower_bound_only(
        reference, examples_uri, drop, tmp_path_factory):
    uri, counts = examples_uri
    fused_rank1 = reference["candidate"]["fused"].rank1
    # baseline spec and change threshold configured, but no baseline model: dropped
    blessed, out = analyse(uri, str(tmp_path_factory.getbasetemp()),
                           fused_rank1 - 1.0, 0.0, with_baseline=True, has_baseline=False)
    assert blessed
    got = metric_values(out)
    assert got["fused_rank1"] == pytest.approx(fused_rank1, abs=1e-6)
    assert not any(k.endswith("_diff") for k in got)
    blessed, _ = analyse(uri, str(tmp_path_factory.getbasetemp()), fused_rank1 + 1.0,
                         100.0, with_baseline=False, has_baseline=False)
    assert not blessed


def test_config_with_and_without_a_baseline_model():
    both = rm.ranking_eval_config(30.0, 2.0, with_baseline=True)
    assert [(s.name, s.is_baseline, s.model_type, s.prediction_key)
            for s in both.model_specs] == [
        ("candidate", False, "materialized_prediction", "prediction"),
        ("baseline", True, "materialized_prediction", "prediction")]
    metrics = both.metrics_specs[0].metrics
    assert [m.module for m in metrics] == ["pipeline.ranking_metrics"] * 9
    assert [getattr(rm, m.class_name).default_name() for m in metrics] == [
        "vision_rank1", "vision_rank5", "vision_rank10", "vision_mAP", "fused_rank1",
        "fused_rank5", "fused_rank10", "fused_mAP", "query_count"]
    gate = next(m.threshold for m in metrics if m.class_name == "FusedRank1")
    assert gate.value_threshold.lower_bound.value == 30.0
    assert gate.change_threshold.absolute.value == -2.0
    assert gate.change_threshold.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    # what the TFX Evaluator does: has_baseline = a baseline model was given
    first = tfma.utils.update_eval_config_with_defaults(both, has_baseline=False,
                                                        rubber_stamp=True)
    assert [(s.name, s.is_baseline) for s in first.model_specs] == [("", False)]
    assert not any(m.threshold.HasField("change_threshold")
                   for m in first.metrics_specs[0].metrics)
    later = tfma.utils.update_eval_config_with_defaults(both, has_baseline=True,
                                                        rubber_stamp=True)
    assert [s.name for s in later.model_specs] == ["candidate", "baseline"]
    # a candidate-only config never gets a copy of itself as an implicit baseline
    alone = rm.ranking_eval_config(30.0, 2.0, with_baseline=False)
    given = tfma.utils.update_eval_config_with_defaults(alone, has_baseline=True,
                                                        rubber_stamp=True)
    assert [(s.name, s.is_baseline) for s in given.model_specs] == [("", False)]
    with pytest.raises(ValueError, match="min_fused_rank1"):
        rm.ranking_eval_config(130.0, 2.0, with_baseline=False)


def test_missing_ranking_feature_is_a_clear_error(models, tmp_path):
    cand = models["candidate"]
    vision_only = ee.build_eval_examples(ee.EvalModel(cand.query, cand.gallery),
                                         config=CONFIG)
    ee.write_eval_examples(str(tmp_path / "ex"), vision_only)
    cfg = rm.ranking_eval_config(0.0, 0.0, with_baseline=False)
    with pytest.raises(Exception) as info:
        rm.run_ranking_analysis(str(tmp_path / "ex"), str(tmp_path / "out"), cfg, False)
    chain, e = [], info.value          # Beam re-raises; our message is in the chain
    while e is not None:
        chain.append(str(e))
        e = e.__cause__ or e.__context__
    assert any("evaluation example without feature 'fused_ranks'" in m for m in chain)


# --------------------------------------------------------- re-ranked fusion

def test_reranked_metrics_and_gate_for_candidate_and_baseline(models, tmp_path):
    """With rerank on, the examples carry the re-ranked fused ranks of both models;
    TFMA's fused_reranked_* agree with st_model.evaluation.evaluate_reranked, and the
    re-ranked gate refuses on its own bound, named as its metric."""
    from dataclasses import replace
    config = replace(CONFIG, rerank=True, rerank_k1=8, rerank_k2=3)
    built = ee.build_eval_examples(models["candidate"], models["baseline"], config)
    assert set(built.ranks) == {"vision_ranks", "fused_ranks", "fused_reranked_ranks",
                                "baseline_vision_ranks", "baseline_fused_ranks",
                                "baseline_fused_reranked_ranks"}
    uri = str(tmp_path / "ex")
    ee.write_eval_examples(uri, built)
    path = os.path.join(uri, "Split-eval", "data_tfrecord-00000-of-00001.gz")
    schema = ExampleValidator.from_pbtxt(schema_path("eval_examples"))
    for r in tf.data.TFRecordDataset(path, compression_type="GZIP"):
        f = tf.train.Example.FromString(r.numpy()).features.feature
        assert schema.problems({k: list(getattr(v, v.WhichOneof("kind")).value)
                                for k, v in f.items()}) == []
    want = {name: evaluation.evaluate_reranked(m.query, m.gallery, m.tables, config,
                                               m.tables.model.frame_rate)[0]
            for name, m in models.items()}
    bound = want["candidate"].rank1 + 1.0          # the re-ranked gate fails alone
    cfg = rm.ranking_eval_config(0.0, 100.0, with_baseline=True,
                                 reranked=(bound, 100.0))
    assert [m.class_name for m in cfg.metrics_specs[0].metrics][-4:] == [
        "FusedRerankedRank1", "FusedRerankedRank5", "FusedRerankedRank10",
        "FusedRerankedMAP"]
    out = str(tmp_path / "tfma")
    assert not rm.run_ranking_analysis(uri, out, cfg, has_baseline=True)
    for model in ("candidate", "baseline"):
        got = metric_values(out, model)
        for k in ("rank1", "rank5", "rank10", "mAP"):
            assert got[f"fused_reranked_{k}"] == pytest.approx(
                getattr(want[model], k), abs=1e-6), (model, k)
        # reading the fused ranks in place of the re-ranked ones would show
        assert abs(got["fused_reranked_mAP"] - got["fused_mAP"]) > 0.1, model
    failures = tfma.load_validation_result(out).metric_validations_per_slice
    assert {f.metric_key.name for s in failures for f in s.failures} == {
        "fused_reranked_rank1"}
    with pytest.raises(ValueError, match="min_fused_reranked_rank1"):
        rm.ranking_eval_config(0.0, 0.0, with_baseline=False, reranked=(101.0, 0.0))
