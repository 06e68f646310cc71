"""TFX Trainer module file: RankNet transfer on the target from fused-ranking triples.

Trainer(module_file=.../trainer/module/ranknet_module.py, examples=<target Examples>,
        base_model=<pretrained Model>, train_args=TrainArgs(num_steps=N),
        custom_config={"fused_ranking_uri": <fused ranking artifact URI>,
                       "base_model_uri": <used when base_model is not connected>,
                       ...RankNetConfig fields}).
"""
from trainer.ranknet import run_fn  # noqa: F401
