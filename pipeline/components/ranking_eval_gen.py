"""RankingEvalGen: Features + STModel (+ a baseline Model) -> per-query evaluation
Examples for the TFMA Evaluator (pipeline/eval_examples.py, pipeline/ranking_metrics.py).

One example per evaluated query of the target: the ranks of its true matches in the
gallery under the Market protocol, by vision and by fusion with the round's ST model
and, when the fusion rule has rerank on, by the re-ranked fusion
(st_model/fused_rerank.py).
With a baseline (the latest blessed serving bundle), the same ranks by the baseline's
own embedding and ST model, so that TFMA's change threshold compares the two models on
the same queries. Also writes metrics.json (st_model.metrics, with CMC curves, and
the query / gallery images in cameras or ST nodes the round's ST model never saw:
st_model.evaluation.unseen_report, logged as a warning when there are any).
"""
import json

from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples, Model

from core.progress import log
from pipeline.artifacts import Features, STModel
from pipeline.component_io import METRICS_FILE, load_split_features, settings_of
from st_model.config import FusionRule


def bundle_eval_model(bundle_uri: str, examples_uri: str, candidate):
    """EvalModel of a serving bundle: its embedding of the query / gallery splits and
    the ST model it was blessed with (pipeline/components/serving_bundle.py)."""
    from core.features import make_feature_set
    from pipeline.bundle import bundle_st_model_dir
    from pipeline.eval_examples import EvalModel
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    from trainer.embed import embed_split
    from trainer.export import Embedder, resolve_model_dir
    serving = resolve_model_dir(bundle_uri)
    embedder = Embedder(serving)
    sets = []
    for split in ("query", "gallery"):
        a = embed_split(embedder, examples_uri, split)
        sets.append(make_feature_set(a["features"], a["camera"], a["frame"], a["sequence"],
                                     a["pid"], a["name"], source=f"{serving} on {split}"))
    # the baseline ranks the candidate's images in the candidate's order
    order = [{n: i for i, n in enumerate(s.names)} for s in sets]
    q, g = (s.subset([o[n] for n in c.names]) for s, o, c in
            zip(sets, order, (candidate.query, candidate.gallery)))
    tables = STTables.from_model(load_st_model(bundle_st_model_dir(serving)))
    return EvalModel(q, g, tables)


@tfx.dsl.components.component
def RankingEvalGen(
    features: tfx.dsl.components.InputArtifact[Features],
    st_model: tfx.dsl.components.InputArtifact[STModel],
    examples: tfx.dsl.components.InputArtifact[Examples],
    eval_examples: tfx.dsl.components.OutputArtifact[Examples],
    baseline_model: tfx.dsl.components.InputArtifact[Model] = None,
    fusion_rule: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Write Split-eval of per-query match ranks (candidate, and baseline if any)."""
    from pipeline.eval_examples import (FUSED_RANKS, FUSED_RERANKED_RANKS, VISION_RANKS,
                                        EvalModel, build_eval_examples,
                                        write_eval_examples)
    from core.files import join_path, write_file
    from st_model import metrics
    from st_model.evaluation import unseen_report
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    config = settings_of(FusionRule, fusion_rule, "RankingEvalGen", "fusion_rule")
    query, gallery = load_split_features(features.uri, ("query", "gallery"))
    model = load_st_model(st_model.uri)
    tables = STTables.from_model(model)
    unseen = unseen_report(model, query, gallery)
    candidate = EvalModel(query, gallery, tables)
    baseline = None
    if baseline_model is not None:
        log(f"RankingEvalGen: baseline {baseline_model.uri}")
        baseline = bundle_eval_model(baseline_model.uri, examples.uri, candidate)
    ranked = build_eval_examples(candidate, baseline, config)
    counts = write_eval_examples(eval_examples.uri, ranked)
    # the same figures as st_model.metrics, from the ranks just written (with CMC)
    results = {key: metrics.ranking_result(metrics.MatchRanks(
        ranked.queries, tuple(ranked.ranks[k]), ranked.query_names.size))
        for key, k in (("vision", VISION_RANKS), ("fusion", FUSED_RANKS),
                       ("fusion_reranked", FUSED_RERANKED_RANKS)) if k in ranked.ranks}
    result = {**{key: {**r.as_dict(), "cmc": list(r.cmc)} for key, r in results.items()},
              **counts, "unseen": unseen,
              "baseline_model": baseline_model.uri if baseline_model is not None else None}
    if FUSED_RERANKED_RANKS in ranked.ranks:
        result["fusion_reranked"].update(ranked.rerank_info[FUSED_RERANKED_RANKS])
    write_file(join_path(eval_examples.uri, METRICS_FILE),
               json.dumps(result, indent=2, default=float).encode("utf-8"))
    log(f"RankingEvalGen: {counts}; " + "; ".join(f"{k} {r}" for k, r in results.items()))
    eval_examples.split_names = artifact_utils.encode_split_names(["eval"])
    for k, v in counts.items():
        eval_examples.set_int_custom_property(k, int(v))
