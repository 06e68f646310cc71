"""The `fused_scores` signature: query × gallery fusion of vision and the ST model in
the TensorFlow graph, so a model server scores without project code.

The ST model enters as the lookup tables `st_model.scoring.STTables` already computes
(per ordered node pair and time bin, index M = unseen node): the shrunk log-ratio
log(P_st / P_rand) for the log-linear fusion, P_st / P_rand / P_diff for eq. 9, P_st
for the logistic fusion. They are stored as non-trainable variables (the SavedModel's
variables/ files); the graph only looks them up, exactly as
`st_model.scoring.BlockScorer` does:

    node(c, s)  = the train node (c, s) (tfusion mode: (c, 0)), else M (unseen: neutral)
    bin(Δ)      = clip(⌊(Δ − lo) / w⌋, 0, B − 1),   Δ = t_gallery − t_query (frames)
    table index = (node_q · (M + 1) + node_g) · B + bin(Δ)

and fuses with the rule of `st_model.fusion`:
    loglinear  fused = w · (cos − μ) / σ + LR               st_factor = LR
    bayes      fused = st_factor · (P_v + α / (1 − α − β))        (eq. 9)
               st_factor = (P_st(1 − α) − β P_diff) / P_rand
    logistic   fused = f(P_v; λ0, γ0) · st_factor           st_factor = f(P_st; λ1, γ1)
with cos the cosine of the L2-normalised embeddings, P_v = (1 + cos) / 2 and pairs
with |Δ| > max_delta (when the ST model sets a reach) or, in tfusion mode, of
different sequences out of reach (LR = −inf, P_st = 0).
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from st_model.config import FusionRule
from st_model.fusion import EPS
from st_model.scoring import STTables

SIGNATURE = "fused_scores"
OUTPUTS = ("fused", "vision", "st_factor")

# input name -> (dtype, rank, meaning); the manifest lists these
INPUTS: Dict[str, tuple] = {
    "query_embedding": (tf.float32, 2, "[Q, D] query embeddings (output of embed_image_bytes "
                                       "or serving_default; L2-normalised in the graph)"),
    "query_camera": (tf.int64, 1, "[Q] camera id of each query (as in the file names)"),
    "query_sequence": (tf.int64, 1, "[Q] sequence id (a Market clock, e.g. s2 -> 2); "
                                    "1 for datasets without sequences"),
    "query_frame": (tf.int64, 1, "[Q] frame number of each query on its sequence's clock"),
    "gallery_embedding": (tf.float32, 2, "[G, D] gallery embeddings"),
    "gallery_camera": (tf.int64, 1, "[G] camera id of each gallery image"),
    "gallery_sequence": (tf.int64, 1, "[G] sequence id of each gallery image"),
    "gallery_frame": (tf.int64, 1, "[G] frame number of each gallery image"),
}
OUTPUT_MEANINGS = {
    "fused": "float64 [Q, G] fused score (higher = more likely the same person)",
    "vision": "float64 [Q, G] cosine similarity of the embeddings",
    "st_factor": "float64 [Q, G] the ST term of the fusion rule (loglinear: shrunk "
                 "log(P_st / P_rand), 0 + neutral offset for unseen nodes; bayes: "
                 "(P_st(1-a) - b P_diff) / P_rand; logistic: f(P_st))",
}


def _table(values: np.ndarray, name: str) -> tf.Variable:
    return tf.Variable(np.asarray(values, np.float32).reshape(-1), trainable=False,
                       name=name)


class FusedScoring(tf.Module):
    """The ST model of one bundle as lookup tables, and the `fused_scores` function."""

    def __init__(self, tables: STTables, config: FusionRule, dim: Optional[int] = None):
        """`dim`: the embedding dimension the signature declares (None: any)."""
        super().__init__(name="tfusion_fused_scoring")
        model = tables.model
        nodes, grid, prm = model.nodes, model.grid, model.params
        m, n_bins = nodes.size, grid.n_bins
        self.node_camera = tf.Variable(nodes.cameras.astype(np.int64), trainable=False,
                                       name="node_camera")
        self.node_sequence = tf.Variable(nodes.sequences.astype(np.int64), trainable=False,
                                         name="node_sequence")
        rule = config.fusion
        if rule == "loglinear":
            self.log_ratio = _table(tables.log_ratio, "st_log_ratio")
        else:
            self.p_st = _table(tables.p_st, "st_p_st")
        if rule == "bayes":
            self.p_rand = _table(tables.p_rand, "st_p_rand")
            if config.beta:
                self.p_diff = _table(tables.p_diff, "st_p_diff")
        tfusion = nodes.mode == "tfusion"
        max_delta = prm.get("max_delta")
        mean = float(prm.get("vision_mean", 0.0))
        scale = float(prm.get("vision_scale", 1.0))
        lo, width = int(grid.lo), int(grid.width)
        side = (m + 1) * n_bins
        specs = [tf.TensorSpec([None, dim] if rank == 2 else [None], dtype, name)
                 for name, (dtype, rank, _) in INPUTS.items()]

        def node_index(camera, sequence):
            seq = tf.zeros_like(sequence) if tfusion else sequence
            hit = ((camera[:, None] == self.node_camera[None, :])
                   & (seq[:, None] == self.node_sequence[None, :]))
            idx = tf.argmax(tf.cast(hit, tf.int32), axis=1, output_type=tf.int64)
            return tf.where(tf.reduce_any(hit, axis=1), idx, tf.constant(m, tf.int64))

        @tf.function(input_signature=specs)
        def fused_scores(query_embedding, query_camera, query_sequence, query_frame,
                         gallery_embedding, gallery_camera, gallery_sequence,
                         gallery_frame):
            q = tf.math.l2_normalize(query_embedding, axis=1)
            g = tf.math.l2_normalize(gallery_embedding, axis=1)
            cos = tf.cast(tf.matmul(q, g, transpose_b=True), tf.float64)
            delta = gallery_frame[None, :] - query_frame[:, None]
            bins = tf.clip_by_value(tf.math.floordiv(delta - lo, width), 0, n_bins - 1)
            flat = (node_index(query_camera, query_sequence)[:, None] * side
                    + node_index(gallery_camera, gallery_sequence)[None, :] * n_bins + bins)

            def take(table):
                return tf.cast(tf.gather(table, flat), tf.float64)

            reach = None                      # as BlockScorer._reach
            if tfusion:
                reach = query_sequence[:, None] == gallery_sequence[None, :]
            if max_delta is not None:
                near = tf.abs(delta) <= max_delta
                reach = near if reach is None else reach & near
            if rule == "loglinear":
                st = take(self.log_ratio)
                if reach is not None:
                    st = tf.where(reach, st, tf.constant(-np.inf, tf.float64))
                fused = config.weight * ((cos - mean) / scale) + st
            else:
                p_v = tf.clip_by_value((1.0 + cos) * 0.5, 0.0, 1.0)
                p_st = take(self.p_st)
                if reach is not None:
                    p_st = tf.where(reach, p_st, tf.zeros_like(p_st))
                if rule == "bayes":
                    a, b = config.alpha, config.beta
                    p_diff = take(self.p_diff) if b else 0.0
                    p_rand = tf.maximum(take(self.p_rand), EPS)
                    st = (p_st * (1.0 - a) - b * p_diff) / p_rand
                    fused = st * (p_v + a / (1.0 - a - b))
                else:
                    lam0, g0, lam1, g1 = config.logistic
                    st = 1.0 / (1.0 + lam1 * tf.exp(-g1 * p_st))
                    fused = 1.0 / (1.0 + lam0 * tf.exp(-g0 * p_v)) * st
            return {"fused": fused, "vision": cos, "st_factor": st}

        self.fused_scores = fused_scores


def signature_manifest(config: FusionRule, frame_rate) -> Dict:
    """What the manifest says about the `fused_scores` signature."""
    return {"inputs": {k: v[2] for k, v in INPUTS.items()},
            "outputs": dict(OUTPUT_MEANINGS),
            "fusion": config.fusion,
            "time": f"frames; Δ = gallery_frame − query_frame; {frame_rate} frames per "
                    "second; frames of different sequences are on different clocks",
            "unseen": "a camera or (camera, sequence) the ST model never saw gets the "
                      "neutral ST factor (vision decides)"}


def example_request(tables: STTables, dim: int, seed: int = 0) -> Dict:
    """A TensorFlow Serving REST `:predict` body for `fused_scores` (columnar
    "inputs"): 2 queries × 3 gallery images at known ST nodes, random unit
    embeddings of dimension `dim` (4 decimals)."""
    nodes, grid = tables.model.nodes, tables.model.grid
    rng = np.random.default_rng(seed)

    def unit(n):
        x = rng.standard_normal((n, dim))
        return np.round(x / np.linalg.norm(x, axis=1, keepdims=True), 4).tolist()

    pick = lambda i: int(i % nodes.size)  # noqa: E731
    seq = lambda i: int(nodes.sequences[pick(i)]) or 1  # noqa: E731
    t0 = int(max(0, -grid.lo))
    step = int(grid.width)
    return {"signature_name": SIGNATURE, "inputs": {
        "query_embedding": unit(2),
        "query_camera": [int(nodes.cameras[pick(0)]), int(nodes.cameras[pick(1)])],
        "query_sequence": [seq(0), seq(1)],
        "query_frame": [t0, t0 + 10 * step],
        "gallery_embedding": unit(3),
        "gallery_camera": [int(nodes.cameras[pick(i)]) for i in (1, 2, 3)],
        "gallery_sequence": [seq(i) for i in (1, 2, 3)],
        "gallery_frame": [t0 + step, t0 + 3 * step, t0 + 20 * step],
    }}
