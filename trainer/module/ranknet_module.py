"""TFX Trainer module file: RankNet transfer on the target from fused-ranking triples.

In the pipeline:
    Trainer(module_file=.../trainer/module/ranknet_module.py,
            examples=<TripletGen's triplets Examples: Split-train, Split-eval held out>,
            base_model=<the previous round's Model>,
            train_args=TrainArgs(num_steps=N), eval_args=EvalArgs(splits=["eval"]),
            custom_config={...RankNetConfig fields})
Standalone, `examples` may instead be the target Examples with
custom_config["fused_ranking_uri"] (and "base_model_uri" when base_model is not
connected): the triples are then drawn here (trainer.ranknet.run_fn).
"""
from trainer.ranknet import run_fn  # noqa: F401
