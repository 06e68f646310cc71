"""`fuse`: ST model + fusion + evaluation + fused train ranking, for features from
any model — the job behind `tfusion fuse` (and the benchmarks): it launches the ST math of
st_model/ and writes OUT/metrics.json.

Two execution paths with identical artifacts (they call the same math):
- in memory (default): numpy/scipy in this process, blockwise so memory stays flat;
- Beam: when `beam_args` is given (any pipeline option, e.g. `--runner=DataflowRunner`
  or `--runner=DirectRunner`), ST estimation and the fused train ranking run as one
  Beam pipeline (st_model/beam_transforms.py) whose workers read the train feature
  file; evaluation (st_model/evaluation.py) then runs here on the ST artifact.
Every output goes through Beam's FileSystems (core/files.py): OUTPUT may be a
local folder, `gs://…` or any registered Beam filesystem.
"""
from __future__ import annotations

import concurrent.futures
import json
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple, Union

from core.features import FeatureHeader, FeatureSet, save_features
from core.files import join_path, make_folder, write_file
from core.progress import log, peak_rss_gb
from st_model import blas, estimate, fused_ranking, neighbours, workers
from core.dataclass_dict import to_dict
from st_model.config import Settings, STConfig
from st_model.evaluation import check_inputs, evaluate, evaluate_reranked, unseen_report
from st_model.scoring import STTables
from st_model.st_artifact import FILENAME, PLOT_FILENAME, STModel, save_st_model

if TYPE_CHECKING:
    from st_model.beam_transforms import ThinRetry

METRICS_FILE = "metrics.json"
STAGED_TRAIN = "beam_train_features.npz"   # train staged for the workers, then removed


def estimate_in_memory(train: FeatureSet, config: STConfig, span: int) -> STModel:
    return estimate.estimate_st_model(train, config, span)


def build_st_job(p, train_path: Union[str, FeatureHeader], settings: Settings,
                 span: int, output_dir: str, ranking: bool = True,
                 col_block: int = neighbours.DEFAULT_COL_BLOCK,
                 retry: Optional[Tuple[str, "ThinRetry"]] = None) -> str:
    """Add the ST job to Beam pipeline `p`: the ST model estimated from the train
    feature file or shard folder (or its FeatureHeader) — or from the pooled
    features of a thin-evidence `retry` (beam_transforms.thin_visit_retry) — saved
    to OUTPUT/st_model.npz, and the fused train ranking (tiles of col_block train
    columns). Only paths and small parameters enter the job graph; the launcher
    reads the train split's header once. Returns the model's path."""
    import apache_beam as beam

    from core.features import read_header
    from st_model.beam_transforms import EstimateSTModel, WriteFusedRanking
    if isinstance(train_path, str):
        train_path = read_header(train_path)
    path = join_path(output_dir, FILENAME)
    evidence, how = retry if retry else (train_path, None)
    model = p | "EstimateSTModel" >> EstimateSTModel(evidence, settings.st, span,
                                                     col_block=col_block, retry=how)
    _ = model | "SaveSTModel" >> beam.Map(save_st_model, path)
    if ranking:
        _ = model | "FusedRanking" >> WriteFusedRanking(train_path, settings.rule, output_dir,
                                                        col_block=col_block)
    return path


def run_beam(train_path: Union[str, FeatureHeader], settings: Settings, span: int,
             output_dir: str, beam_args: List[str], ranking: bool = True,
             col_block: int = neighbours.DEFAULT_COL_BLOCK) -> STModel:
    """ST model (+ fused train ranking) as one Beam pipeline; returns the saved model."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from st_model.beam_transforms import with_thin_retry
    log(f"Beam pipeline: {' '.join(beam_args)}")
    with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
        path = build_st_job(p, train_path, settings, span, output_dir, ranking, col_block)

    def run_again(retry) -> None:
        fused_ranking.remove_ranking(output_dir)
        with beam.Pipeline(options=PipelineOptions(beam_args)) as p:
            build_st_job(p, train_path, settings, span, output_dir, ranking, col_block,
                         retry)
    return with_thin_retry(path, train_path, settings.st, span, output_dir, run_again)


def estimate_with_beam(train: Union[FeatureSet, FeatureHeader], train_path: Optional[str],
                       settings: Settings, span: int, output_dir: str,
                       beam_args: List[str], ranking: bool) -> STModel:
    """The Beam path on `train_path` (the file `train` was loaded from; a
    FeatureHeader is used as read); without one, `train` is first staged as
    OUTPUT/STAGED_TRAIN for the workers and removed after."""
    if isinstance(train, FeatureHeader):
        return run_beam(train, settings, span, output_dir, beam_args, ranking)
    if train_path is not None:
        return run_beam(train_path, settings, span, output_dir, beam_args, ranking)
    from apache_beam.io.filesystems import FileSystems
    staged = save_features(train, join_path(output_dir, STAGED_TRAIN))
    try:
        return run_beam(staged, settings, span, output_dir, beam_args, ranking)
    finally:
        FileSystems.delete([staged])


def fuse(train: Union[FeatureSet, FeatureHeader], query: FeatureSet, gallery: FeatureSet,
         settings: Settings, output_dir: str, beam_args: Optional[List[str]] = None,
         plot: bool = True, ranking: bool = True, oracle_st: bool = False,
         train_path: Optional[str] = None,
         startup: Optional[Tuple[float, float]] = None) -> Dict:
    """fuse_run with one BLAS thread (st_model/blas.py) and the in-memory blockwise
    work on threads over the usable CPUs (st_model/workers.py)."""
    with blas.single_thread(), workers.threads(workers.usable_cpus()):
        return fuse_run(train, query, gallery, settings, output_dir, beam_args, plot,
                        ranking, oracle_st, train_path, startup)


class StageClock:
    """Wall and process-CPU seconds of each stage: `timing[name + "_s"]` (wall) and
    `timing["cpu"][name + "_s"]`."""

    def __init__(self, timing: Dict):
        self.timing = timing
        timing.setdefault("cpu", {})
        self._start = (time.monotonic(), time.process_time())

    def lap(self, name: str, since: Optional[Tuple[float, float]] = None) -> None:
        """Record the stage `name` as the time since `since` (default: the last lap)."""
        w0, c0 = since or self._start
        now = (time.monotonic(), time.process_time())
        self.timing[name + "_s"] = now[0] - w0
        self.timing["cpu"][name + "_s"] = now[1] - c0
        self._start = now

    def mark(self) -> Tuple[float, float]:
        return (time.monotonic(), time.process_time())

    def restart(self) -> None:
        """Start the next stage now (what ran since the last lap is no stage)."""
        self._start = self.mark()

    def line(self) -> str:
        """`stage wall/CPU s, ...` of every recorded stage."""
        cpu = self.timing["cpu"]
        return ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f}"
                         + (f"/{cpu[k]:.1f}" if k in cpu else "")
                         for k, v in self.timing.items() if k.endswith("_s"))


def fuse_run(train: Union[FeatureSet, FeatureHeader], query: FeatureSet,
             gallery: FeatureSet, settings: Settings, output_dir: str,
             beam_args: Optional[List[str]] = None, plot: bool = True,
             ranking: bool = True, oracle_st: bool = False,
             train_path: Optional[str] = None,
             startup: Optional[Tuple[float, float]] = None) -> Dict:
    """Build the ST model on `train`, fuse, evaluate query vs gallery, write artifacts.

    Writes OUT/metrics.json, OUT/st_model.npz, OUT/fused_ranking-*.tfrecord.gz and
    OUT/st_model.png; returns the metrics dict. `settings`: resolved
    (st_model.config.resolve_settings). `train_path`: the feature file or
    shard folder `train` was read from, which the Beam path's workers read; with
    the Beam path `train` may be its FeatureHeader only (the launcher never holds
    the train features). `oracle_st` (benchmarks; needs train pids) adds "fusion_oracle_st": the same fusion with the ST model estimated from
    true train identities (estimate.oracle_st_model), the bound to read fusion against.
    `startup`: (wall, CPU) seconds the calling process spent before this call (the
    command's imports and feature loading), reported as the stage "startup".
    Each stage's wall and CPU seconds go to metrics.json "timing" and the log.
    """
    timing: Dict = {}
    if startup is not None:
        timing["startup_s"] = startup[0]
        timing["cpu"] = {"startup_s": startup[1]}
    clock = StageClock(timing)
    t0, cpu0 = clock.mark()
    st, rule = settings
    check_inputs(train, query, gallery)
    make_folder(output_dir)
    if fused_ranking.remove_ranking(output_dir):
        log(f"removed the fused ranking of an earlier run in {output_dir}")
    span = estimate.frame_span(train, query, gallery)
    background = concurrent.futures.ThreadPoolExecutor(1)   # writes beside the work
    pending = []
    try:
        if beam_args:
            with workers.threads(1):     # Beam runs its own bundles side by side
                model = estimate_with_beam(train, train_path, settings, span,
                                           output_dir, beam_args, ranking)
        else:
            model = estimate_in_memory(train, st, span)
            pending.append(background.submit(save_st_model, model, output_dir))
        tables = STTables.from_model(model)
        clock.lap("st_model")
        if plot:
            from st_model.plot import plot_st_model
            pending.append(background.submit(
                plot_st_model, model, train, join_path(output_dir, PLOT_FILENAME),
                evidence=tables.evidence))
        result = _fuse_and_evaluate(train, query, gallery, settings, output_dir,
                                    beam_args, ranking, oracle_st, span, tables,
                                    timing, clock, pending)
    finally:
        background.shutdown(wait=True)
    clock.lap("total", since=(t0, cpu0))
    if startup is not None:
        timing["process_s"] = startup[0] + timing["total_s"]
        timing["cpu"]["process_s"] = startup[1] + timing["cpu"]["total_s"]
    log("time per stage (wall/CPU s): " + clock.line())
    write_metrics(result, output_dir)
    return result


def _fuse_and_evaluate(train, query, gallery, settings: Settings, output_dir: str,
                       beam_args, ranking: bool, oracle_st: bool, span: int,
                       tables: STTables, timing: Dict, clock: "StageClock",
                       pending: List[concurrent.futures.Future]) -> Dict:
    """fuse_run after the ST model: evaluation, re-ranking, oracle bound, fused
    ranking; waits for the background writes (`pending`: artifact and plot)."""
    st, rule = settings
    model = tables.model
    nodes = model.nodes
    q_node = nodes.lookup(query.camera, query.sequence)
    g_node = nodes.lookup(gallery.camera, gallery.sequence)
    unseen = unseen_report(model, query, gallery, q_node, g_node)
    log("evaluating vision")
    vis = evaluate(query, gallery, None, rule)
    log(f"vision: {vis}")
    log("evaluating fusion")
    fus = evaluate(query, gallery, tables, rule, q_node, g_node)
    log(f"fusion: {fus}")
    clock.lap("evaluation")
    reranked = None
    if rule.rerank:
        timing["peak_rss_before_rerank_gb"] = peak_rss_gb()
        clock.restart()
        log("re-ranking the fused list")
        rr, rr_info = evaluate_reranked(query, gallery, tables, rule, st.frame_rate,
                                          q_node, g_node)
        reranked = {**rr.as_dict(), **rr_info}
        clock.lap("rerank")
        timing["peak_rss_after_rerank_gb"] = peak_rss_gb()
        log(f"fusion + re-ranking: {rr} ({timing['rerank_s']:.1f} s)")
    oracle_metrics = oracle_reranked = None
    clock.restart()
    if oracle_st:
        log("oracle-ST bound: the same fusion, ST model from true train identities")
        oracle = STTables.from_model(estimate.oracle_st_model(train, st, span))
        oracle_metrics = evaluate(query, gallery, oracle, rule, q_node,
                                  g_node).as_dict()
        log(f"fusion with the oracle ST model: {oracle_metrics}")
        if rule.rerank:
            rr, _ = evaluate_reranked(query, gallery, oracle, rule, st.frame_rate,
                                      q_node, g_node)
            oracle_reranked = rr.as_dict()
            log(f"oracle-ST fusion + re-ranking: {rr}")
        clock.lap("oracle_st")
    if ranking and not beam_args:
        clock.restart()
        fused_ranking.write_ranking_in_memory(train, tables, rule, output_dir,
                                              timing=timing)
        clock.lap("fused_ranking")
    clock.restart()
    for job in pending:             # the artifact and plot: their errors surface here
        job.result()
    clock.lap("writes_left")
    result = {
        "vision": vis.as_dict(), "fusion": fus.as_dict(),
        "excluded_queries": vis.excluded,
        "mode": st.mode, "fusion_rule": rule.fusion,
        "config": {"st": to_dict(st), "fusion_rule": to_dict(rule)},
        "st_model": {k: v for k, v in model.header().items() if k != "bandwidth_curve"},
        "unseen": unseen,
        "path": "beam" if beam_args else "in_memory",
        "timing": timing,
    }
    if reranked is not None:
        result["fusion_reranked"] = reranked
    if oracle_metrics is not None:
        result["fusion_oracle_st"] = oracle_metrics
    if oracle_reranked is not None:
        result["fusion_oracle_st_reranked"] = oracle_reranked
    return result


def write_metrics(result: Dict, output_dir: str) -> None:
    """OUT/metrics.json of a fuse run."""
    write_file(join_path(output_dir, METRICS_FILE),
               json.dumps(result, indent=2, sort_keys=True, default=float).encode())
    log(f"wrote {output_dir}/{METRICS_FILE} ({result['timing']['total_s']:.1f} s)")
