"""The serving bundle's `fused_scores` signature: the ST model in the SavedModel,
equal to st_model's scoring, loaded by a process that imports only TensorFlow, by
`saved_model_cli run`, and fed the README's / bundle's REST :predict body."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import serving_case
from core.features import make_feature_set
from st_model.config import FusionRule, STConfig, resolve_settings
from st_model.scoring import BlockScorer, STTables
from st_model.st_artifact import load_st_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = 1e-5


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("bundle"))
    return serving_case.bundle(root)


def query_gallery():
    """Query / gallery of new identities, plus a query in a camera (9) and one in a
    node (camera 1, sequence 7) the train split never saw, and a gallery image there."""
    q = serving_case.simulated_split(15, 1, pid0=500)
    g = serving_case.simulated_split(25, 2, pid0=600)
    x = np.concatenate([q.features[:2], g.features[:1]])
    qf = np.concatenate([q.features, x[:2]])
    qc = np.concatenate([q.camera, [9, 1]])
    qs = np.concatenate([q.sequence, [1, 7]])
    qt = np.concatenate([q.frame, [5000, 6000]])
    gf = np.concatenate([g.features, x[2:]])
    gc = np.concatenate([g.camera, [9]])
    gs = np.concatenate([g.sequence, [1]])
    gt = np.concatenate([g.frame, [5300]])
    return (make_feature_set(qf, qc, qt, qs), make_feature_set(gf, gc, gt, gs))


def feed_of(q, g):
    from pipeline.serving_check import signature_inputs
    return signature_inputs(q, g)


def reference(serving, q, g, config=FusionRule()):
    tables = STTables.from_model(load_st_model(os.path.join(serving, "st_model")))
    return BlockScorer(tables, q, g, config)(np.arange(len(q)), np.arange(len(g)))


def test_tensorflow_only_process_scores_like_st_model(bundle, tmp_path):
    from pipeline.serving_check import score_in_tensorflow_only_process
    q, g = query_gallery()
    out = score_in_tensorflow_only_process(bundle, q, g, str(tmp_path))
    ref = reference(bundle, q, g)
    assert out["fused"].shape == (len(q), len(g))
    np.testing.assert_allclose(out["fused"], ref, atol=TOL, rtol=0)
    np.testing.assert_allclose(out["vision"], q.features @ g.features.T, atol=TOL)
    # the ST term is real (not neutral everywhere) and neutral for unseen nodes
    st = out["st_factor"]
    assert np.ptp(st[:-2, :-1]) > 1.0
    assert np.ptp(st[-2]) == pytest.approx(0, abs=1e-9)    # unseen camera 9: one value
    assert np.ptp(st[-1]) == pytest.approx(0, abs=1e-9)    # unseen node c1s7
    # fusion changes the order: the signature is not vision alone
    assert (np.argsort(-out["fused"], axis=1) != np.argsort(-out["vision"], axis=1)).any()


def test_saved_model_cli_run(bundle, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        cli = shutil.which("saved_model_cli")
    assert cli, "saved_model_cli not installed with TensorFlow"
    q, g = query_gallery()
    feed = feed_of(q, g)
    np.savez(tmp_path / "in.npz", **feed)
    inputs = ";".join(f"{k}={tmp_path / 'in.npz'}[{k}]" for k in feed)
    done = subprocess.run([cli, "run", "--dir", bundle, "--tag_set", "serve",
                           "--signature_def", "fused_scores", "--inputs", inputs,
                           "--outdir", str(tmp_path / "cli")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    fused = np.load(tmp_path / "cli" / "fused.npy")
    np.testing.assert_allclose(fused, reference(bundle, q, g), atol=TOL, rtol=0)


def readme_request():
    """The REST body shown in the README's serving section."""
    text = open(os.path.join(REPO, "README.md")).read()
    m = re.search(r"<!-- fused_scores request -->\s*```json\n(.*?)```", text, re.S)
    assert m, "README has no fused_scores request body"
    return json.loads(m.group(1))


def feed_rest_inputs(serving, inputs):
    """A REST body's `inputs` through the loaded signature, typed as it declares."""
    import tensorflow as tf
    fn = tf.saved_model.load(serving).signatures["fused_scores"]
    specs = fn.structured_input_signature[1]
    res = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in res.items()}


def rest_reference(serving, inputs):
    q = make_feature_set(np.array(inputs["query_embedding"]), inputs["query_camera"],
                         inputs["query_frame"], inputs["query_sequence"])
    g = make_feature_set(np.array(inputs["gallery_embedding"]), inputs["gallery_camera"],
                         inputs["gallery_frame"], inputs["gallery_sequence"])
    return reference(serving, q, g)


def test_rest_predict_body_through_the_loaded_signature(bundle):
    body = json.load(open(os.path.join(bundle, "fused_scores_request.json")))
    assert body["signature_name"] == "fused_scores"
    out = feed_rest_inputs(bundle, body["inputs"])
    np.testing.assert_allclose(out["fused"], rest_reference(bundle, body["inputs"]),
                               atol=TOL, rtol=0)
    # the README's body is a body of the same request, embeddings cut to 4 numbers
    shown = readme_request()
    assert shown["signature_name"] == "fused_scores"
    assert set(shown["inputs"]) == set(body["inputs"])
    dim = len(body["inputs"]["query_embedding"][0])
    shown_in = dict(shown["inputs"])
    for k in ("query_embedding", "gallery_embedding"):
        rows = np.array(shown_in[k], np.float64)
        shown_in[k] = np.pad(rows, ((0, 0), (0, dim - rows.shape[1]))).tolist()
    out = feed_rest_inputs(bundle, shown_in)
    np.testing.assert_allclose(out["fused"], rest_reference(bundle, shown_in),
                               atol=TOL, rtol=0)


def test_manifest_lists_signatures_and_inputs(bundle):
    manifest = json.load(open(os.path.join(bundle, "tfusion_manifest.json")))
    sig = manifest["signatures"]
    assert set(sig) == {"serving_default", "embed_image_bytes", "fused_scores"}
    assert set(sig["fused_scores"]["inputs"]) == {
        f"{w}_{k}" for w in ("query", "gallery")
        for k in ("embedding", "camera", "sequence", "frame")}
    assert set(sig["fused_scores"]["outputs"]) == {"fused", "vision", "st_factor"}
    assert "25.0 frames per second" in sig["fused_scores"]["time"]
    assert manifest["version"] == 2 and manifest["embedding_dim"] == serving_case.DIM


def test_bundle_embeds_like_the_model_it_was_built_from(bundle, tmp_path):
    from trainer.export import load_embedder
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (3, serving_case.H, serving_case.W, 3)).astype(np.float32)
    src = load_embedder(os.path.join(os.path.dirname(bundle), "model"))
    np.testing.assert_array_equal(load_embedder(bundle).embed_images(images),
                                  src.embed_images(images))


@pytest.mark.parametrize("config", [
    resolve_settings(rule=FusionRule(fusion="bayes")),
    resolve_settings(rule=FusionRule(fusion="bayes", alpha=0.2, beta=0.1)),
    resolve_settings(rule=FusionRule(fusion="logistic")),
    resolve_settings(STConfig(mode="tfusion")),
    resolve_settings(STConfig(max_delta=2000)),
], ids=["bayes", "bayes_alpha_beta", "logistic", "tfusion_mode", "loglinear_reach"])
def test_every_fusion_rule_matches_st_model(config, tmp_path):
    """The in-graph function of each rule (not saved) against BlockScorer."""
    import tensorflow as tf

    from st_model.estimate import estimate_st_model
    from trainer.fused_scoring import FusedScoring
    train = serving_case.simulated_split(120, 0)
    model = estimate_st_model(train, config.st, 30000)
    tables = STTables.from_model(model)
    q, g = query_gallery()
    if config.st.mode == "tfusion":   # out of reach: other sequence or |Δ| > max_delta
        model.params["max_delta"] = 2000
        tables = STTables.from_model(model)
    reach = config.st.mode != "tfusion" and config.st.max_delta
    if reach:                         # the setting reaches the model's parameters
        assert model.params["max_delta"] == 2000
    ref = BlockScorer(tables, q, g, config.rule)(np.arange(len(q)), np.arange(len(g)))
    fn = FusedScoring(tables, config.rule).fused_scores
    out = fn(**{k: tf.constant(v) for k, v in feed_of(q, g).items()})
    fused = out["fused"].numpy()
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isfinite(fused), finite)
    np.testing.assert_allclose(fused[finite], ref[finite], atol=TOL, rtol=1e-6)
    if config.st.mode == "tfusion":
        assert (ref == 0).any()
    if reach:                         # every mode: |Δ| > max_delta out of reach
        far = np.abs(g.frame[None, :] - q.frame[:, None]) > 2000
        assert far.any() and (~far).any()
        np.testing.assert_array_equal(np.isneginf(ref), far)


def test_client_refuses_a_bundle_that_loads_project_code(bundle, tmp_path, monkeypatch):
    """The TensorFlow-only check can fail: a client that imports st_model is caught."""
    from pipeline import serving_check
    bad = tmp_path / "client.py"
    bad.write_text("import sys\nsys.path.insert(0, %r)\nimport st_model.scoring\n" % REPO
                   + open(serving_check.CLIENT).read())
    monkeypatch.setattr(serving_check, "CLIENT", str(bad))
    q, g = query_gallery()
    with pytest.raises(RuntimeError, match="project modules"):
        serving_check.score_in_tensorflow_only_process(bundle, q, g, str(tmp_path))
