"""A colour-histogram re-ID baseline, to check that a SynthReID dataset has the
cross-domain gap it is meant to have.

Features: HSV histograms of horizontal stripes (hue weighted by saturation, so greys
do not vote for a hue), square-rooted (Hellinger). "Training" on a labeled split is
Fisher's linear discriminant analysis: the projection W maximising
tr((W^T S_w W)^-1 W^T S_b W), from the generalised eigenproblem S_b w = lambda S_w w
with S_w shrunk toward its mean diagonal. Trained on the source and applied to the
target it transfers imperfectly; trained on the target it is the same-domain figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image
from scipy.linalg import eigh

from core.datasets import read_dataset_folder

STRIPES = 8
H_BINS, S_BINS, V_BINS = 16, 4, 4
CENTRE_SIGMA = 0.2   # pixel weight exp(-x^2 / 2 sigma^2), x across the crop in [-.5, .5]


def colour_histogram(img: Image.Image, stripes: int = STRIPES) -> np.ndarray:
    """Hellinger-mapped HSV histograms of `stripes` horizontal stripes, pixels
    weighted by a Gaussian across the crop (the person stands in the middle)."""
    hsv = np.asarray(img.convert("RGB").convert("HSV"), dtype=np.int64)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    rows = hsv.shape[0]
    stripe = np.minimum(np.arange(rows) * stripes // rows, stripes - 1)[:, None]
    stripe = np.broadcast_to(stripe, h.shape)
    cols = hsv.shape[1]
    x = (np.arange(cols) + 0.5) / cols - 0.5
    wx = np.broadcast_to(np.exp(-0.5 * (x / CENTRE_SIGMA) ** 2)[None, :], h.shape)
    hb = (h * H_BINS) >> 8
    sb = (s * S_BINS) >> 8
    vb = (v * V_BINS) >> 8
    hist_h = np.bincount((stripe * H_BINS + hb).ravel(), weights=(wx * s / 255.0).ravel(),
                         minlength=stripes * H_BINS).reshape(stripes, H_BINS)
    hist_s = np.bincount((stripe * S_BINS + sb).ravel(), weights=wx.ravel(),
                         minlength=stripes * S_BINS).reshape(stripes, S_BINS)
    hist_v = np.bincount((stripe * V_BINS + vb).ravel(), weights=wx.ravel(),
                         minlength=stripes * V_BINS).reshape(stripes, V_BINS)
    parts = []
    for hist in (hist_h, hist_s, hist_v):
        hist = hist.astype(np.float64)
        hist /= np.maximum(hist.sum(axis=1, keepdims=True), 1e-9)
        parts.append(np.sqrt(hist))
    return np.concatenate(parts, axis=1).ravel().astype(np.float32)


@dataclass
class SplitFeatures:
    features: np.ndarray      # [N, D] float32
    pid: np.ndarray           # [N] int64
    camera: np.ndarray        # [N] int64
    names: List[str]


def image_features(paths: Sequence[str]) -> np.ndarray:
    """Colour features [N, D] of the image files `paths`."""
    feats = []
    for path in paths:
        with Image.open(path) as im:
            feats.append(colour_histogram(im))
    d = STRIPES * (H_BINS + S_BINS + V_BINS)
    return np.stack(feats) if feats else np.zeros((0, d), np.float32)


def dataset_features(root: str) -> Dict[str, SplitFeatures]:
    """Colour features of every split of a Market-layout folder."""
    listing = read_dataset_folder(root)
    out = {}
    for split, recs in listing.splits.items():
        out[split] = SplitFeatures(
            image_features([r.path for r in recs]),
            np.array([r.point.pid for r in recs], np.int64),
            np.array([r.point.camera for r in recs], np.int64),
            [r.name for r in recs])
    return out


@dataclass
class Projection:
    """x -> (x - mean) @ W."""
    mean: np.ndarray
    W: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) @ self.W


def fit_lda(x: np.ndarray, pid: np.ndarray, dim: int = 64,
            shrink: float = 0.1) -> Projection:
    """Fisher LDA on labeled features (pids > 0): S_b w = lambda S_w w, with
    S_w <- (1 - shrink) S_w + shrink * mean(diag S_w) I."""
    keep = pid > 0
    x, pid = x[keep].astype(np.float64), pid[keep]
    mean = x.mean(axis=0)
    ids, inv = np.unique(pid, return_inverse=True)
    centres = np.zeros((len(ids), x.shape[1]))
    np.add.at(centres, inv, x)
    counts = np.bincount(inv).astype(np.float64)
    centres /= counts[:, None]
    within = x - centres[inv]
    sw = within.T @ within / max(len(x) - len(ids), 1)
    between = (centres - mean) * np.sqrt(counts)[:, None]
    sb = between.T @ between / len(x)
    sw = (1 - shrink) * sw + shrink * np.mean(np.diag(sw)) * np.eye(len(sw))
    vals, vecs = eigh(sb, sw)
    order = np.argsort(vals)[::-1][:min(dim, len(ids) - 1, x.shape[1])]
    return Projection(mean.astype(np.float32), vecs[:, order].astype(np.float32))


def identity_projection(x: np.ndarray) -> Projection:
    return Projection(x.mean(axis=0).astype(np.float32) * 0,
                      np.eye(x.shape[1], dtype=np.float32))


def evaluate(proj: Projection, data: Dict[str, SplitFeatures]):
    """Rank-1 / mAP of cosine similarity after `proj`, Market protocol."""
    from st_model.metrics import evaluate_features
    q, g = data["query"], data["gallery"]
    return evaluate_features(proj(q.features), proj(g.features), q.pid, q.camera,
                             g.pid, g.camera)


def transfer_table(source: Dict[str, SplitFeatures], target: Dict[str, SplitFeatures],
                   dim: int = 64, shrink: float = 0.1) -> Dict[str, Tuple]:
    """Rank-1 / mAP of: no training, LDA trained on the target train split (same
    domain), LDA trained on the source train split (cross domain), all on the
    target query/gallery; and source->source."""
    tr_t = fit_lda(target["train"].features, target["train"].pid, dim, shrink)
    tr_s = fit_lda(source["train"].features, source["train"].pid, dim, shrink)
    return {
        "raw histogram -> target": evaluate(identity_projection(target["train"].features),
                                            target),
        "target-trained -> target (same domain)": evaluate(tr_t, target),
        "source-trained -> target (cross domain)": evaluate(tr_s, target),
        "source-trained -> source (same domain)": evaluate(tr_s, source),
    }


def chance_rank1(data: Dict[str, SplitFeatures]) -> float:
    """Expected rank-1 (percent) of a random ranking: mean over queries of
    (#true matches / #valid gallery images)."""
    q, g = data["query"], data["gallery"]
    vals: Sequence[float] = []
    for p, c in zip(q.pid, q.camera):
        valid = (g.pid != -1) & ~((g.pid == p) & (g.camera == c))
        m = np.sum(valid & (g.pid == p))
        if m:
            vals.append(m / np.sum(valid))
    return 100.0 * float(np.mean(vals)) if len(vals) else 0.0
