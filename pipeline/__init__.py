"""TFX wiring of TFusion-TFX: components, the pipeline DAG, runners and the CLI."""
import os

# tf.keras 2 everywhere (see trainer/__init__.py); must precede any TensorFlow import.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
