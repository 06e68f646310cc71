"""st_model.png: per camera pair, the estimated, random and (when train labels are
present) true Δ distributions — the plot the paper uses to show its ST model.
A target train split without identities (the usual unlabeled target) gets no true
curve, and the figure says so (NO_TRUE_CURVE).

Node pairs are pooled per camera pair over same-sequence pairs (cross-sequence
deltas compare different clocks and would blur the picture). Each curve is
normalised over the plotted window; Δ is shown in seconds (frame_rate).
"""
from __future__ import annotations

from typing import Optional, Union

import numpy as np

from st_model import smoothing
from core.features import FeatureHeader, FeatureSet, STPoints
from st_model.scoring import smoothed_evidence
from st_model.st_artifact import STModel


def _pooled(counts: np.ndarray, model: STModel, ci: int, cj: int) -> np.ndarray:
    n = model.nodes
    a = np.flatnonzero(n.cameras == ci)
    b = np.flatnonzero(n.cameras == cj)
    out = np.zeros(counts.shape[-1])
    for x in a:
        for y in b:
            if n.mode == "tfusion" or n.sequences[x] == n.sequences[y]:
                out += counts[x, y]
    return out


Points = Union[FeatureSet, FeatureHeader, STPoints]   # camera, frame, sequence, pid
NO_TRUE_CURVE = ("no true Δ curve: the train split has no identities (unlabeled), so "
                 "only the estimated and random Δ are drawn")


def has_identities(train: Points) -> bool:
    """Whether `train` carries identities (some pid > 0), from which the plot draws
    the true Δ curve."""
    return train.pid is not None and bool((np.asarray(train.pid) > 0).any())


def _true_counts(train: Points, model: STModel, ci: int, cj: int) -> np.ndarray:
    out = np.zeros(model.grid.n_bins)
    if train.pid is None:
        return out
    i = np.flatnonzero((train.camera == ci) & (train.pid > 0))
    j = np.flatnonzero((train.camera == cj) & (train.pid > 0))
    if i.size == 0 or j.size == 0:
        return out
    # every (i, j) of one identity and sequence: a sorted join on that key
    seq = np.asarray(train.sequence, np.int64)
    seq = seq - seq.min()
    key = np.asarray(train.pid, np.int64) * (int(seq.max()) + 1) + seq
    order = np.argsort(key[j], kind="stable")
    kj = key[j][order]
    lo = np.searchsorted(kj, key[i], "left")
    n = np.searchsorted(kj, key[i], "right") - lo
    ii = np.repeat(np.arange(i.size), n)
    jj = order[np.repeat(lo, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
    d = train.frame[j[jj]] - train.frame[i[ii]]
    return np.bincount(model.grid.bin_of(d), minlength=model.grid.n_bins).astype(float)


def plot_st_model(model: STModel, train: Points, path: str,
                  max_cameras: int = 8, evidence: Optional[np.ndarray] = None) -> str:
    """Write the per-camera-pair figure to `path` (PNG, any Beam filesystem) and
    return the path; `train` needs its ST points only (camera, frame, sequence, pid);
    `evidence`: smoothed_evidence(model)[0] when already at hand (STTables.evidence)."""
    fig = st_figure(model, train, max_cameras, evidence)
    from core.files import write_with
    write_with(path, lambda buf: fig.savefig(buf, dpi=110, format="png"))
    return path


def st_figure(model: STModel, train: Points, max_cameras: int = 8,
              evidence: Optional[np.ndarray] = None):
    """The matplotlib figure of plot_st_model: a pyplot-free Figure on the Agg canvas,
    so it can be drawn on a thread beside other work (nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    cams = list(np.unique(model.nodes.cameras))[:max_cameras]
    prm = model.params
    if model.nodes.mode == "tfusion":
        k = model.window_bins()
        smooth = lambda c: smoothing.box_smooth(c, k)  # noqa: E731
        evidence = model.visual
        smooth_est = smooth
    else:
        sigma = prm["bandwidth_frames"] / model.grid.width
        smooth = lambda c: smoothing.gaussian_smooth(c, sigma)  # noqa: E731
        if evidence is None:                     # read against chance, smoothed
            evidence = smoothed_evidence(model)[0]
        smooth_est = lambda c: c  # noqa: E731
    fps = model.frame_rate
    n = len(cams)
    fig = Figure(figsize=(2.4 * n, 1.9 * n))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, n, squeeze=False)
    centres = model.grid.centres() / fps
    for r, ci in enumerate(cams):
        for c, cj in enumerate(cams):
            ax = axes[r][c]
            ax.tick_params(labelsize=5)
            if ci == cj:
                ax.axis("off")
                continue
            est = smooth_est(_pooled(evidence, model, ci, cj))
            rnd = smooth(_pooled(model.random, model, ci, cj))
            tru = smooth(_true_counts(train, model, ci, cj))
            ref = est if est.sum() > 0 else tru
            if ref.sum() <= 0:
                ax.set_title(f"c{ci}→c{cj}: no pairs", fontsize=6)
                continue
            cdf = np.cumsum(ref) / ref.sum()
            lo, hi = int(np.searchsorted(cdf, 0.25)), int(np.searchsorted(cdf, 0.75)) + 1
            pad = max(10, hi - lo)
            lo, hi = max(0, lo - pad), min(len(ref), hi + pad)
            sl = slice(lo, hi)
            for y, label, style in ((est, "estimated", "-"), (rnd, "random", ":"),
                                    (tru, "true", "--")):
                if y[sl].sum() > 0:
                    ax.plot(centres[sl], y[sl] / y[sl].sum(), style, lw=0.8, label=label)
            ax.set_title(f"c{ci}→c{cj}", fontsize=6)
            # each curve sums to 1 in its window: only the shapes and Δ carry meaning,
            # so no y ticks (and a few x ticks: tick layout was most of the drawing)
            ax.set_yticks([])
            ax.xaxis.set_major_locator(MaxNLocator(4))
    handles, labels = next(((h, l) for h, l in (a.get_legend_handles_labels()
                                                for a in axes.flat) if h), ([], []))
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=7)
    title = (f"ST model ({model.nodes.mode}): P(Δ | camera pair), Δ in seconds; "
             f"bin {model.grid.width} frames")
    labeled = has_identities(train)
    fig.suptitle(title if labeled else f"{title}\n{NO_TRUE_CURVE}", fontsize=8)
    _fixed_layout(fig, n, 0.97 if labeled else 0.94)
    return fig


def _fixed_layout(fig, n: int, top: float) -> None:
    """The margins tight_layout finds for this grid of 5-point tick labels and 6-point
    titles (measured on a 6 × 6 figure), fixed in inches: tight_layout measures every
    tick label of every axes and took 2 s of a 6-camera plot."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=0.40 / w, right=1 - 0.23 / w, bottom=0.31 / h,
                        top=top - 0.57 / h, wspace=0.28, hspace=0.35)
