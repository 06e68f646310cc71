"""TFX Trainer module file: source pretraining (identity classification).

Trainer(module_file=.../trainer/module/pretrain_module.py, examples=<source Examples>,
        train_args=TrainArgs(num_steps=N), custom_config={PretrainConfig fields}).
"""
from trainer.pretrain import run_fn  # noqa: F401
