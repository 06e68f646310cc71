"""The ST model and the fused train ranking as Beam PTransforms.

They call exactly the functions of the in-memory path (estimate.py, random_model.py,
fused_ranking.py) on the same blocks, so both paths give identical histograms and
rankings. Units of work: row blocks of the train split (top-k visual neighbours,
top-N fused neighbours) and in-reach (camera, sequence) sub-node pairs (random
model). Small per-split arrays (features, ST points) travel with the transforms;
everything quadratic is computed blockwise inside the workers.
"""
from __future__ import annotations

import apache_beam as beam
import numpy as np

from st_model import estimate, fused_ranking, neighbours, random_model, vision
from st_model.config import FusionConfig
from st_model.features import FeatureSet
from st_model.histograms import DeltaGrid
from st_model.nodes import build_nodes
from st_model.st_artifact import STModel


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


class EstimateSTModel(beam.PTransform):
    """PBegin -> PCollection holding one STModel (visual, random and diff models)."""

    def __init__(self, train: FeatureSet, config: FusionConfig, span: int,
                 row_block: int = neighbours.DEFAULT_ROW_BLOCK):
        super().__init__()
        self.train, self.config, self.span, self.row_block = train, config, span, row_block

    def expand(self, pbegin):
        train, cfg = self.train, self.config.resolved().validate()
        nodes = build_nodes(train.camera, train.sequence, cfg.mode)
        node = nodes.lookup(train.camera, train.sequence)
        m = nodes.size
        plan = random_model.random_plan(node, train.camera, train.sequence, train.frame,
                                        cfg.mode)
        grid0 = estimate.coarse_grid(self.span, cfg, m)
        step = estimate.frame_step(train.frame)
        stats = (pbegin | "One" >> beam.Create([None])
                 | "VisionStats" >> beam.Map(
                     lambda _: vision.cosine_moments(train.features, train.camera)))

        def block_deltas(block, best, vstats):
            return estimate.block_deltas(train, node, block, best, cfg, m, vstats,
                                         self.span)

        candidates = (pbegin
                      | "RowBlocks" >> beam.Create(
                          neighbours.row_blocks(len(train), self.row_block))
                      | "Neighbours" >> beam.Map(
                          lambda b: estimate.block_neighbours(train, b, cfg.top_k)))
        best = (candidates
                | "BestCosines" >> beam.CombineGlobally(_BestCosines(len(train))))
        deltas = (candidates
                  | "VisualDeltas" >> beam.Map(block_deltas, beam.pvalue.AsSingleton(best),
                                               beam.pvalue.AsSingleton(stats))
                  | "AllDeltas" >> beam.CombineGlobally(estimate.concat_deltas))
        sub_pairs = pbegin | "SubNodePairs" >> beam.Create(list(plan.pairs))

        def pair_counts(uv, grid: DeltaGrid):
            return grid, random_model.sub_pair_counts(plan, uv[0], uv[1], grid)

        coarse = (sub_pairs
                  | "CoarsePairCounts" >> beam.Map(pair_counts, grid0)
                  | "CoarseRandom" >> beam.CombineGlobally(_SumCounts(m)))

        def grid_of(d, coarse_counts):
            if coarse_counts is None:
                coarse_counts = np.zeros((m, m, grid0.n_bins), np.int64)
            return estimate.choose_grid(d, coarse_counts, grid0, self.span, cfg, m, step)

        chosen = deltas | "ChooseGrid" >> beam.Map(grid_of, beam.pvalue.AsSingleton(coarse))
        final = (sub_pairs
                 | "PairCounts" >> beam.Map(lambda uv, ch: pair_counts(uv, ch[0]),
                                            beam.pvalue.AsSingleton(chosen))
                 | "Random" >> beam.CombineGlobally(_SumCounts(m)))

        def assemble(ch, d, rand, vstats):
            grid, h, info = ch
            if rand is None:
                rand = np.zeros((m, m, grid.n_bins), np.int64)
            return estimate.assemble_model(nodes, grid, d, rand, h, info,
                                           random_model.random_info(plan), cfg,
                                           len(train), vstats, estimate.evidence_kind(cfg))

        return chosen | "Assemble" >> beam.Map(
            assemble, beam.pvalue.AsSingleton(deltas), beam.pvalue.AsSingleton(final),
            beam.pvalue.AsSingleton(stats))


class WriteFusedRanking(beam.PTransform):
    """PCollection[STModel] (one) -> fused train ranking TFRecords under out_dir."""

    def __init__(self, train: FeatureSet, config: FusionConfig, out_dir: str,
                 row_block: int = neighbours.DEFAULT_ROW_BLOCK, shards: int = 1):
        super().__init__()
        self.train, self.config, self.out_dir = train, config, out_dir
        self.row_block, self.shards = row_block, shards

    def expand(self, model_pc):
        from st_model.scoring import BlockScorer, STTables
        train, cfg = self.train, self.config.resolved()
        cache = {}

        def block_records(block, model: STModel):
            if "scorer" not in cache:
                cache["scorer"] = BlockScorer(STTables.from_model(model), train, train, cfg)
            rows = np.arange(block[0], block[1], dtype=np.int64)
            idx, sc = fused_ranking.fused_top_n_rows(cache["scorer"], rows,
                                                     cfg.ranking_top_n)
            return [fused_ranking.serialize_record(r) for r in
                    fused_ranking.ranking_records(train.names, rows, idx, sc)]

        import os
        return (model_pc.pipeline
                | "RankBlocks" >> beam.Create(neighbours.row_blocks(len(train), self.row_block))
                | "FusedTopN" >> beam.FlatMap(block_records, beam.pvalue.AsSingleton(model_pc))
                | "Write" >> beam.io.WriteToTFRecord(
                    os.path.join(self.out_dir, fused_ranking.PREFIX),
                    file_name_suffix=fused_ranking.SUFFIX, num_shards=self.shards,
                    compression_type=beam.io.filesystem.CompressionTypes.GZIP))
