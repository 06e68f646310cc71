"""Estimating the ST model from a train split (paper §3.2), in memory.

The steps, each a function the Beam transforms (beam_transforms.py) call too:
1. nodes of the train split (nodes.build_nodes);
2. top-k visual neighbours of every train image among other cameras, blockwise
   (neighbours.top_k) -> visual deltas per node pair (block_visual_deltas);
3. exact random model on a coarse grid (random_model.random_histogram);
4. bandwidth by LOO likelihood and the bin width it implies (choose_grid);
5. visual and random counts on that grid -> STModel (assemble_model).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from st_model import histograms, neighbours, random_model, smoothing, vision
from st_model.config import FusionConfig
from st_model.features import FeatureSet
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex, build_nodes
from st_model.progress import counter, log
from st_model.st_artifact import STModel

MAX_TABLE_ENTRIES = 16_000_000   # M² · B cap of the lookup tables (bins widen past it)
MIN_BANDWIDTH = 1.0              # frames


def frame_span(*sets: FeatureSet) -> int:
    """Largest possible |Δ| between any two images of the given sets."""
    lo = min(int(s.frame.min()) for s in sets)
    hi = max(int(s.frame.max()) for s in sets)
    return max(1, hi - lo)


def capped_grid(span: int, width: int, n_nodes: int) -> DeltaGrid:
    """A grid of bins of `width` frames covering ±span, the width doubled until the
    M² · B lookup tables respect MAX_TABLE_ENTRIES."""
    while n_nodes * n_nodes * (2 * span / width + 2) > MAX_TABLE_ENTRIES:
        width *= 2
    return histograms.make_grid(span, width)


def coarse_grid(span: int, config: FusionConfig, n_nodes: int) -> DeltaGrid:
    """The widest grid (bin_frames), itself widened to respect MAX_TABLE_ENTRIES."""
    return capped_grid(span, config.bin_frames, n_nodes)


def block_neighbours(train: FeatureSet, rows: np.ndarray, k: int) -> np.ndarray:
    """Top-k visual neighbours (other cameras) of train rows: int64 [R, k], -1 = none."""
    score = neighbours.visual_score_block(train.features, train.features,
                                          train.camera, train.camera, self_pairs=True)
    idx, _ = neighbours.top_k_rows(score, rows, len(train), k)
    return idx


def block_visual_deltas(train: FeatureSet, node: np.ndarray, rows: np.ndarray,
                        idx: np.ndarray, mode: str, n_nodes: int
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """(pair id, Δ) of the in-reach (row, neighbour) pairs of one block."""
    i, j = histograms.neighbour_pairs(idx)
    return histograms.pair_deltas(rows[i], j, node, train.frame, train.camera,
                                  train.sequence, mode, n_nodes)


def choose_grid(pair_id: np.ndarray, delta: np.ndarray, coarse_random: np.ndarray,
                grid0: DeltaGrid, span: int, config: FusionConfig, n_nodes: int
                ) -> Tuple[DeltaGrid, float, Dict]:
    """Bandwidth h (frames) and the grid it implies (bin width ≈ h/2, ≤ bin_frames).

    h is the pooled LOO-likelihood choice (smoothing.choose_bandwidth) unless fixed in
    the config; tfusion mode keeps bin_frames and its ±window box.
    """
    if config.mode == "tfusion":
        return grid0, 0.0, {"bandwidth_rule": "tfusion box window",
                            "window_frames": config.window_frames}
    if config.bandwidth is not None:
        h, info = float(config.bandwidth), {"bandwidth_rule": "fixed"}
    else:
        bg = smoothing.background_density(coarse_random, grid0, pair_id, delta, n_nodes)
        cands = smoothing.bandwidth_grid(MIN_BANDWIDTH, max(2.0, span / 8))
        h, c, curve = smoothing.choose_bandwidth(pair_id, delta, bg, cands,
                                                 config.prior_count)
        info = {"bandwidth_rule": "pooled leave-one-out likelihood of visual deltas",
                "background_weight": c, "bandwidth_curve": curve}
    width = int(np.clip(np.floor(h / 2), 1, grid0.width))
    return capped_grid(span, width, n_nodes), h, info


def assemble_model(nodes: NodeIndex, grid: DeltaGrid, pair_id: np.ndarray,
                   delta: np.ndarray, random_counts: np.ndarray, bandwidth: float,
                   info: Dict, random_info: Dict, config: FusionConfig, n_train: int,
                   vision_stats: Tuple[float, float]) -> STModel:
    """Counts on the final grid + every parameter needed to score, as an STModel."""
    visual = histograms.count_histogram(pair_id, delta, nodes.size, grid)
    histograms.diff_histogram(random_counts, visual)  # checks coverage
    params = {"bandwidth_frames": bandwidth, "kappa": config.kappa,
              "prior_count": config.prior_count, "floor": config.floor,
              "top_k": config.top_k, "window_frames": config.window_frames,
              "max_delta": config.max_delta, "rand_floor": config.rand_floor,
              "frame_rate": config.frame_rate, "train_images": n_train,
              "frame_quantum": random_info.get("frame_quantum", 1),
              "vision_mean": vision_stats[0], "vision_scale": vision_stats[1], **info}
    return STModel(nodes, grid, visual, random_counts, params)


def estimate_st_model(train: FeatureSet, config: FusionConfig,
                      span: Optional[int] = None,
                      row_block: int = neighbours.DEFAULT_ROW_BLOCK) -> STModel:
    """The whole estimation in memory (the Beam path gives the identical model)."""
    config = config.resolved().validate()
    span = span or frame_span(train)
    nodes = build_nodes(train.camera, train.sequence, config.mode)
    node = nodes.lookup(train.camera, train.sequence, train.source)
    log(f"ST nodes ({config.mode}): {nodes.size}; train images: {len(train)}")
    report = counter("visual neighbours")
    pids, deltas = [], []
    for start, stop in neighbours.row_blocks(len(train), row_block):
        rows = np.arange(start, stop, dtype=np.int64)
        idx = block_neighbours(train, rows, config.top_k)
        p, d = block_visual_deltas(train, node, rows, idx, config.mode, nodes.size)
        pids.append(p)
        deltas.append(d)
        report(stop, len(train))
    pair_id, delta = histograms.sorted_deltas(np.concatenate(pids), np.concatenate(deltas))
    grid0 = coarse_grid(span, config, nodes.size)
    log("exact random model (coarse grid)")
    rand0, rinfo = random_model.random_histogram(node, train.camera, train.sequence,
                                                 train.frame, config.mode, nodes.size, grid0)
    grid, h, info = choose_grid(pair_id, delta, rand0, grid0, span, config, nodes.size)
    log(f"bandwidth {h:.1f} frames, bin width {grid.width} frames, {grid.n_bins} bins; "
        f"share of random-looking visual deltas {info.get('background_weight')}")
    if grid == grid0:
        rand = rand0
    else:
        rand, rinfo = random_model.random_histogram(node, train.camera, train.sequence,
                                                    train.frame, config.mode, nodes.size,
                                                    grid)
    stats = vision.cosine_moments(train.features, train.camera)
    return assemble_model(nodes, grid, pair_id, delta, rand, h, info, rinfo, config,
                          len(train), stats)
