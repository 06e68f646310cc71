"""The TFusion-TFX pipeline: TFusion's loop as one TFX DAG.

    ReidExampleGen(source), ReidExampleGen(target)
      -> Trainer[pretrain] (identity + verification on the labeled source)
      -> per round r = 0..R:  Embedder -> STModelGen -> RankingEvalGen -> Evaluator
                              (r < R:)  -> FusedRanker -> TripletGen -> Trainer[ranknet]
      -> ServingBundle(model R + ST model R) -> Evaluator gates (vs latest blessed) -> Pusher
"""
from __future__ import annotations

import os
from typing import List

from tfx import v1 as tfx

from core.dataclass_dict import to_dict
from pipeline.component_io import settings_json
from pipeline.components.embedder import Embedder
from pipeline.components.fused_ranker import FusedRanker
from pipeline.components.ranking_eval_gen import RankingEvalGen
from pipeline.components.reid_example_gen import ReidExampleGen
from pipeline.components.serving_bundle import ServingBundle
from pipeline.components.st_model_gen import STModelGen
from pipeline.components.triplet_gen import TripletGen
from pipeline.fingerprint import dataset_fingerprint
from pipeline.ranking_metrics import ranking_eval_config
from pipeline.run_config import RunConfig, beam_pipeline_args
from st_model.config import evaluation_rule, scoring_rule, teacher_rule

MODULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "trainer", "module")
PRETRAIN_MODULE = os.path.join(MODULES, "pretrain_module.py")
RANKNET_MODULE = os.path.join(MODULES, "ranknet_module.py")


def create_pipeline(config: RunConfig, source_dir: str, target_dir: str,
                    pipeline_root: str, metadata_path: str,
                    serving_dir: str) -> tfx.dsl.Pipeline:
    """The whole DAG for `config` over the two dataset folders."""
    st_config = settings_json(config.st)
    # each component gets the settings it depends on: the evaluation all but
    # rerank_teacher, the fused train ranking the re-ranking settings only with
    # rerank_teacher, the bundle none of them
    fusion_rule = settings_json(evaluation_rule(config.fusion_rule))
    scoring = settings_json(scoring_rule(config.fusion_rule))
    teacher = settings_json(teacher_rule(config.fusion_rule))
    source = ReidExampleGen(dataset_dir=source_dir,
                            dataset_fingerprint=dataset_fingerprint(source_dir)
                            ).with_id("ReidExampleGen_source")
    target = ReidExampleGen(dataset_dir=target_dir,
                            dataset_fingerprint=dataset_fingerprint(target_dir)
                            ).with_id("ReidExampleGen_target")
    pretrain = tfx.components.Trainer(
        module_file=PRETRAIN_MODULE, examples=source.outputs["examples"],
        train_args=tfx.proto.TrainArgs(num_steps=config.pretrain.steps),
        eval_args=tfx.proto.EvalArgs(splits=["train"], num_steps=0),
        custom_config=to_dict(config.pretrain)).with_id("Trainer_pretrain")
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("LatestBlessedModel")
    components: List = [source, target, pretrain, baseline]
    model = pretrain.outputs["model"]
    for r in range(config.rounds + 1):
        last = r == config.rounds
        embed = Embedder(examples=target.outputs["examples"], model=model).with_id(f"Embedder_r{r}")
        st = STModelGen(features=embed.outputs["features"], st_config=st_config
                        ).with_id(f"STModelGen_r{r}")
        components += [embed, st]
        if last:
            bundle = ServingBundle(model=model, st_model=st.outputs["st_model"],
                                   fusion_rule=scoring).with_id("ServingBundle")
            components.append(bundle)
            model = bundle.outputs["bundle"]
        evalgen = RankingEvalGen(
            features=embed.outputs["features"], st_model=st.outputs["st_model"],
            examples=target.outputs["examples"], fusion_rule=fusion_rule,
            **({"baseline_model": baseline.outputs["model"]} if last else {})
        ).with_id(f"RankingEvalGen_r{r}")
        evaluator = tfx.components.Evaluator(
            examples=evalgen.outputs["eval_examples"], model=model,
            **({"baseline_model": baseline.outputs["model"]} if last else {}),
            eval_config=eval_config(config, gated=last)).with_id(f"Evaluator_r{r}")
        components += [evalgen, evaluator]
        if last:
            break
        ranker = FusedRanker(features=embed.outputs["features"],
                             st_model=st.outputs["st_model"], fusion_rule=teacher
                             ).with_id(f"FusedRanker_r{r}")
        triplets = TripletGen(fused_ranking=ranker.outputs["fused_ranking"],
                              examples=target.outputs["examples"],
                              ranknet_config=settings_json(config.ranknet)
                              ).with_id(f"TripletGen_r{r}")
        ranknet = tfx.components.Trainer(
            module_file=config.ranknet_module_file or RANKNET_MODULE,
            examples=triplets.outputs["triplets"], base_model=model,
            train_args=tfx.proto.TrainArgs(num_steps=config.ranknet.steps),
            eval_args=tfx.proto.EvalArgs(splits=["eval"], num_steps=0),
            custom_config=to_dict(config.ranknet)).with_id(f"Trainer_ranknet_r{r + 1}")
        components += [ranker, triplets, ranknet]
        model = ranknet.outputs["model"]
    pusher = tfx.components.Pusher(
        model=model, model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_dir)))
    return tfx.dsl.Pipeline(
        pipeline_name=config.name, pipeline_root=pipeline_root,
        components=components + [pusher], enable_cache=config.enable_cache,
        metadata_connection_config=tfx.orchestration.metadata
        .sqlite_metadata_connection_config(metadata_path),
        beam_pipeline_args=beam_pipeline_args(config))


def eval_config(config: RunConfig, gated: bool):
    """The ranking metrics (with re-ranking on, also those of the re-ranked fused list);
    gates (absolute bound, no regression vs the latest blessed model) only on the last
    round — earlier rounds are measured, never blessed."""
    reranked = None
    if config.fusion_rule.rerank:
        reranked = (config.min_fused_reranked_rank1, config.max_fused_reranked_rank1_drop)
    return ranking_eval_config(config.min_fused_rank1, config.max_fused_rank1_drop,
                               with_baseline=gated, gated=gated, reranked=reranked)
