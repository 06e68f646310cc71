"""Keras models, tf.data input and TFX run_fn code of TFusion-TFX.

The whole project uses tf.keras 2 (the `tf_keras` package) because TFX 1.16, TFT and
TFMA are written against it; TF 2.16 would otherwise hand out Keras 3. The switch must
happen before TensorFlow is first imported, so it is made here and in `pipeline`.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
