"""What a finished `tfusion run` (or `tfusion demo`) produced, read back from ML
Metadata: TFMA metrics per round, the images the ST model never saw, the gate
decision, the pushed bundle; as JSON, the one printed summary and the HTML report."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional

from core.files import join_path
from pipeline import lineage
from st_model.st_artifact import PLOT_FILENAME

METRIC_NAMES = ("rank1", "rank5", "rank10", "mAP")


def tfma_metrics(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
    """{model name: {metric name: value}} on the overall slice of a TFMA result (the
    candidate's spec is unnamed when the Evaluator ran it alone)."""
    import tensorflow_model_analysis as tfma
    out: Dict[str, Dict[str, float]] = {}
    for per_slice in tfma.load_metrics(evaluation_uri):
        if per_slice.slice_key.single_slice_keys:
            continue
        for kv in per_slice.metric_keys_and_values:
            if not kv.key.is_diff:
                model = out.setdefault(kv.key.model_name or "candidate", {})
                model[kv.key.name] = kv.value.double_value.value
    return out


def gate_decision(evaluation_uri: str, blessing) -> Dict:
    import tensorflow_model_analysis as tfma
    result = tfma.load_validation_result(evaluation_uri)
    failures = [{"metric": f.metric_key.name, "value": f.metric_value.double_value.value,
                 "threshold": str(f.metric_threshold).replace("\n", " "),
                 "message": f.message}
                for m in result.metric_validations_per_slice for f in m.failures]
    blessed = blessing.custom_properties.get("blessed")
    return {"validation_ok": bool(result.validation_ok), "failures": failures,
            "blessed": bool(blessed and blessed.int_value == 1),
            "baseline_model": blessing.custom_properties["baseline_model"].string_value
            if "baseline_model" in blessing.custom_properties else None}


def read_json(path: str) -> Dict:
    """A JSON file read through Beam's FileSystems (any registered filesystem)."""
    from core.files import open_file
    with open_file(path) as f:
        return json.loads(f.read().decode("utf-8"))


def held_out_order_accuracy(store, pipeline: str, r: int) -> Optional[float]:
    """The order accuracy on held-out anchors that round r's RankNet Trainer recorded
    with its model (None for round 0, or a model trained without held-out triples)."""
    trainer = lineage.latest_outputs(store, pipeline, f"Trainer_ranknet_r{r}")
    if r == 0 or not trainer:
        return None
    spec = join_path(trainer["model"][0].uri, "Format-Serving", "keras", "backbone.json")
    try:
        return read_json(spec).get("held_out_order_accuracy")
    except (OSError, ValueError):
        return None


def train_has_identities(features_uri: str) -> bool:
    """Whether the train split of a Features artifact carries identities, from which
    the ST model plot draws its true Δ curve (an unlabeled target has none)."""
    from core.features import load_st_points, split_features_path
    from st_model.plot import has_identities
    return has_identities(load_st_points(split_features_path(features_uri, "train")))


def summarize(config, out: str, minutes: Optional[float] = None) -> Dict:
    from pipeline.component_io import METRICS_FILE
    store = lineage.open_store(os.path.join(out, "metadata.sqlite"))
    name = config.name
    rounds: List[Dict] = []
    gate = None
    for r in range(config.rounds + 1):
        evaluation = lineage.latest_outputs(store, name, f"Evaluator_r{r}")
        eval_examples = lineage.latest_outputs(store, name, f"RankingEvalGen_r{r}")
        st = lineage.latest_outputs(store, name, f"STModelGen_r{r}")
        feats = lineage.latest_outputs(store, name, f"Embedder_r{r}")
        if not evaluation:
            continue
        models = tfma_metrics(evaluation["evaluation"][0].uri)
        m = models.get("candidate", {})
        if r == config.rounds:
            gate = gate_decision(evaluation["evaluation"][0].uri, evaluation["blessing"][0])
            gate.update(candidate=m, baseline=models.get("baseline"),
                        min_fused_rank1=config.min_fused_rank1,
                        max_fused_rank1_drop=config.max_fused_rank1_drop)
            if config.fusion_rule.rerank:
                gate.update(min_fused_reranked_rank1=config.min_fused_reranked_rank1,
                            max_fused_reranked_rank1_drop=config
                            .max_fused_reranked_rank1_drop)
        local = {}
        if eval_examples:
            local = read_json(join_path(eval_examples["eval_examples"][0].uri, METRICS_FILE))
        reranked = None
        if "fused_reranked_rank1" in m:
            reranked = {**{k: m.get(f"fused_reranked_{k}") for k in METRIC_NAMES},
                        "queries": m.get("query_count")}
        rounds.append({
            "round": r,
            "vision": {**{k: m.get(f"vision_{k}") for k in METRIC_NAMES},
                       "queries": m.get("query_count")},
            "fused": {**{k: m.get(f"fused_{k}") for k in METRIC_NAMES},
                      "queries": m.get("query_count")},
            **({"fused_reranked": reranked} if reranked else {}),
            "queries": m.get("query_count"),
            "st_model_metrics": {k: local.get(k) for k in ("vision", "fusion") +
                                 (("fusion_reranked",) if "fusion_reranked" in local
                                  else ())},
            "unseen": local.get("unseen"),
            "evaluation": evaluation["evaluation"][0].uri,
            "eval_examples": eval_examples["eval_examples"][0].uri if eval_examples else None,
            "st_model": st["st_model"][0].uri if st else None,
            "st_plot": join_path(st["st_model"][0].uri, PLOT_FILENAME) if st else None,
            "features": feats["features"][0].uri if feats else None,
            "st_true_curve": train_has_identities(feats["features"][0].uri)
            if feats else None,
            "ranknet_held_out_order_accuracy": held_out_order_accuracy(store, name, r),
        })
    pushed = lineage.latest_outputs(store, name, "Pusher").get("pushed_model", [])
    push = None
    if pushed:
        p = pushed[0].custom_properties
        push = {"pushed": bool(p["pushed"].int_value) if "pushed" in p else False,
                "destination": p["pushed_destination"].string_value
                if "pushed_destination" in p else None}
    target = lineage.latest_outputs(store, name, "ReidExampleGen_target").get("examples")
    return {"out": out, "pipeline": name, "config": config.to_dict(), "rounds": rounds,
            "gate": gate, "push": push, "metadata": os.path.join(out, "metadata.sqlite"),
            "target_examples": target[0].uri if target else None,
            "minutes": None if minutes is None else round(minutes, 2)}


def report_rounds(summary: Dict) -> List:
    """report_data.RoundResult per round: TFMA's figures (vision, fused and, with
    re-ranking on, fused + re-ranked), the CMC curves and ST plot of the round, its
    unseen images, and a few ranked queries with their images."""
    from pipeline.component_io import load_split_features
    from pipeline.report_data import RoundResult, attach_images, ranked_queries
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    from core.dataclass_dict import from_dict
    from st_model.config import FusionRule
    config = from_dict(FusionRule, summary["config"]["fusion_rule"],   # resolved by the run
                       "run_summary.json config fusion_rule")
    out = []
    for row in summary["rounds"]:
        query, gallery = load_split_features(row["features"], ("query", "gallery"))
        tables = STTables.from_model(load_st_model(row["st_model"]))
        ranked = ranked_queries(query, gallery, tables, config, seed=summary["config"]["seed"])
        if summary.get("target_examples"):
            ranked = attach_images(ranked, summary["target_examples"])
        local = row["st_model_metrics"]
        out.append(RoundResult(f"round {row['round']}", row["vision"], row["fused"],
                               (local.get("vision") or {}).get("cmc", ()),
                               (local.get("fusion") or {}).get("cmc", ()),
                               row["st_plot"], ranked, row.get("unseen"),
                               row.get("st_true_curve"), row.get("fused_reranked"),
                               (local.get("fusion_reranked") or {}).get("cmc", ())))
    return out


def report_gate(summary: Dict):
    """report_data.GateDecision of the last round's Evaluator: the checks on fused
    rank-1 and, when the run gated it, on fused + re-ranked rank-1."""
    from pipeline.report_data import GateCheck, GateDecision
    gate = summary["gate"]
    if not gate:
        return None
    checks = []
    for what, label in (("fused", "fused"), ("fused_reranked", "fused + re-ranked")):
        metric = f"{what}_rank1"
        if f"min_{metric}" not in gate:
            continue
        failed = lambda change: any(  # noqa: E731
            f["metric"] == metric and ("change" in f["threshold"]) == change
            for f in gate["failures"])
        value = gate["candidate"].get(metric, float("nan"))
        checks.append(GateCheck(f"{label} rank-1 (absolute)", value, gate[f"min_{metric}"],
                                ">=", passed=not failed(False)))
        if gate.get("baseline"):
            base = gate["baseline"].get(metric, float("nan"))
            checks.append(GateCheck(f"{label} rank-1 change vs the latest blessed model",
                                    value - base, -gate[f"max_{metric}_drop"], ">=",
                                    baseline=base, passed=not failed(True)))
    return GateDecision(gate["blessed"], checks, gate["baseline_model"], None)


def write_outputs(summary: Dict, out: str) -> None:
    """OUTPUT/run_summary.json and the HTML report OUTPUT/report.html."""
    from core.files import write_file
    from pipeline.report_html import write_run_report
    path = join_path(out, "report.html")
    links = {"ML Metadata": summary["metadata"], "run summary": join_path(
        out, "run_summary.json")}
    if summary.get("push") and summary["push"]["pushed"]:
        links["pushed model"] = summary["push"]["destination"]
    summary["report"] = write_run_report(path, report_rounds(summary), report_gate(summary),
                                         f"TFusion run {summary['pipeline']!r}", links)
    write_file(join_path(out, "run_summary.json"),
               json.dumps(summary, indent=2, default=str).encode("utf-8"))


def format_summary(summary: Dict) -> str:
    """The summary `tfusion run` and `tfusion demo` print."""
    from pipeline.report_data import UNSEEN_LABEL, unseen_counts
    lines = ["", f"TFusion pipeline {summary['pipeline']!r} — target query vs gallery "
                 "(TFMA, Market protocol, %):",
             f"{'round':>5} {'vision r1':>9} {'r5':>6} {'r10':>6} {'mAP':>6}   "
             f"{'fused r1':>8} {'r5':>6} {'r10':>6} {'mAP':>6}   {'RankNet order':>13}"]
    for row in summary["rounds"]:
        v, f = row["vision"], row["fused"]
        order = row.get("ranknet_held_out_order_accuracy")
        lines.append(f"{row['round']:>5} {v['rank1']:9.1f} {v['rank5']:6.1f} "
                     f"{v['rank10']:6.1f} {v['mAP']:6.1f}   {f['rank1']:8.1f} "
                     f"{f['rank5']:6.1f} {f['rank10']:6.1f} {f['mAP']:6.1f}   "
                     + (f"{100 * order:13.1f}" if order is not None else f"{'–':>13}"))
    reranked = [row for row in summary["rounds"] if row.get("fused_reranked")]
    if reranked:
        lines.append(f"{'round':>5} {'fused + re-ranked r1':>20} {'r5':>6} {'r10':>6} "
                     f"{'mAP':>6}")
        for row in reranked:
            f = row["fused_reranked"]
            lines.append(f"{row['round']:>5} {f['rank1']:20.1f} {f['rank5']:6.1f} "
                         f"{f['rank10']:6.1f} {f['mAP']:6.1f}")
    lines.append("RankNet order: % of held-out triples (anchors the round never trained "
                 "on) that the round's embedding orders as the fused ranking does.")
    lines.append(f"{UNSEEN_LABEL}:")
    lines += [f"  round {row['round']}: {unseen_counts(row.get('unseen'))}"
              for row in summary["rounds"]]
    gate, push = summary["gate"], summary["push"]
    if gate:
        lines.append("")
        lines.append("gate: " + ("BLESSED" if gate["blessed"] else "NOT blessed") +
                     (f" (baseline {gate['baseline_model']})" if gate["baseline_model"]
                      else " (no earlier blessed model: absolute bound only)"))
        for fl in gate["failures"]:
            lines.append(f"  failed: {fl['metric']} = {fl['value']:.2f}: {fl['message']}")
    if push:
        lines.append(f"pushed: {push['destination']}" if push["pushed"] else
                     "pushed: nothing (the candidate was not blessed)")
    lines.append(f"ST model plots: " + ", ".join(r["st_plot"] for r in summary["rounds"]
                                                  if r.get("st_plot")))
    if any(r.get("st_true_curve") is False for r in summary["rounds"]):
        from st_model.plot import NO_TRUE_CURVE
        lines.append(f"  ({NO_TRUE_CURVE})")
    lines.append(f"ML Metadata: {summary['metadata']}  (`tfusion lineage --output-dir "
                 f"{summary['out']}`)")
    if summary.get("report"):
        lines.append(f"report: {summary['report']}")
    if summary.get("minutes") is not None:
        lines.append(f"pipeline time: {summary['minutes']} min")
    return "\n".join(lines)
