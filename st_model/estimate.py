"""Estimating the ST model from a train split (paper §3.2), in memory.

The steps, each a function the Beam transforms (beam_transforms.py) call too:
1. nodes of the train split (nodes.build_nodes) and the cosine moments over all
   cross-camera pairs (vision.cosine_moments);
2. top-k visual neighbours of every train image among other cameras, blockwise
   (block_neighbours), each image's best score (best_cosines), and the soft weight
   of every (image, neighbour) pair (neighbour_weights) -> weighted visual deltas
   per node pair (block_deltas);
3. exact random model on a coarse grid (random_model.random_histogram);
4. bandwidth and background share by the two-fold cross-validated likelihood of the
   weighted deltas under a KDE + random-background mixture, and the bin width the
   bandwidth implies (choose_grid);
5. weighted visual histogram, its clump variance (visual_histograms) and the
   random counts on that grid -> STModel (assemble_model). Scoring reads the visual histogram against
   its chance level (chance.py), so false neighbours cancel out.
The oracle-ST model (oracle_st_model, benchmarks only) runs steps 3-5 on all true
same-identity train pairs instead.
"""
from __future__ import annotations

from functools import cached_property
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from core.features import FeatureSet, STPoints
from core.progress import counter, log
from st_model import (histograms, neighbours, random_model, smoothing, vision, visits,
                      workers)
from st_model.config import VISIT_SECONDS, STConfig
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex, build_nodes
from st_model.st_artifact import STModel

MAX_TABLE_ENTRIES = 16_000_000   # M² · B cap of the lookup tables (bins widen past it)
MIN_BANDWIDTH = 1.0              # frames
MAX_BANDWIDTH_DIVISOR = 8        # widths tried up to span / 8
MAX_FRAME_STEP = 100             # longest sampling period of frame numbers looked for
FRAME_STEP_EVIDENCE = 30.0       # Rayleigh statistic N·R² that counts as a period
FLAT_SPREAD = 0.5               # log-ratio range under which a model shows no transit
THIN_VISIT_WEIGHT = 1.0          # β of a linked detection in a thin-evidence pooled feature


class VisualDeltas(NamedTuple):
    """The ST evidence of a train split: one entry per (anchor, neighbour) pair."""
    node_pair: np.ndarray   # int64: a·M + b for anchor node a, neighbour node b
    delta: np.ndarray       # int64: t_neighbour − t_anchor (frames)
    weight: np.ndarray      # float64 in (0, 1]: soft neighbour weight
    fold: np.ndarray        # int64 0/1: cross-validation fold of the anchor
    anchor_frame: np.ndarray  # int64: frame of the anchor image


def frame_span(*sets: FeatureSet) -> int:
    """Largest possible |Δ| between any two images of the given sets."""
    lo = min(int(s.frame.min()) for s in sets)
    hi = max(int(s.frame.max()) for s in sets)
    return max(1, hi - lo)


def frame_step(frame: np.ndarray) -> int:
    """The sampling period q of the frame numbers: the longest q ≤ MAX_FRAME_STEP
    whose residues frame mod q are clearly concentrated (Rayleigh statistic
    N · |mean exp(2πi·frame/q)|² > FRAME_STEP_EVIDENCE; 1 when none is). Market's
    frames cluster on steps of 5 and 25: its deltas then pile up on multiples of
    25, and a KDE narrower than q/2 would fit that comb instead of transit times.
    """
    f = np.asarray(frame, np.float64)
    step = 1
    for q in range(2, MAX_FRAME_STEP + 1):
        r = np.abs(np.exp(2j * np.pi * (f % q) / q).mean())
        if f.size * r * r > FRAME_STEP_EVIDENCE:
            step = q
    return step


def capped_grid(span: int, width: int, n_nodes: int) -> DeltaGrid:
    """A grid of bins of `width` frames covering ±span, the width doubled until the
    M² · B lookup tables respect MAX_TABLE_ENTRIES."""
    while n_nodes * n_nodes * (2 * span / width + 2) > MAX_TABLE_ENTRIES:
        width *= 2
    return histograms.make_grid(span, width)


def coarse_grid(span: int, config: STConfig, n_nodes: int) -> DeltaGrid:
    """The widest grid (max_bin_frames), itself widened to respect MAX_TABLE_ENTRIES."""
    return capped_grid(span, config.max_bin_frames, n_nodes)


class NeighbourBlock(NamedTuple):
    """Top-k visual neighbours of a block of train rows (the unit of parallel work)."""
    rows: np.ndarray     # int64 [R]
    index: np.ndarray    # int64 [R, k], -1 = none
    cosine: np.ndarray   # float64 [R, k], best first; -inf = none


def block_neighbours(train: FeatureSet, block: Tuple[int, int], k: int,
                     col_block: int = neighbours.DEFAULT_COL_BLOCK) -> NeighbourBlock:
    """Top-k visual neighbours (other cameras) of the train rows block[0]:block[1]."""
    return tile_neighbours(train, train, (block, (0, len(train))), k, col_block)


def tile_neighbours(row_set: FeatureSet, col_set: FeatureSet,
                    tile: Tuple[Tuple[int, int], Tuple[int, int]], k: int,
                    col_block: int = neighbours.DEFAULT_COL_BLOCK,
                    offsets: Tuple[int, int] = (0, 0)) -> NeighbourBlock:
    """Top-k visual neighbours of a row block among one column block only (a tile of
    the blocked join, neighbours.tiles); merge_neighbours of a row block's tiles is
    its block_neighbours, bit for bit. row_set / col_set hold the train rows from
    offsets[0] / offsets[1] on (the whole split, or just the tile's rows as a worker
    reads them: FeatureRows)."""
    (r0, r1), (c0, c1) = tile
    rows = np.arange(r0, r1, dtype=np.int64)
    score = neighbours.visual_score_block(row_set.features, col_set.features,
                                          row_set.camera, col_set.camera, self_pairs=True,
                                          offsets=offsets)
    idx, cos = neighbours.top_k_rows(score, rows, c1, k, col_block, col_start=c0)
    return NeighbourBlock(rows, idx, cos)


def merge_neighbours(parts: List[NeighbourBlock], k: int) -> NeighbourBlock:
    """One row block's top-k over the tiles it was searched in (any order)."""
    parts = list(parts)
    idx, cos = neighbours.merge_top_k([(p.index, p.cosine) for p in parts], k)
    return NeighbourBlock(parts[0].rows, idx, cos)


def best_cosines(blocks: List[NeighbourBlock], n: int) -> np.ndarray:
    """Each train image's best cross-camera cosine [N] (-inf when it has none)."""
    best = np.full(n, -np.inf)
    for b in blocks:
        if b.cosine.shape[1]:
            best[b.rows] = b.cosine[:, 0]
    return best


def neighbour_weights(cosine: np.ndarray, best_row: np.ndarray, best_col: np.ndarray,
                      vision_stats: Tuple[float, float], sharpness: Optional[float]
                      ) -> np.ndarray:
    """Soft weight of each (row i, neighbour j): exp(β · (z_ij − max(z*_i, z*_j)))
    ∈ (0, 1], z the cosine in units of its random-pair spread (vision.cosine_moments)
    and z*_i image i's best cross-camera score; β = None gives TFusion's hard top-k
    (weight 1 each).

    A pair counts fully only when it is the best match of both i and j (a mutual
    best match), and less the further it falls behind the better of the two images'
    best scores: a network where each person has one true match elsewhere puts its
    weight on mutual top-1s, a dense one (many matches per image) spreads it over the
    top-k, and a pair that is only close for one side of it (a hub image near
    everyone) counts little.
    """
    ok = np.isfinite(cosine)
    if sharpness is None:
        return ok.astype(np.float64)
    ref = np.maximum(best_row[:, None], best_col)
    gap = np.where(ok, (cosine - ref) / vision_stats[1], -np.inf)
    return np.where(ok, np.exp(sharpness * np.minimum(gap, 0.0)), 0.0)


FOLD_BLOCKS = 32   # time blocks over the frame span for the two-fold cross-validation


def fold_frames(span: int, config: STConfig) -> int:
    """Length of the cross-validation time blocks: span / FOLD_BLOCKS, ≥ max_bin_frames."""
    return max(int(config.max_bin_frames), int(span) // FOLD_BLOCKS)


def delta_folds(node: np.ndarray, frame: np.ndarray, block_frames: int) -> np.ndarray:
    """Cross-validation fold (0/1) of each anchor image: parity of its node plus its
    time block, so the images of one visit (a few frames apart, the same person's
    near-repeated deltas) almost always share a fold."""
    return (node + frame // max(1, int(block_frames))) % 2


def block_visual_deltas(train: Union[FeatureSet, STPoints], node: np.ndarray,
                        rows: np.ndarray,
                        idx: np.ndarray, weight: np.ndarray, mode: str, n_nodes: int,
                        fold_frames: int) -> VisualDeltas:
    """(node pair a·M+b, Δ, weight, fold) of the in-reach (row, neighbour) pairs of a
    block."""
    i, j = histograms.neighbour_pairs(idx)
    w = weight.reshape(-1)[idx.reshape(-1) >= 0]
    i = rows[i]
    ok = histograms.reach_mask(i, j, train.camera, train.sequence, mode)
    i, j, w = i[ok], j[ok], w[ok]
    return VisualDeltas(node[i] * n_nodes + node[j], train.frame[j] - train.frame[i], w,
                        delta_folds(node[i], train.frame[i], fold_frames), train.frame[i])


def true_pair_deltas(train: FeatureSet, node: np.ndarray, mode: str, n_nodes: int,
                     fold_frames: int) -> VisualDeltas:
    """(node pair, Δ, 1, fold) of every in-reach ordered pair of train images of the
    same identity (pid > 0): the oracle ST evidence, for benchmarks only."""
    if train.pid is None:
        raise ValueError(f"{train.source}: the oracle ST model needs train pids")
    order = np.argsort(train.pid, kind="stable")
    pid = train.pid[order]
    _, starts, sizes = np.unique(pid, return_index=True, return_counts=True)
    ii, jj = [], []
    for p, s, n in zip(pid[starts], starts, sizes):
        if p <= 0 or n < 2:
            continue
        members = order[s:s + n]
        a, b = np.meshgrid(members, members, indexing="ij")
        ii.append(a.reshape(-1))
        jj.append(b.reshape(-1))
    i = np.concatenate(ii) if ii else np.zeros(0, np.int64)
    j = np.concatenate(jj) if jj else np.zeros(0, np.int64)
    ok = histograms.reach_mask(i, j, train.camera, train.sequence, mode)
    i, j = i[ok], j[ok]
    return VisualDeltas(node[i] * n_nodes + node[j], train.frame[j] - train.frame[i],
                        np.ones(i.size), delta_folds(node[i], train.frame[i], fold_frames),
                        train.frame[i])


def needs_cv(config: STConfig) -> bool:
    """Whether the bandwidth is chosen by cross-validation (not tfusion, not fixed)."""
    return config.mode != "tfusion" and config.bandwidth is None


def bandwidth_candidates(span: int, step: int = 1) -> np.ndarray:
    """Widths tried: max(MIN_BANDWIDTH, step / 2) (step: frame_step of the train
    frames) to span / MAX_BANDWIDTH_DIVISOR."""
    return smoothing.bandwidth_grid(max(MIN_BANDWIDTH, step / 2),
                                    max(2.0, span / MAX_BANDWIDTH_DIVISOR))


def cv_terms(deltas: VisualDeltas, coarse_random: np.ndarray, grid0: DeltaGrid,
             n_nodes: int, candidates: np.ndarray) -> smoothing.CVTerms:
    """The cross-validation terms (smoothing.cv_densities) of the deltas of one or
    more node pairs against their random background on the coarse grid: the Beam
    path computes them per node pair and joins them (smoothing.join_cv_terms)."""
    bg = smoothing.background_density(coarse_random, grid0, deltas.node_pair,
                                      deltas.delta, n_nodes)
    return smoothing.cv_densities(deltas.node_pair, deltas.delta, deltas.weight,
                                  deltas.fold, bg, candidates)


def choose_grid(cv: Optional[smoothing.CVTerms], grid0: DeltaGrid, span: int,
                config: STConfig, n_nodes: int, step: int = 1
                ) -> Tuple[DeltaGrid, float, Dict]:
    """Bandwidth h (frames) and the grid it implies (bin width ≈ h/2, ≤ max_bin_frames).

    h is the pooled cross-validated likelihood choice (smoothing.choose_bandwidth)
    on the node pairs' terms `cv` (cv_terms, over bandwidth_candidates(span, step))
    unless fixed in the config; tfusion mode keeps max_bin_frames and its box.
    """
    if config.mode == "tfusion":
        return grid0, 0.0, {"bandwidth_rule": "tfusion box window",
                            "window_frames": config.window_frames}
    if config.bandwidth is not None:
        h, info = float(config.bandwidth), {"bandwidth_rule": "fixed"}
    else:
        h, c, curve = smoothing.choose_bandwidth(cv, bandwidth_candidates(span, step))
        info = {"bandwidth_rule": "pooled two-fold cross-validated likelihood of "
                                  "visual deltas", "frame_step": step,
                "background_weight": c, "broad_bandwidth": curve.get("broad_bandwidth"),
                "broad_share": curve.get("broad_share", 0.0), "bandwidth_curve": curve}
    width = int(np.clip(np.floor(h / 2), 1, grid0.width))
    return capped_grid(span, width, n_nodes), h, info


def clump_square_histogram(deltas: VisualDeltas, n_nodes: int, grid: DeltaGrid,
                           clump_frames: float) -> np.ndarray:
    """Σ over clumps of (Σ w in the clump)², [M, M, B], each clump in its first bin.

    A clump is the deltas of one node pair whose Δ and anchor frame fall in the same
    block of `clump_frames`: one visit seen against one other visit (several images
    each) gives many near-equal deltas that come and go together, so the chance
    level's variance counts them as one unit of their summed weight, not as
    independent deltas (for isolated deltas this is Σ w²).
    """
    g = max(1, int(round(clump_frames)))
    key = np.stack([deltas.node_pair, np.floor_divide(deltas.delta, g),
                    np.floor_divide(deltas.anchor_frame, g)], axis=1)
    _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
    clump_w = np.bincount(inv.reshape(-1), weights=deltas.weight, minlength=first.size)
    return histograms.weighted_histogram(deltas.node_pair[first], deltas.delta[first],
                                         clump_w ** 2, n_nodes, grid)


def visual_histograms(deltas: VisualDeltas, n_nodes: int, grid: DeltaGrid,
                      bandwidth: float) -> Tuple[np.ndarray, np.ndarray]:
    """(Σ w, Σ clump w²) [M, M, B] of the deltas on the final grid. Each node pair's
    bins depend only on that pair's deltas (in canonical order), so the deltas of
    one pair, given as node pair 0 of M = 1, give its [B] rows bit for bit."""
    visual = histograms.weighted_histogram(deltas.node_pair, deltas.delta,
                                           deltas.weight, n_nodes, grid)
    visual_sq = clump_square_histogram(deltas, n_nodes, grid,
                                       max(bandwidth, float(grid.width)))
    return visual, visual_sq


def assemble_model(nodes: NodeIndex, grid: DeltaGrid,
                   visual: Tuple[np.ndarray, np.ndarray],
                   random_counts: np.ndarray, bandwidth: float, info: Dict,
                   random_info: Dict, config: STConfig, n_train: int,
                   vision_stats: Tuple[float, float], evidence: str) -> STModel:
    """Weighted counts on the final grid (visual_histograms) + every parameter
    needed to score, as an STModel. `evidence`: "visual_above_chance" (soft-weighted
    neighbours, their chance level subtracted when scoring), "visual" (hard top-k,
    TFusion) or "true_pairs" (oracle)."""
    visual, visual_sq = visual
    histograms.diff_histogram(random_counts, visual)  # checks coverage
    params = {"bandwidth_frames": bandwidth, "kappa": config.kappa,
              "prior_count": config.prior_count, "floor": config.floor,
              "top_k": config.top_k, "sharpness": config.sharpness,
              "noise_threshold": config.noise_threshold, "evidence": evidence,
              "chance_level": config.chance_level,
              "window_frames": config.window_frames,
              "max_delta": config.max_delta, "rand_floor": config.rand_floor,
              "frame_rate": config.frame_rate, "train_images": n_train,
              "frame_quantum": random_info.get("frame_quantum", 1),
              "vision_mean": vision_stats[0], "vision_scale": vision_stats[1], **info}
    return STModel(nodes, grid, visual, random_counts, params, visual_sq)


def evidence_kind(config: STConfig) -> str:
    """How the visual deltas are read (see assemble_model)."""
    return "visual" if config.sharpness is None else "visual_above_chance"


def visual_deltas(train: FeatureSet, node: np.ndarray, config: STConfig,
                  n_nodes: int, vision_stats: Tuple[float, float], span: int,
                  row_block: int = neighbours.DEFAULT_ROW_BLOCK,
                  col_block: int = neighbours.DEFAULT_COL_BLOCK) -> VisualDeltas:
    """The soft-weighted visual-neighbour deltas of the whole train split, in
    canonical order (the Beam path computes the same blocks in parallel)."""
    report = counter("visual neighbours")
    blocks = []
    spans = neighbours.row_blocks(len(train), row_block)
    search = lambda span: block_neighbours(train, span, config.top_k, col_block)  # noqa: E731
    for (start, stop), block in zip(spans, workers.pmap(search, spans)):
        blocks.append(block)
        report(stop, len(train))
    best = best_cosines(blocks, len(train))
    return concat_deltas([block_deltas(train, node, b, best, config, n_nodes,
                                       vision_stats, span) for b in blocks])


def block_deltas(train: Union[FeatureSet, STPoints], node: np.ndarray,
                 block: NeighbourBlock,
                 best: np.ndarray, config: STConfig, n_nodes: int,
                 vision_stats: Tuple[float, float], span: int) -> VisualDeltas:
    """Weights and deltas of one block of neighbours (best: best_cosines)."""
    col_best = best[np.where(block.index >= 0, block.index, 0)]
    w = neighbour_weights(block.cosine, best[block.rows], col_best, vision_stats,
                          config.sharpness)
    return block_visual_deltas(train, node, block.rows, block.index, w, config.mode,
                               n_nodes, fold_frames(span, config))


def concat_deltas(parts: List[VisualDeltas]) -> VisualDeltas:
    """Blocks of deltas joined in canonical order (by node pair, Δ, weight)."""
    parts = list(parts)
    if not parts:
        z = np.zeros(0, np.int64)
        return VisualDeltas(z, z, np.zeros(0), z, z)
    cat = [np.concatenate([getattr(p, f) for p in parts]) for f in VisualDeltas._fields]
    d = VisualDeltas(*cat)
    order = np.lexsort((d.anchor_frame, d.weight, d.delta, d.node_pair))
    return VisualDeltas(*(a[order] for a in d))


class TrainBackground:
    """What the estimation reads from the train split's ST points alone, not from
    its features: nodes, the exact random model (step 3) and the frame step. A
    thin-evidence retry's pooled features have the same points, so one background
    serves both estimations; the random model is computed when first needed."""

    def __init__(self, train: FeatureSet, config: STConfig, span: int):
        self.nodes = build_nodes(train.camera, train.sequence, config.mode)
        self.node = self.nodes.lookup(train.camera, train.sequence)
        self.grid0 = coarse_grid(span, config, self.nodes.size)
        self._train, self._mode = train, config.mode
        log(f"ST nodes ({config.mode}): {self.nodes.size}; train images: {len(train)}")

    @cached_property
    def random(self) -> random_model.RandomCounts:
        t = self._train
        return random_model.RandomCounts(self.node, t.camera, t.sequence, t.frame,
                                         self._mode)

    @cached_property
    def coarse(self) -> Tuple[np.ndarray, Dict]:
        """(random counts [M, M, B] on grid0, their info)."""
        log("exact random model (coarse grid)")
        return self.random.histogram(self.nodes.size, self.grid0)

    @cached_property
    def step(self) -> int:
        """frame_step of the train frames."""
        return frame_step(self._train.frame)


def model_from_deltas(bg: TrainBackground, deltas: VisualDeltas, config: STConfig,
                      span: int, n_train: int, vision_stats: Tuple[float, float],
                      evidence: str) -> STModel:
    """Bandwidth and grid (step 4) and the STModel (step 5) from a set of deltas
    against the train split's random model."""
    m, step, grid0 = bg.nodes.size, bg.step, bg.grid0
    cv = (cv_terms(deltas, bg.coarse[0], grid0, m, bandwidth_candidates(span, step))
          if needs_cv(config) else None)
    grid, h, info = choose_grid(cv, grid0, span, config, m, step)
    log(f"bandwidth {h:.1f} frames, bin width {grid.width} frames, {grid.n_bins} bins; "
        f"share of random-looking visual deltas {info.get('background_weight')}"
        + (f", of them spread like revisits (broad bandwidth {info['broad_bandwidth']:.0f} "
           f"frames) {info['broad_share']:.1f}" if info.get("broad_bandwidth") else ""))
    if grid == grid0:
        rand, rinfo = bg.coarse
    else:
        rand, rinfo = bg.random.histogram(m, grid)
    return assemble_model(bg.nodes, grid, visual_histograms(deltas, m, grid, h),
                          rand, h, info, rinfo, config, n_train, vision_stats, evidence)


def shows_no_transit(model: STModel, span: int, config: STConfig) -> bool:
    """Whether the estimate found no transit (the model falls back to vision): no
    revisit mixture holds and the cross-validated bandwidth is at least a
    cross-validation time block (fold_frames: span / FOLD_BLOCKS) — the neighbour
    deltas look like chance spread over the day, not like a walk between cameras —
    or the scored log-ratios span less than FLAT_SPREAD over every node pair and Δ
    (the evidence did not survive its chance reading)."""
    from st_model.scoring import STTables
    p = model.params
    if not needs_cv(config) or p.get("broad_bandwidth"):
        return False       # a revisit mixture holds only beside a narrow transit part
    if p["bandwidth_frames"] >= fold_frames(span, config):
        return True
    m = model.nodes.size
    log_ratio = STTables.from_model(model).log_ratio[:m, :m]
    finite = log_ratio[np.isfinite(log_ratio)]
    return finite.size == 0 or float(finite.max() - finite.min()) < FLAT_SPREAD


def may_pool_visits(config: STConfig, model: STModel, span: int) -> bool:
    """Whether thin_visit_pooling applies: pooling on, soft-weighted neighbours read
    against chance, and `model` shows no transit (decided before reading features)."""
    return (config.thin_visit_fdr is not None
            and evidence_kind(config) == "visual_above_chance"
            and shows_no_transit(model, span, config))


def scoring_stats(model: STModel) -> Tuple[float, float]:
    """The cosine moments `model` standardises scored cosines by."""
    return model.params["vision_mean"], model.params["vision_scale"]


def thin_visit_pooling(train: FeatureSet, config: STConfig, model: STModel, span: int
                       ) -> Optional[Tuple[FeatureSet, Dict]]:
    """Thin evidence (paper §3.2's visual model too weak to show a transit): the
    train split with the detections of one visit pooled (visits.pool_visits at
    config.thin_visit_fdr) — a visit's detections carry one identity with independent
    noise, so their mean finds true neighbours single detections miss — or None when
    the model shows a transit, pooling is off or links nothing."""
    if not may_pool_visits(config, model, span):
        return None
    pooled, info = visits.pool_visits(train, VISIT_SECONDS, config.frame_rate,
                                      config.thin_visit_fdr, THIN_VISIT_WEIGHT)
    if not info["visit_links"]:
        return None
    log(f"thin evidence: no transit structure in the visual neighbours; searching "
        f"again on visit-pooled features ({info['visit_linked_images']} of "
        f"{len(train)} images linked)")
    return pooled, {"thin_visit_pooling": info}


def estimate_st_model(train: FeatureSet, config: STConfig,
                      span: Optional[int] = None,
                      row_block: int = neighbours.DEFAULT_ROW_BLOCK,
                      col_block: int = neighbours.DEFAULT_COL_BLOCK) -> STModel:
    """The whole estimation in memory (the Beam path gives the identical model):
    once on the train features, and again on their visit-pooled features where the
    first shows no transit (thin_visit_pooling), against the same random model."""
    span = span or frame_span(train)
    bg = TrainBackground(train, config, span)
    model = estimate_once(train, config, span, row_block, col_block, background=bg)
    retry = thin_visit_pooling(train, config, model, span)
    if retry is None:
        return model
    pooled, info = retry
    model = estimate_once(pooled, config, span, row_block, col_block,
                          stats_for_scoring=scoring_stats(model), background=bg)
    model.params.update(info)
    return model


def estimate_once(train: FeatureSet, config: STConfig, span: int,
                  row_block: int = neighbours.DEFAULT_ROW_BLOCK,
                  col_block: int = neighbours.DEFAULT_COL_BLOCK,
                  stats_for_scoring: Optional[Tuple[float, float]] = None,
                  background: Optional[TrainBackground] = None) -> STModel:
    """Steps 1-5 on one set of train features (`background`: the TrainBackground
    of their ST points, computed here when not given); the model standardises scored
    cosines by `stats_for_scoring` (default: these features' own moments — pooled
    features weigh neighbours by their own, and score by the raw features')."""
    bg = background or TrainBackground(train, config, span)
    stats = vision.cosine_moments(train.features, train.camera)
    deltas = visual_deltas(train, bg.node, config, bg.nodes.size, stats, span,
                           row_block, col_block)
    return model_from_deltas(bg, deltas, config, span, len(train),
                             stats_for_scoring or stats, evidence_kind(config))


def oracle_st_model(train: FeatureSet, config: STConfig,
                    span: Optional[int] = None) -> STModel:
    """The oracle-ST bound's model: the same estimation and scoring, with the
    visual-neighbour deltas replaced by those of all true same-identity train pairs.
    Benchmarks only: it reads train pids, which the ST model never uses."""
    span = span or frame_span(train)
    bg = TrainBackground(train, config, span)
    stats = vision.cosine_moments(train.features, train.camera)
    deltas = concat_deltas([true_pair_deltas(train, bg.node, config.mode, bg.nodes.size,
                                             fold_frames(span, config))])
    return model_from_deltas(bg, deltas, config, span, len(train), stats, "true_pairs")
