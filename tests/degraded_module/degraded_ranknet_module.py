"""A deliberately degraded RankNet "round" for the gate test: the base model with its
stem convolution zeroed, so that it no longer sees the image (every image gets the same
embedding). The Evaluator must not bless it and the Pusher must not push it."""
import numpy as np


def run_fn(fn_args) -> None:
    import tensorflow as tf

    from trainer import export, models
    spec, backbone, head = export.load_base_model(fn_args.base_model)
    stem = next(layer for layer in models._flat_layers(backbone)
                if isinstance(layer, tf.keras.layers.Conv2D))
    stem.set_weights([np.zeros_like(w) for w in stem.get_weights()])
    export.export_model(fn_args.serving_model_dir, spec, backbone, head)
