"""The ST model and the fused train ranking as Beam PTransforms.

They call exactly the functions of the in-memory path (estimate.py, vision.py,
random_model.py, smoothing.py, fused_ranking.py) on the same blocks, so both paths
give identical histograms and rankings. The train split reaches the workers as
files: the job graph carries its path and shard layout (TrainFile), and a worker
reads the row blocks each unit of work needs (features.FeatureRows: a one-file set
is a single shard, a folder of row shards is read shard by shard, a few kept), plus
the ST points and names of all N images (small columns, once per process). The
launcher reads only the ST columns to plan the job.
Units of work: row blocks of the fixed-point cosine sums (vision.cosine_sums,
summed exactly in any order); tiles of the train × train blocked join (a row block
against one column block; each row block's top-k visual neighbours and top-N fused
neighbours are merged over its tiles with CombinePerKey, exactly as the in-memory
scan); row blocks of visual deltas, keyed by node pair and combined per pair with
CombinePerKey, each pair's cross-validation terms and its histograms on the chosen
grid; in-reach (camera, sequence) sub-node pairs (random model, each worker
computing a sub-node's frame spectrum once for both passes). The bandwidth choice
and the assembly work on combined statistics (≤ 64 points per node pair, [M, M, B]
counts). Side inputs are small: the cosine moments, each image's best cosine [N],
the grids, the combined counts.
"""
from __future__ import annotations

import threading
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Tuple, Union

import apache_beam as beam
import numpy as np

from st_model import estimate, fused_ranking, neighbours, random_model, smoothing, vision
from st_model.config import FusionRule, STConfig
from core.files import join_path
from core.features import (FeatureHeader, FeatureRows, FeatureSet, Shard, STPoints,
                           layout_names, layout_points, load_features, save_features,
                           shard_layout)
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex, build_nodes
from st_model.st_artifact import STModel, load_st_model


class TrainOnWorker:
    """The train split as one worker process holds it: rows read by shard
    (features.FeatureRows: the shards a tile needs, a few kept), the ST points and
    (for the ranking) names of all N images, and what the steps derive from the
    points per node mode: node ids, the random-model plan, sub-node spectra."""

    def __init__(self, layout: Sequence[Shard], source: str):
        self.layout, self.source = list(layout), source
        self.reader = FeatureRows(self.layout, source)
        self._derived: Dict[Tuple, object] = {}
        self._lock = threading.RLock()

    def _get(self, key: Tuple, make):
        with self._lock:
            if key not in self._derived:
                self._derived[key] = make()
            return self._derived[key]

    def rows(self, block: Tuple[int, int]) -> FeatureSet:
        return self.reader.rows(*block)

    @property
    def points(self) -> STPoints:
        return self._get(("points",), lambda: layout_points(self.layout, self.source))

    @property
    def names(self) -> np.ndarray:
        return self._get(("names",), lambda: layout_names(self.layout, self.source))

    def nodes(self, mode: str) -> Tuple[NodeIndex, np.ndarray]:
        def make():
            t = self.points
            nodes = build_nodes(t.camera, t.sequence, mode)
            return nodes, nodes.lookup(t.camera, t.sequence)
        return self._get(("nodes", mode), make)

    def plan(self, mode: str) -> random_model.RandomPlan:
        t = self.points
        return self._get(("plan", mode), lambda: random_model.random_plan(
            self.nodes(mode)[1], t.camera, t.sequence, t.frame, mode))

    def spectrum(self, mode: str, u: int) -> np.ndarray:
        """Frame spectrum of sub-node u: computed once per worker, for both passes."""
        return self._get(("spectrum", mode, u), lambda: self.plan(mode).spectrum(u))


class TrainFile(NamedTuple):
    """What the job graph carries of the train split: its path and shard layout
    (paths, row ranges, sizes and modification times), never its arrays."""
    source: str
    layout: Tuple[Shard, ...]

    def load(self) -> TrainOnWorker:
        """This worker process's TrainOnWorker (one train split held at a time)."""
        with _LOAD_LOCK:
            if self not in _LOADED:
                _LOADED.clear()
                _LOADED[self] = TrainOnWorker(self.layout, self.source)
            return _LOADED[self]


_LOADED: Dict[TrainFile, TrainOnWorker] = {}
_LOAD_LOCK = threading.Lock()


def plan_train(train: Union[str, FeatureHeader]) -> Tuple[TrainFile, STPoints]:
    """The train split's TrainFile and ST points: read here from a path (ST columns
    only), or taken from the FeatureHeader a launcher already read."""
    if isinstance(train, FeatureHeader):
        return TrainFile(train.source, tuple(train.layout)), train.points
    layout, points = shard_layout(train)
    return TrainFile(train, tuple(layout)), points


class _SumCounts(beam.CombineFn):
    """Σ of per-sub-node-pair random counts into [M, M, B] (integer: order-free)."""

    def __init__(self, n_nodes: int):
        self.n_nodes = n_nodes

    def create_accumulator(self):
        return None

    def add_input(self, acc, item):
        grid, (a, b, fwd, bwd) = item
        if acc is None:
            acc = np.zeros((self.n_nodes, self.n_nodes, grid.n_bins), np.int64)
        return random_model.add_pair_counts(acc, a, b, fwd, bwd)

    def merge_accumulators(self, accs):
        accs = [a for a in accs if a is not None]
        if not accs:
            return None
        out = accs[0].copy()
        for a in accs[1:]:
            out += a
        return out

    def extract_output(self, acc):
        return acc


class _MergeTopK(beam.CombineFn):
    """Tiles (rows, index, score) of one row block -> its top-k over all of them
    (neighbours.merge_top_k: exact in any order)."""

    def __init__(self, k: int):
        self.k = k

    def create_accumulator(self):
        return None

    def _merge(self, parts):
        parts = [p for p in parts if p is not None]
        if len(parts) <= 1:
            return parts[0] if parts else None
        idx, score = neighbours.merge_top_k([(p[1], p[2]) for p in parts], self.k)
        return parts[0][0], idx, score

    def add_input(self, acc, tile):
        return self._merge([acc, tile])

    def merge_accumulators(self, accs):
        return self._merge(accs)

    def extract_output(self, acc):
        return acc


class _BestCosines(beam.CombineFn):
    """Neighbour blocks -> each image's best cosine [N] (estimate.best_cosines)."""

    def __init__(self, n: int):
        self.n = n

    def create_accumulator(self):
        return np.full(self.n, -np.inf)

    def add_input(self, acc, block):
        return np.maximum(acc, estimate.best_cosines([block], self.n))

    def merge_accumulators(self, accs):
        return np.maximum.reduce(list(accs))

    def extract_output(self, acc):
        return acc


# ---------------------------------------------------------------- worker steps
def _cosine_sums(block: Tuple[int, int], train: TrainFile, cameras: np.ndarray):
    rows = train.load().rows(block)
    return vision.cosine_sums(rows.features, rows.camera, cameras)


class _AddCosineSums(beam.CombineFn):
    """Σ of the row blocks' fixed-point CosineSums (exact in any order)."""

    def create_accumulator(self):
        return None

    def add_input(self, acc, item):
        return vision.add_cosine_sums(acc, item)

    def merge_accumulators(self, accs):
        out = None
        for a in accs:
            out = vision.add_cosine_sums(out, a)
        return out

    def extract_output(self, acc):
        return vision.moments_of_sums(acc)


def _tile_neighbours(tile, train: TrainFile, k: int, col_block: int):
    """(row block start, (rows, index, cosine)) of one tile of the blocked join: the
    worker reads the tile's row and column blocks only."""
    loaded = train.load()
    b = estimate.tile_neighbours(loaded.rows(tile[0]), loaded.rows(tile[1]), tile, k,
                                 col_block, offsets=(tile[0][0], tile[1][0]))
    return tile[0][0], (b.rows, b.index, b.cosine)


class TopKJoin(beam.PTransform):
    """Row blocks -> (row start, (rows, index, score)) per row block: top-k of each
    row over all n columns, as tiles (row block × column block, neighbours.tiles)
    searched by `tile_top_k` (a PTransform, or a function of the tile and `args`)
    and merged per row block."""

    def __init__(self, tile_top_k, k: int, n: int, col_block: int, *args):
        super().__init__()
        self.tile_top_k, self.k, self.n, self.col_block = tile_top_k, k, n, col_block
        self.args = args

    def expand(self, blocks):
        step = self.tile_top_k
        if not isinstance(step, beam.PTransform):
            step = beam.Map(step, *self.args)
        return (blocks
                | "Tiles" >> beam.FlatMap(neighbours.tiles, self.n, self.col_block)
                | "Spread" >> beam.Reshuffle()
                | "TileTopK" >> step
                | "MergeTiles" >> beam.CombinePerKey(_MergeTopK(self.k)))


def _neighbour_block(keyed) -> estimate.NeighbourBlock:
    return estimate.NeighbourBlock(*keyed[1])


def _block_pair_deltas(block: estimate.NeighbourBlock, best: np.ndarray,
                       vstats: Tuple[float, float], train: TrainFile, cfg: STConfig,
                       span: int):
    """(node pair a·M+b, its deltas) of one row block, one element per node pair."""
    loaded = train.load()
    nodes, node = loaded.nodes(cfg.mode)
    d = estimate.block_deltas(loaded.points, node, block, best, cfg, nodes.size, vstats,
                              span)
    pairs, inv = np.unique(d.node_pair, return_inverse=True)
    inv = inv.reshape(-1)
    return [(int(p), estimate.VisualDeltas(*(a[inv == i] for a in d)))
            for i, p in enumerate(pairs)]


def _pair_histograms(keyed, chosen):
    """(node pair, grid, Σ w [B], Σ clump w² [B]) of one node pair's deltas on the
    chosen grid (estimate.visual_histograms of the pair alone)."""
    pair, d = keyed
    grid, h, _ = chosen
    vis, sq = estimate.visual_histograms(d._replace(node_pair=np.zeros_like(d.node_pair)),
                                         1, grid, h)
    return pair, grid, vis[0, 0], sq[0, 0]


class _PlaceHistograms(beam.CombineFn):
    """Node pairs' [B] histograms -> (visual, visual_sq) [M, M, B] (each pair's bins
    placed once, zeros elsewhere: the sum is exact)."""

    def __init__(self, n_nodes: int):
        self.n_nodes = n_nodes

    def create_accumulator(self):
        return None

    def add_input(self, acc, item):
        pair, grid, vis, sq = item
        if acc is None:
            shape = (self.n_nodes, self.n_nodes, grid.n_bins)
            acc = (np.zeros(shape), np.zeros(shape))
        a, b = divmod(pair, self.n_nodes)
        acc[0][a, b] = vis
        acc[1][a, b] = sq
        return acc

    def merge_accumulators(self, accs):
        accs = [a for a in accs if a is not None]
        if not accs:
            return None
        vis, sq = accs[0][0].copy(), accs[0][1].copy()
        for a in accs[1:]:
            vis += a[0]
            sq += a[1]
        return vis, sq

    def extract_output(self, acc):
        return acc


def _pair_cv_terms(keyed, coarse: Optional[np.ndarray], grid0: DeltaGrid, m: int,
                   candidates: np.ndarray):
    """One node pair's cross-validation terms (estimate.cv_terms of its deltas)."""
    return estimate.cv_terms(keyed[1], _zeros_if_none(coarse, m, grid0), grid0, m,
                             candidates)


def _pair_counts(uv: Tuple[int, int], grid: DeltaGrid, train: TrainFile, mode: str):
    loaded = train.load()
    u, v = uv
    return grid, random_model.sub_pair_counts(loaded.plan(mode), u, v, grid,
                                              loaded.spectrum(mode, u),
                                              loaded.spectrum(mode, v))


def _zeros_if_none(counts: Optional[np.ndarray], m: int, grid: DeltaGrid) -> np.ndarray:
    return np.zeros((m, m, grid.n_bins), np.int64) if counts is None else counts


STAGED_POOLED = "thin_evidence_pooled_train.npz"   # a retry's features, then removed


class ThinRetry(NamedTuple):
    """A second estimation on visit-pooled train features (estimate.thin_visit_pooling):
    the first model's scoring moments and the pooling report."""
    stats: Tuple[float, float]
    info: Dict


def thin_visit_retry(model: STModel, train_path: Union[str, FeatureHeader],
                     config: STConfig, span: int, stage_folder: str
                     ) -> Optional[Tuple[str, ThinRetry]]:
    """The Beam path's thin-evidence retry, prepared by the launcher: where `model`
    shows no transit (estimate.may_pool_visits) the train features are read here —
    only then — pooled (estimate.thin_visit_pooling, as in memory) and staged as
    `stage_folder`/STAGED_POOLED: (staged path, ThinRetry) for a second
    EstimateSTModel(staged path, ..., retry=...). None when there is nothing to retry."""
    if not estimate.may_pool_visits(config, model, span):
        return None
    source = train_path.source if isinstance(train_path, FeatureHeader) else train_path
    retry = estimate.thin_visit_pooling(load_features(source), config, model, span)
    if retry is None:
        return None
    pooled, info = retry
    staged = save_features(pooled, join_path(stage_folder, STAGED_POOLED))
    return staged, ThinRetry(estimate.scoring_stats(model), info)


def with_thin_retry(model_path: str, train_path: Union[str, FeatureHeader],
                    config: STConfig, span: int, stage_folder: str,
                    run_again: Callable[[Tuple[str, ThinRetry]], None]) -> STModel:
    """The model a Beam estimation saved at `model_path`, or — where thin_visit_retry
    applies — the one `run_again(retry)` saves there from the staged pooled features
    (removed after)."""
    model = load_st_model(model_path)
    retry = thin_visit_retry(model, train_path, config, span, stage_folder)
    if retry is None:
        return model
    from apache_beam.io.filesystems import FileSystems
    try:
        run_again(retry)
    finally:
        FileSystems.delete([retry[0]])
    return load_st_model(model_path)


class EstimateSTModel(beam.PTransform):
    """PBegin -> PCollection holding one STModel (visual, random and diff models),
    estimated from the train features at `train_path` (an .npz file or a folder of
    row shards, any Beam filesystem; or its FeatureHeader, already read); with
    `retry`, those are the visit-pooled features of a thin-evidence retry
    (thin_visit_retry)."""

    def __init__(self, train_path: Union[str, FeatureHeader], config: STConfig,
                 span: int,
                 row_block: int = neighbours.DEFAULT_ROW_BLOCK,
                 col_block: int = neighbours.DEFAULT_COL_BLOCK,
                 retry: Optional["ThinRetry"] = None):
        super().__init__()
        self.train_path, self.config, self.span = train_path, config, span
        self.row_block, self.col_block = row_block, col_block
        self.retry = retry

    def expand(self, pbegin):
        span, cfg = self.span, self.config
        train, points = plan_train(self.train_path)
        nodes = build_nodes(points.camera, points.sequence, cfg.mode)
        plan = random_model.random_plan(nodes.lookup(points.camera, points.sequence),
                                        points.camera, points.sequence, points.frame,
                                        cfg.mode)
        n, m, rinfo = len(points), nodes.size, random_model.random_info(plan)
        grid0 = estimate.coarse_grid(span, cfg, m)
        step = estimate.frame_step(points.frame)
        single = beam.pvalue.AsSingleton

        stats = (pbegin
                 | "MomentBlocks" >> beam.Create(neighbours.row_blocks(n,
                                                                       vision.MOMENT_BLOCK))
                 | "CosineSums" >> beam.Map(_cosine_sums, train, np.unique(points.camera))
                 | "VisionStats" >> beam.CombineGlobally(_AddCosineSums()))
        candidates = (pbegin
                      | "RowBlocks" >> beam.Create(neighbours.row_blocks(n, self.row_block))
                      | "Neighbours" >> TopKJoin(_tile_neighbours, cfg.top_k, n,
                                                 self.col_block, train, cfg.top_k,
                                                 self.col_block)
                      | "NeighbourBlocks" >> beam.Map(_neighbour_block))
        best = candidates | "BestCosines" >> beam.CombineGlobally(_BestCosines(n))
        pair_deltas = (candidates
                       | "VisualDeltas" >> beam.FlatMap(_block_pair_deltas, single(best),
                                                        single(stats), train, cfg, span)
                       | "PairDeltas" >> beam.CombinePerKey(estimate.concat_deltas))
        sub_pairs = pbegin | "SubNodePairs" >> beam.Create(list(plan.pairs))
        coarse = (sub_pairs
                  | "CoarsePairCounts" >> beam.Map(_pair_counts, grid0, train, cfg.mode)
                  | "CoarseRandom" >> beam.CombineGlobally(_SumCounts(m)))
        if estimate.needs_cv(cfg):
            cands = estimate.bandwidth_candidates(span, step)
            cv = (pair_deltas
                  | "PairCVTerms" >> beam.Map(_pair_cv_terms, single(coarse), grid0, m,
                                              cands)
                  | "CVTerms" >> beam.combiners.ToList()
                  | "JoinCVTerms" >> beam.Map(smoothing.join_cv_terms, cands.size))
        else:
            cv = pbegin | "NoCV" >> beam.Create([None])

        def grid_of(terms):
            return estimate.choose_grid(terms, grid0, span, cfg, m, step)

        chosen = cv | "ChooseGrid" >> beam.Map(grid_of)
        final = (sub_pairs
                 | "PairCounts" >> beam.Map(lambda uv, ch: _pair_counts(uv, ch[0], train,
                                                                        cfg.mode),
                                            single(chosen))
                 | "Random" >> beam.CombineGlobally(_SumCounts(m)))

        visual = (pair_deltas
                  | "PairHistograms" >> beam.Map(_pair_histograms, single(chosen))
                  | "VisualHistograms" >> beam.CombineGlobally(_PlaceHistograms(m)))

        retry = self.retry

        def assemble(ch, hists, rand, vstats):
            grid, h, info = ch
            if hists is None:
                hists = (np.zeros((m, m, grid.n_bins)), np.zeros((m, m, grid.n_bins)))
            model = estimate.assemble_model(nodes, grid, hists,
                                            _zeros_if_none(rand, m, grid), h, info, rinfo,
                                            cfg, n, retry.stats if retry else vstats,
                                            estimate.evidence_kind(cfg))
            if retry:
                model.params.update(retry.info)
            return model

        return chosen | "Assemble" >> beam.Map(
            assemble, single(visual), single(final), single(stats))


class _FusedTileTopN(beam.DoFn):
    """Tile -> (row start, (rows, index, fused score)): its rows' top-N fused
    neighbours among the tile's columns (fused_ranking.fused_top_n_rows), from the
    tile's row and column blocks only."""

    def __init__(self, train: TrainFile, config: FusionRule):
        self.train, self.config = train, config
        self._tables = None

    def process(self, tile, model: STModel):
        from st_model.scoring import BlockScorer, STTables
        if self._tables is None or self._tables.model is not model:
            self._tables = STTables.from_model(model)
        loaded = self.train.load()
        scorer = BlockScorer(self._tables, loaded.rows(tile[0]), loaded.rows(tile[1]),
                             self.config)
        rows = np.arange(tile[0][0], tile[0][1], dtype=np.int64)
        idx, sc = fused_ranking.fused_top_n_rows(scorer, rows, self.config.ranking_top_n,
                                                 tile[1][1] - tile[1][0], cols=tile[1],
                                                 offsets=(tile[0][0], tile[1][0]))
        yield tile[0][0], (rows, idx, sc)


def _ranking_records(keyed, train: TrainFile):
    rows, idx, sc = keyed[1]
    names = train.load().names
    return [fused_ranking.serialize_record(r)
            for r in fused_ranking.ranking_records(names, rows, idx, sc)]


class WriteFusedRanking(beam.PTransform):
    """PCollection[STModel] (one) -> fused train ranking TFRecords under out_dir, for
    the train features at `train_path` (an .npz file or a folder of row shards, any
    Beam filesystem; or its FeatureHeader, already read)."""

    def __init__(self, train_path: Union[str, FeatureHeader], config: FusionRule,
                 out_dir: str,
                 row_block: int = neighbours.DEFAULT_ROW_BLOCK, shards: int = 1,
                 col_block: int = neighbours.DEFAULT_COL_BLOCK):
        super().__init__()
        self.train_path, self.config, self.out_dir = train_path, config, out_dir
        self.row_block, self.shards, self.col_block = row_block, shards, col_block

    def expand(self, model_pc):
        cfg = self.config
        train, points = plan_train(self.train_path)
        n = len(points)
        tile_top_n = beam.ParDo(_FusedTileTopN(train, cfg),
                                beam.pvalue.AsSingleton(model_pc))
        return (model_pc.pipeline
                | "RankBlocks" >> beam.Create(neighbours.row_blocks(n, self.row_block))
                | "FusedTopN" >> TopKJoin(tile_top_n, cfg.ranking_top_n, n, self.col_block)
                | "Records" >> beam.FlatMap(_ranking_records, train)
                | "Write" >> beam.io.WriteToTFRecord(
                    fused_ranking.ranking_prefix(self.out_dir),
                    file_name_suffix=fused_ranking.SUFFIX, num_shards=self.shards,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP))
