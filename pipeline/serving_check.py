"""Score a run's query × gallery through its pushed bundle's `fused_scores` signature
in a TensorFlow-only process (pipeline/fused_scores_client.py) and compare rank-1 /
mAP with the gated round's TFMA figures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Dict

import numpy as np

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fused_scores_client.py")


def signature_inputs(query, gallery) -> Dict[str, np.ndarray]:
    """The eight `fused_scores` inputs of two FeatureSets."""
    return {"query_embedding": query.features, "query_camera": query.camera,
            "query_sequence": query.sequence, "query_frame": query.frame,
            "gallery_embedding": gallery.features, "gallery_camera": gallery.camera,
            "gallery_sequence": gallery.sequence, "gallery_frame": gallery.frame}


def score_in_tensorflow_only_process(serving: str, query, gallery, work: str) -> Dict:
    """fused / vision / st_factor [Q, G] from a fresh process that imports only
    TensorFlow; raises when it fails or loads any project module."""
    inputs, out = os.path.join(work, "inputs.npz"), os.path.join(work, "scores.npz")
    np.savez(inputs, **signature_inputs(query, gallery))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, CLIENT, serving, inputs, out], cwd=work,
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"fused_scores client failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["project_modules"]:
        raise RuntimeError(f"the client loaded project modules {report['project_modules']}")
    with np.load(out) as z:
        return {k: z[k] for k in z.files}


def check_pushed_bundle(summary: Dict) -> Dict:
    """Rank-1 / mAP of the gated round's query × gallery scored by the pushed bundle,
    beside the round's TFMA figures (percent)."""
    from pipeline.component_io import load_split_features
    from st_model import metrics
    row = summary["rounds"][-1]
    # the run may have named a relative output folder; the client runs elsewhere
    serving = os.path.abspath(summary["push"]["destination"])
    _, query, gallery = load_split_features(row["features"])
    with tempfile.TemporaryDirectory() as work:
        fused = score_in_tensorflow_only_process(serving, query, gallery, work)["fused"]
    ranks = metrics.query_match_ranks(lambda q, g: fused[np.ix_(q, g)], query.pid,
                                      query.camera, gallery.pid, gallery.camera)
    got = metrics.ranking_result(ranks)
    return {"bundle": serving, "queries": got.queries,
            "signature": {"rank1": got.rank1, "mAP": got.mAP},
            "tfma": {"rank1": row["fused"]["rank1"], "mAP": row["fused"]["mAP"]}}
