"""SavedModel export with embedding signatures, and the matching reload functions.

Layout of an exported model directory (the TFX serving_model_dir):
    saved_model.pb, variables/     signatures below (no Keras needed to serve)
    keras/backbone.json            BackboneSpec + embedding size (rebuild from code)
    keras/backbone.weights.h5      backbone weights (the base model of RankNet transfer)
    keras/verification.weights.h5  pair-verification / RankNet head, when trained
Signatures (outputs {"embedding": float32 [B, D]}, L2-normalised):
    serving_default     examples: serialized tf.Example [B] with an `image` bytes feature
    embed_image_bytes   images:   encoded JPEG/PNG/BMP bytes [B]
and the function `embed_images(float32 [B, H, W, 3] pixels in [0, 255])`.
A serving bundle's model (export_bundle_model) adds, with the ST model in its
variables, the signature
    fused_scores        query/gallery embeddings, cameras, sequences, frames ->
                        fused, vision, st_factor [Q, G]   (trainer/fused_scoring.py)
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from core.errors import InputError
from trainer import data, models, runtime
import tensorflow as tf

KERAS_DIR = "keras"


class EmbeddingModule(tf.Module):
    """tf.Module holding the backbone; its tf.functions become the SavedModel API."""

    def __init__(self, backbone: tf.keras.Model, spec: models.BackboneSpec):
        super().__init__(name="tfusion_embedding")
        # Track the variables only: tracking the Keras model itself would make
        # tf.saved_model.save trace every layer's call (≈5x slower, nothing gained).
        self.weights = list(backbone.weights)
        h, w = spec.height, spec.width
        self.height = tf.Variable(h, trainable=False, name="height")
        self.width = tf.Variable(w, trainable=False, name="width")

        def embed(images):
            return models.l2_normalize(backbone(images, training=False))

        def decode_all(encoded):
            return tf.map_fn(lambda b: data.decode_image(b, h, w), encoded,
                             fn_output_signature=tf.TensorSpec([h, w, 3], tf.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, h, w, 3], tf.float32, "images")])
        def embed_images(images):
            return {"embedding": embed(images)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "images")])
        def embed_image_bytes(images):
            return {"embedding": embed(decode_all(images))}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, "examples")])
        def embed_examples(examples):
            parsed = tf.io.parse_example(
                examples, {"image": tf.io.FixedLenFeature([], tf.string)})
            return {"embedding": embed(decode_all(parsed["image"]))}

        self.embed_images = embed_images
        self.embed_image_bytes = embed_image_bytes
        self.embed_examples = embed_examples


def _float32_copy(spec: models.BackboneSpec, backbone: tf.keras.Model) -> tf.keras.Model:
    """Serving runs in float32: rebuild a mixed-precision backbone and copy weights."""
    if all(l.compute_dtype in (None, "float32") for l in models._flat_layers(backbone)):
        return backbone
    policy = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("float32")
    try:
        copy = models.build_backbone(spec)
        copy.set_weights(backbone.get_weights())
    finally:
        tf.keras.mixed_precision.set_global_policy(policy)
    return copy


def export_model(export_dir: str, spec: models.BackboneSpec, backbone: tf.keras.Model,
                 head: Optional[tf.keras.Model] = None, extra: Optional[dict] = None,
                 fused=None) -> str:
    """Write the SavedModel (signatures above) and the Keras rebuild files; with
    `fused` (a trainer.fused_scoring.FusedScoring) also its `fused_scores` signature."""
    backbone = _float32_copy(spec, backbone)
    module = EmbeddingModule(backbone, spec)
    signatures = {"serving_default": module.embed_examples,
                  "embed_image_bytes": module.embed_image_bytes}
    if fused is not None:
        from trainer.fused_scoring import SIGNATURE
        module.st = fused
        signatures[SIGNATURE] = fused.fused_scores
    tf.io.gfile.makedirs(export_dir)
    tf.saved_model.save(module, export_dir, signatures=signatures)
    models.save_keras(os.path.join(export_dir, KERAS_DIR), spec, backbone, head, extra)
    runtime.log(f"exported {spec.name} {spec.height}x{spec.width} model to {export_dir}")
    return export_dir


def export_bundle_model(model_dir: str, export_dir: str, tables, config) -> str:
    """Re-export the model in `model_dir` (rebuilt from its Keras files, weights
    unchanged) into `export_dir` with the `fused_scores` signature of the ST model
    `tables` (st_model.scoring.STTables) fused by `config` (a resolved
    st_model.config.FusionRule)."""
    from trainer.fused_scoring import FusedScoring
    keras_dir = os.path.join(resolve_model_dir(model_dir), KERAS_DIR)
    info = models.read_spec(keras_dir)
    spec, backbone, head = models.load_keras(keras_dir)
    extra = {k: v for k, v in info.items()
             if k not in ("spec", "embedding_dim", "has_verification_head")}
    return export_model(export_dir, spec, backbone, head, extra,
                        fused=FusedScoring(tables, config, int(info["embedding_dim"])))


def resolve_model_dir(path: str) -> str:
    """A model directory, or a TFX Model artifact root holding Format-Serving/."""
    for candidate in (path, os.path.join(path, "Format-Serving")):
        if tf.io.gfile.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise InputError(f"{path}: not a model folder (no saved_model.pb here or in "
                     f"{os.path.join(path, 'Format-Serving')})")


class Embedder:
    """A reloaded exported model: embeds float images, encoded bytes or tf.Examples."""

    def __init__(self, model_dir: str):
        self.model_dir = resolve_model_dir(model_dir)
        self.module = tf.saved_model.load(self.model_dir)
        missing = [a for a in ("height", "width", "embed_images") if not hasattr(self.module, a)]
        if missing or "embed_image_bytes" not in self.module.signatures:
            raise InputError(
                f"{self.model_dir}: a SavedModel but not a TFusion embedding model (no "
                f"{', '.join(missing) or 'embed_image_bytes signature'}); expected the "
                "output of `tfusion pretrain` / `tfusion transfer` or their Trainer")
        self.height = int(self.module.height.numpy())
        self.width = int(self.module.width.numpy())

    def embed_images(self, images) -> np.ndarray:
        return self.module.embed_images(tf.convert_to_tensor(images, tf.float32))["embedding"].numpy()

    def embed_image_bytes(self, encoded) -> np.ndarray:
        return self.module.signatures["embed_image_bytes"](
            images=tf.convert_to_tensor(encoded, tf.string))["embedding"].numpy()

    def embed_examples(self, serialized) -> np.ndarray:
        return self.module.signatures["serving_default"](
            examples=tf.convert_to_tensor(serialized, tf.string))["embedding"].numpy()


def load_embedder(model_dir: str) -> Embedder:
    return Embedder(model_dir)


def base_model_spec(model_dir: str, expect_size: Optional[Tuple[int, int]] = None
                    ) -> models.BackboneSpec:
    """The backbone spec of an exported model; the one check of a base model's input
    size: expect_size=(H, W) must match it (InputError naming the model otherwise)."""
    info = models.read_spec(os.path.join(resolve_model_dir(model_dir), KERAS_DIR))
    spec = models.BackboneSpec.from_json(info["spec"])
    if expect_size is not None and tuple(expect_size) != (spec.height, spec.width):
        raise InputError(
            f"base model {model_dir} takes {spec.height}x{spec.width} images but "
            f"{expect_size[0]}x{expect_size[1]} were asked for (height/width); drop them, "
            "or pretrain a model of that size")
    return spec


def load_base_model(model_dir: str, expect_size: Optional[Tuple[int, int]] = None):
    """(spec, backbone, verification head or None) of an exported model, for training."""
    base_model_spec(model_dir, expect_size)
    return models.load_keras(os.path.join(resolve_model_dir(model_dir), KERAS_DIR))
