"""`tfusion run` end to end on the tiny preset (LocalDagRunner, SQLite ML Metadata,
DirectRunner): a run killed after STModelGen resumes from the cache, every component
succeeds, TFMA's metrics agree with st_model.metrics, the Pusher pushes a servable
bundle, lineage reaches both example sets; a degraded candidate is not pushed."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("tfx.v1")

from pipeline.run_log import LOG_NAME, VERBOSE_ENV  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEGRADED_MODULE = os.path.join(REPO, "tests", "degraded_module", "degraded_ranknet_module.py")
# fewer steps than the preset: this checks the machinery, not the accuracy
STEPS = {"pretrain": {"steps": 30}, "ranknet": {"steps": 10}}
BEFORE_KILL = ("ReidExampleGen_source", "ReidExampleGen_target", "Trainer_pretrain",
               "Embedder_r0", "STModelGen_r0")


def tiny_config(**overrides):
    from pipeline.run_config import preset_config
    return preset_config("tiny", **{**STEPS, **overrides})


def node_states(out, node):
    from pipeline import lineage
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    return [lineage.execution_state(e) for e in lineage.node_executions(store, "tfusion", node)]


def cli_run(out):
    """`tfusion run --preset tiny` with the test's steps, and the environment of a user
    who has not silenced Python warnings."""
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--preset", "tiny",
           "--output-dir", out, "--pretrain-steps", str(STEPS["pretrain"]["steps"]),
           "--transfer-steps", str(STEPS["ranknet"]["steps"])]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", VERBOSE_ENV)}
    return cmd, env


def console_files(out):
    """The console (stdout, stderr) of the resumed run of `tiny_run`."""
    return (os.path.join(os.path.dirname(out), "resumed_run.out"),
            os.path.join(os.path.dirname(out), "resumed_run.err"))


def run_until_done(out, node, timeout=900):
    """Start `tfusion run --preset tiny` in its own process and SIGKILL it as soon as
    ML Metadata records `node` as complete."""
    cmd, env = cli_run(out)
    log = open(os.path.join(os.path.dirname(out), "killed_run.log"), "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise AssertionError(f"the run ended (rc {proc.returncode}) before {node} "
                                     f"completed; see {log.name}")
            try:
                if "COMPLETE" in node_states(out, node):
                    return
            except Exception:  # noqa: BLE001 - store not created yet, or busy
                pass
            time.sleep(0.5)
        raise AssertionError(f"{node} did not complete within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("run") / "tiny")
    run_until_done(out, "STModelGen_r0")
    killed = {n: node_states(out, n) for n in BEFORE_KILL}
    # resumed as a user does, from the command line; its console is kept for a test
    cmd, env = cli_run(out)
    stdout, stderr = console_files(out)
    with open(stdout, "w") as o, open(stderr, "w") as e:
        rc = subprocess.run(cmd, cwd=REPO, stdout=o, stderr=e, env=env, timeout=1800).returncode
    assert rc == 0, open(stderr).read()[-3000:]
    with open(os.path.join(out, "run_summary.json")) as f:
        summary = json.load(f)
    return out, summary, killed


def test_killed_run_resumes_without_redoing_finished_components(tiny_run):
    out, _, killed = tiny_run
    assert all(states == ["COMPLETE"] for states in killed.values()), killed
    for node in BEFORE_KILL:
        assert node_states(out, node) == ["COMPLETE", "CACHED"], node
    # what had not run yet ran after the restart
    assert node_states(out, "Pusher")[-1] == "COMPLETE"


def test_console_shows_progress_and_results_and_names_the_log(tiny_run):
    """What setuptools, pip, the Google clients and TFX print stays off the console of
    both runs (the killed one and the resumed one) and is found in OUTPUT/run.log."""
    out, _, _ = tiny_run
    stdout, stderr = (open(p).read() for p in console_files(out))
    killed = open(os.path.join(os.path.dirname(out), "killed_run.log")).read()
    with open(os.path.join(out, LOG_NAME)) as f:
        log = f.read()
    noise = ("running bdist_wheel", "SetuptoolsDeprecationWarning", "Looking in indexes",
             "Successfully installed tfx-user-code", "FutureWarning",
             "Examples artifact does not have payload_format")
    for text in noise:
        assert text not in stdout + stderr and text not in killed, text
        assert text in log, text
    assert log.count("==== tfusion run ") == 2  # the killed run, then the resumed one
    assert "Component Pusher is running." in log  # TFX's INFO lines
    assert "[run" in killed and "Trainer_pretrain done" in killed
    assert "Pusher done" in stderr and "Pusher done" in log
    assert stdout.startswith("\nTFusion pipeline 'tfusion'")
    assert stdout.splitlines()[-1] == f"log: {os.path.join(out, LOG_NAME)}"
    assert all(line.startswith(("[run ", "[tfusion ")) for line in stderr.splitlines())


def test_every_component_succeeded(tiny_run):
    from pipeline.commands.run import build
    out, _, _ = tiny_run
    pipeline = build(tiny_config(), out)
    ids = [c.id for c in pipeline.components]
    assert {"Trainer_pretrain", "Trainer_ranknet_r1", "TripletGen_r0", "FusedRanker_r0",
            "ServingBundle", "Evaluator_r0", "Evaluator_r1", "Pusher"} <= set(ids)
    for node in ids:
        if node == "LatestBlessedModel":
            continue
        assert node_states(out, node)[-1] in ("COMPLETE", "CACHED"), node


def test_tfma_metrics_agree_with_st_model_metrics(tiny_run):
    import tensorflow_model_analysis as tfma

    from pipeline.component_io import load_split_features
    from st_model.config import FusionRule, STConfig
    from st_model.evaluation import evaluate
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    _, summary, _ = tiny_run
    assert [r["round"] for r in summary["rounds"]] == [0, 1]
    for row in summary["rounds"]:
        _, query, gallery = load_split_features(row["features"])
        tables = STTables.from_model(load_st_model(row["st_model"]))
        expect = {"vision": evaluate(query, gallery, None, FusionRule()),
                  "fused": evaluate(query, gallery, tables, FusionRule())}
        for kind, result in expect.items():
            for metric in ("rank1", "rank5", "rank10", "mAP"):
                assert row[kind][metric] == pytest.approx(getattr(result, metric),
                                                          abs=1e-6), (row["round"], kind)
        assert row["queries"] == expect["vision"].queries
        assert tfma.load_eval_result(row["evaluation"]).slicing_metrics


def test_pusher_pushed_a_servable_bundle(tiny_run):
    from st_model.st_artifact import load_st_model
    from trainer.export import load_embedder
    _, summary, _ = tiny_run
    assert summary["gate"]["blessed"] and summary["push"]["pushed"]
    dest = summary["push"]["destination"]
    manifest = json.load(open(os.path.join(dest, "tfusion_manifest.json")))
    st = load_st_model(os.path.join(dest, manifest["st_model"]))
    assert manifest["st_nodes"] == st.nodes.labels() and manifest["frame_rate"] > 0
    emb = load_embedder(dest)
    assert [emb.height, emb.width] == manifest["input_size"]


def test_pushed_bundle_scores_like_tfma_in_a_tensorflow_only_process(tiny_run):
    """The pushed folder's `fused_scores`, run by a process importing only TensorFlow,
    ranks the gated round's query × gallery with TFMA's fused rank-1 and mAP."""
    from pipeline.serving_check import check_pushed_bundle
    _, summary, _ = tiny_run
    res = check_pushed_bundle(summary)
    assert res["queries"] == summary["rounds"][-1]["queries"]
    for metric in ("rank1", "mAP"):
        assert res["signature"][metric] == pytest.approx(res["tfma"][metric], abs=0.01)


def test_lineage_reaches_both_example_sets(tiny_run, capsys):
    from pipeline import lineage
    from pipeline.cli import main
    out, _, _ = tiny_run
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    nodes = {n.node_id for n in lineage.flatten(
        lineage.lineage(store, lineage.latest_pushed_model(store)))}
    assert {"Pusher", "Evaluator_r1", "RankingEvalGen_r1", "ServingBundle",
            "Trainer_ranknet_r1", "TripletGen_r0", "FusedRanker_r0", "STModelGen_r0",
            "Embedder_r0", "Trainer_pretrain", "ReidExampleGen_source",
            "ReidExampleGen_target"} <= nodes
    assert main(["lineage", "--output-dir", out]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("PushedModel #") and "ReidExampleGen_source" in printed


def test_unseen_cameras_are_counted_and_shown_in_summary_and_report(tiny_run):
    """RankingEvalGen counts the query / gallery images in cameras or nodes the round's
    ST model never saw (none on SynthReID); the printed summary and the report show
    the counts, 0 as 0. The labeled SynthReID train split draws its true Δ curve."""
    from pipeline.run_summary import format_summary
    _, summary, _ = tiny_run
    text = format_summary(summary)
    for row in summary["rounds"]:
        for split in ("query", "gallery"):
            assert row["unseen"][split]["images_unseen_camera"] == 0
            assert row["unseen"][split]["images_unseen_node"] == 0
        assert row["unseen"]["neutral_pairs"] == 0 and row["unseen"]["pairs"] > 0
        assert f"  round {row['round']}: query 0 in cameras / 0 in nodes, gallery 0 / 0" \
            in text
        assert row["st_true_curve"] is True
    page = open(summary["report"], encoding="utf-8").read()
    assert page.count('data-unseen-camera="0" data-unseen-node="0"') == \
        len(summary["rounds"])
    assert 'class="no-true-curve"' not in page


def test_degraded_candidate_is_not_blessed_nor_pushed(tiny_run):
    from pipeline import lineage
    from pipeline.commands.run import run_pipeline
    out, first, _ = tiny_run
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    pushed_before = lineage.latest_pushed_model(store).id
    serving = sorted(os.listdir(os.path.join(out, "serving")))
    summary = run_pipeline(tiny_config(ranknet_module_file=DEGRADED_MODULE), out)
    assert summary["rounds"][-1]["fused"]["rank1"] < first["rounds"][-1]["fused"]["rank1"]
    assert summary["gate"]["baseline_model"] and not summary["gate"]["blessed"]
    assert {f["metric"] for f in summary["gate"]["failures"]} == {"fused_rank1"}
    assert summary["push"]["pushed"] is False
    assert sorted(os.listdir(os.path.join(out, "serving"))) == serving
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    assert lineage.latest_pushed_model(store).id == pushed_before


def test_dataset_fingerprint_follows_content(tmp_path):
    from pipeline.fingerprint import dataset_fingerprint
    from pipeline.run_config import RunConfigError
    d = tmp_path / "ds"
    d.mkdir()
    (d / "a.jpg").write_bytes(b"1")
    first = dataset_fingerprint(str(d))
    assert dataset_fingerprint(str(d)) == first
    (d / "b.jpg").write_bytes(b"22")
    assert dataset_fingerprint(str(d)) != first
    with pytest.raises(RunConfigError, match="empty or does not exist"):
        dataset_fingerprint(str(tmp_path / "missing"))


def test_beam_components_in_separate_worker_processes(tiny_run, tmp_path):
    """ReidExampleGen, Embedder, STModelGen, FusedRanker, RankingEvalGen and the
    Evaluator under the DirectRunner's multi_processing mode (2 worker processes):
    nothing global, everything picklable; the same artifacts as in memory."""
    from tfx import v1 as tfx

    from pipeline import lineage
    from pipeline.beam_options import LOCAL_BEAM_ARGS
    from pipeline.component_io import load_split_features
    from pipeline.components.embedder import Embedder
    from pipeline.components.fused_ranker import FusedRanker
    from pipeline.components.ranking_eval_gen import RankingEvalGen
    from pipeline.components.reid_example_gen import ReidExampleGen
    from pipeline.components.st_model_gen import STModelGen
    from pipeline.pipeline import eval_config
    from st_model.config import FusionRule, STConfig
    from st_model.estimate import estimate_st_model, frame_span
    from st_model.fused_ranking import read_ranking, write_ranking_in_memory
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    out, summary, _ = tiny_run
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    model_uri = lineage.latest_outputs(store, "tfusion", "Trainer_pretrain")["model"][0].uri
    gen = ReidExampleGen(dataset_dir=os.path.join(out, "data", "target"))
    model = tfx.dsl.Importer(source_uri=model_uri,
                             artifact_type=tfx.types.standard_artifacts.Model).with_id("model")
    embed = Embedder(examples=gen.outputs["examples"], model=model.outputs["result"])
    st = STModelGen(features=embed.outputs["features"])
    ranker = FusedRanker(features=embed.outputs["features"], st_model=st.outputs["st_model"])
    evalgen = RankingEvalGen(features=embed.outputs["features"],
                             st_model=st.outputs["st_model"], examples=gen.outputs["examples"])
    evaluator = tfx.components.Evaluator(examples=evalgen.outputs["eval_examples"],
                                         model=model.outputs["result"],
                                         eval_config=eval_config(tiny_config(), gated=False))
    db = str(tmp_path / "mp.sqlite")
    mp_args = [a for a in LOCAL_BEAM_ARGS if not a.startswith("--direct_")] + [
        "--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    tfx.orchestration.LocalDagRunner().run(tfx.dsl.Pipeline(
        pipeline_name="mp", pipeline_root=str(tmp_path / "root"),
        components=[gen, model, embed, st, ranker, evalgen, evaluator], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata
        .sqlite_metadata_connection_config(db), beam_pipeline_args=mp_args))
    mp = lineage.open_store(db)
    get = lambda node, key: lineage.latest_outputs(mp, "mp", node)[key][0].uri  # noqa: E731
    # the same embeddings as the in-memory Embedder of round 0 (same model, same images)
    ref = load_split_features(summary["rounds"][0]["features"])
    feats = load_split_features(get("Embedder", "features"))
    for a, b in zip(ref, feats):
        assert list(a.names) == list(b.names)
        np.testing.assert_allclose(a.features, b.features, atol=1e-5)
    # the ST model and the fused ranking equal the in-memory path on those features
    train = feats[0]
    mem = estimate_st_model(train, STConfig(), frame_span(*feats))
    assert load_st_model(get("STModelGen", "st_model")).same_as(mem)
    write_ranking_in_memory(train, STTables.from_model(mem), FusionRule(),
                            str(tmp_path / "ranking"))
    expect, got = read_ranking(str(tmp_path / "ranking")), read_ranking(
        get("FusedRanker", "fused_ranking"))
    assert expect.keys() == got.keys()
    for name in expect:
        assert expect[name][0] == got[name][0]
        np.testing.assert_allclose(expect[name][1], got[name][1], rtol=1e-6)
    assert os.path.isdir(get("Evaluator", "evaluation"))


def test_ranknet_round_measures_order_on_held_out_anchors(tiny_run):
    """TripletGen keeps a share of the anchors out of training (Split-eval) and the
    RankNet Trainer records the trained embedding's order accuracy on them; the run
    summary shows it for every RankNet round."""
    _, summary, _ = tiny_run
    assert summary["rounds"][0]["ranknet_held_out_order_accuracy"] is None
    accuracy = summary["rounds"][1]["ranknet_held_out_order_accuracy"]
    assert accuracy is not None and 0.0 <= accuracy <= 1.0
    from pipeline.run_summary import format_summary
    assert f"{100 * accuracy:13.1f}" in format_summary(summary)


def test_rerank_adds_reranked_metrics_gate_and_report_and_reruns_only_the_evaluation(
        tiny_run):
    """The tiny run again with `fusion_rule.rerank` on: RankingEvalGen and the
    Evaluators run again and TFMA reports fused_reranked_rank1/5/10/mAP equal to
    st_model.evaluation.evaluate_reranked; the gate checks fused + re-ranked rank-1
    too; the report shows both metric sets and ranked lists. Everything the
    re-ranking does not change (embeddings, ST models, fused rankings, RankNet
    rounds, the bundle) is served from the cache. The first run (rerank off) has
    none of it."""
    from tensorflow_model_analysis.writers.eval_config_writer import load_eval_run

    from pipeline.commands.run import run_pipeline
    from pipeline.component_io import load_split_features
    from st_model.config import FusionRule
    from st_model.evaluation import evaluate_reranked
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    out, first, _ = tiny_run
    first_page = open(first["report"], encoding="utf-8").read()
    assert "fused_reranked" not in first_page and "re-ranked" not in first_page
    assert all("fused_reranked" not in row for row in first["rounds"])
    assert not any(k.startswith("fused_reranked") for k in first["gate"]["candidate"])
    config = tiny_config(fusion_rule={"rerank": True, "rerank_k1": 10, "rerank_k2": 3})
    summary = run_pipeline(config, out)
    for node in ("Embedder_r1", "STModelGen_r1", "FusedRanker_r0", "TripletGen_r0",
                 "Trainer_ranknet_r1", "ServingBundle"):
        assert node_states(out, node)[-1] == "CACHED", node
    for node in ("RankingEvalGen_r0", "Evaluator_r0", "RankingEvalGen_r1", "Evaluator_r1"):
        assert node_states(out, node)[-1] == "COMPLETE", node
    rule = FusionRule(rerank=True, rerank_k1=10, rerank_k2=3)
    for row, before in zip(summary["rounds"], first["rounds"]):
        assert row["fused"] == before["fused"] and row["vision"] == before["vision"]
        query, gallery = load_split_features(row["features"], ("query", "gallery"))
        model = load_st_model(row["st_model"])
        want, _ = evaluate_reranked(query, gallery, STTables.from_model(model), rule,
                                    model.frame_rate)
        for k in ("rank1", "rank5", "rank10", "mAP"):
            assert row["fused_reranked"][k] == pytest.approx(getattr(want, k), abs=1e-6)
        assert row["st_model_metrics"]["fusion_reranked"]["visit_links"] >= 0
    gate = summary["gate"]
    assert gate["min_fused_reranked_rank1"] == config.min_fused_reranked_rank1
    assert gate["baseline"]["fused_reranked_rank1"] == pytest.approx(
        gate["candidate"]["fused_reranked_rank1"])    # the same bundle, re-evaluated
    eval_config = load_eval_run(summary["rounds"][-1]["evaluation"])[0]
    thresholds = {m.class_name: m.threshold for s in eval_config.metrics_specs
                  for m in s.metrics}
    assert thresholds["FusedRerankedRank1"].value_threshold.lower_bound.value == \
        config.min_fused_reranked_rank1
    page = open(summary["report"], encoding="utf-8").read()
    assert page.count('<tr data-ranking="fused_reranked">') == len(summary["rounds"])
    assert page.count('class="row" data-ranking="fused_reranked"') == \
        page.count('class="row" data-ranking="fused"') > 0
    assert "fused + re-ranked rank-1 (absolute)" in page


def test_rerank_teacher_ranks_a_round_re_ranked(tiny_run, tmp_path):
    """With rerank_teacher the FusedRanker gets the re-ranking settings (the bundle
    does not) and writes the re-ranked train ranking of the round's features, a
    valid fused ranking artifact that differs from the plain fused one."""
    import json as _json

    from pipeline.commands.run import build
    from pipeline.components.fused_ranker import _write_reranked
    from st_model.config import FusionRule
    from st_model.fused_ranking import read_fused_ranking, read_ranking
    out, summary, _ = tiny_run
    config = tiny_config(fusion_rule={"rerank_teacher": True, "rerank_k1": 10})
    parts = {c.id: c for c in build(config, out).components}
    rule = lambda node: _json.loads(parts[node].exec_properties["fusion_rule"])  # noqa: E731
    assert rule("FusedRanker_r0")["rerank_teacher"] and rule("FusedRanker_r0")["rerank_k1"] == 10
    bundle = rule("ServingBundle")
    assert not bundle["rerank_teacher"] and bundle["rerank_k1"] == FusionRule().rerank_k1
    evaluation = rule("RankingEvalGen_r1")
    assert evaluation["rerank_k1"] == 10 and not evaluation["rerank_teacher"]
    row = summary["rounds"][0]
    teacher = str(tmp_path / "teacher")
    n = _write_reranked(row["features"], row["st_model"], config.fusion_rule, teacher)
    ranking = read_fused_ranking(teacher)
    assert len(ranking.names) == n
    from pipeline import lineage
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    plain = read_ranking(lineage.latest_outputs(store, "tfusion", "FusedRanker_r0")
                         ["fused_ranking"][0].uri)
    got = read_ranking(teacher)
    assert got.keys() == plain.keys()
    assert any(got[k][0] != plain[k][0] for k in got)
