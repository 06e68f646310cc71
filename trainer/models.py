"""Backbones and heads: a small ResNet for CPU, ResNet-50 for GPU.

Every backbone maps float32 pixels in [0, 255], shape [H, W, 3], to its globally
average-pooled features (the embedding). Embeddings are L2-normalised by
`l2_normalize` wherever they are compared (verification, RankNet) and at export.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

from core.errors import InputError
from trainer import runtime  # noqa: F401  (autograph set-up before any Keras code)
import tensorflow as tf

keras = tf.keras
layers = tf.keras.layers

BACKBONES = ("small", "resnet50")
DEFAULT_SIZE = {"small": (128, 64), "resnet50": (256, 128)}
BN_MOMENTUM = 0.9  # short runs: moving statistics must follow the weights quickly


@dataclass
class BackboneSpec:
    """What is needed to rebuild a backbone from code (saved as JSON with a model)."""
    name: str = "small"
    height: int = 0
    width: int = 0
    base_width: int = 32  # small ResNet only: channels of the first stage
    blocks: Tuple[int, ...] = (2, 2, 2, 2)  # small ResNet only: ResNet-18 layout

    def __post_init__(self) -> None:
        if self.name not in BACKBONES:
            raise InputError(f"unknown backbone {self.name!r}; choose from {BACKBONES}")
        h, w = DEFAULT_SIZE[self.name]
        self.height = int(self.height or h)
        self.width = int(self.width or w)
        self.blocks = tuple(int(b) for b in self.blocks)

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return (self.height, self.width, 3)

    def to_json(self) -> dict:
        d = asdict(self)
        d["blocks"] = list(self.blocks)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "BackboneSpec":
        return cls(**{k: (tuple(v) if k == "blocks" else v) for k, v in d.items()})


def l2_normalize(x: tf.Tensor) -> tf.Tensor:
    """ê = e / ||e||_2 (the embedding compared by cosine similarity)."""
    return tf.math.l2_normalize(tf.cast(x, tf.float32), axis=-1, epsilon=1e-12)


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, relu: bool = True):
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _basic_block(x, filters: int, stride: int, name: str):
    shortcut = x
    y = _conv_bn(x, filters, 3, stride, f"{name}_a")
    y = _conv_bn(y, filters, 3, 1, f"{name}_b", relu=False)
    if stride != 1:  # ResNet-D shortcut: average-pool, then a stride-1 projection
        shortcut = layers.AveragePooling2D(stride, padding="same", name=f"{name}_pool")(x)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(shortcut, filters, 1, 1, f"{name}_proj", relu=False)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def small_resnet(spec: BackboneSpec) -> keras.Model:
    """ResNet-18 layout at half width with a single stride-2 3x3 stem (no max-pool) and
    ResNet-D (average-pool) downsampling shortcuts.

    128x64 input -> 8x4x(8*base_width) feature map -> global average pooling.
    """
    inputs = keras.Input(spec.input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
    x = _conv_bn(x, spec.base_width, 3, 2, "stem")
    for stage, n in enumerate(spec.blocks):
        filters = spec.base_width * 2 ** stage
        for b in range(n):
            stride = 2 if (b == 0 and stage > 0) else 1
            x = _basic_block(x, filters, stride, f"stage{stage + 1}_block{b + 1}")
    x = layers.GlobalAveragePooling2D(dtype="float32", name="embedding")(x)
    return keras.Model(inputs, x, name="backbone")


def resnet50(spec: BackboneSpec, weights: Optional[str] = None) -> keras.Model:
    """keras.applications.ResNet50 without top; `weights` is a local no-top file or None.

    Nothing is ever downloaded: 'imagenet' is refused, pass the file path instead.
    """
    if weights is not None and not os.path.isfile(weights):
        raise FileNotFoundError(f"ResNet-50 weights file not found: {weights} "
                                "(give a local *_notop.h5 file; nothing is downloaded)")
    inputs = keras.Input(spec.input_shape, name="image")
    x = layers.Lambda(keras.applications.resnet.preprocess_input, name="scale")(inputs)
    base = keras.applications.ResNet50(include_top=False, weights=weights,
                                       input_shape=spec.input_shape)
    x = base(x)
    x = layers.GlobalAveragePooling2D(dtype="float32", name="embedding")(x)
    return keras.Model(inputs, x, name="backbone")


def build_backbone(spec: BackboneSpec, weights: Optional[str] = None) -> keras.Model:
    """The backbone named by `spec`; `weights` optionally loads a local weights file."""
    if spec.name == "resnet50":
        return resnet50(spec, weights)
    model = small_resnet(spec)
    if weights is not None:
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"backbone weights file not found: {weights}")
        model.load_weights(weights)
    return model


def verification_head(name: str = "verification") -> layers.Layer:
    """s(a, b) = sigmoid(w · (ê_a − ê_b)² + c): probability that a and b are one person.

    TFusion's pair-verification head; the RankNet scores use the same layer.
    """
    return layers.Dense(1, activation="sigmoid", dtype="float32", name=name,
                        kernel_initializer=keras.initializers.Constant(-1.0),
                        bias_initializer=keras.initializers.Constant(1.0))


def pair_score(head: layers.Layer, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """s = head((ê_a − ê_b)²), shape [batch]."""
    return tf.squeeze(head(tf.square(l2_normalize(a) - l2_normalize(b))), axis=-1)


def build_head_model(embedding_dim: int, name: str = "verification") -> keras.Model:
    """The verification head wrapped as a model (so its weights save on their own)."""
    inputs = keras.Input((embedding_dim,), name="squared_difference")
    return keras.Model(inputs, verification_head(name)(inputs), name=f"{name}_head")


def freeze_front(backbone: keras.Model, fraction: float) -> int:
    """Freeze the first `fraction` of the backbone's weighted layers (in graph order).

    Returns the number of frozen layers. Frozen BatchNorm layers also run in inference
    mode (tf.keras 2 semantics of trainable=False).
    """
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"freeze fraction must be in [0, 1], got {fraction}")
    weighted = [l for l in _flat_layers(backbone) if l.weights]
    n = int(round(fraction * len(weighted)))
    for i, layer in enumerate(weighted):
        layer.trainable = i >= n
    return n


def _flat_layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat_layers(layer)
        else:
            yield layer


SPEC_FILE = "backbone.json"
BACKBONE_WEIGHTS = "backbone.weights.h5"
HEAD_WEIGHTS = "verification.weights.h5"


def save_keras(directory: str, spec: BackboneSpec, backbone: keras.Model,
               head: Optional[keras.Model] = None, extra: Optional[dict] = None) -> None:
    """Write spec JSON + weights so the model can be rebuilt from code (base model)."""
    tf.io.gfile.makedirs(directory)
    info = {"spec": spec.to_json(), "embedding_dim": int(backbone.output_shape[-1]),
            "has_verification_head": head is not None, **(extra or {})}
    with tf.io.gfile.GFile(os.path.join(directory, SPEC_FILE), "w") as f:
        json.dump(info, f, indent=2)
    _save_weights(backbone, os.path.join(directory, BACKBONE_WEIGHTS))
    if head is not None:
        _save_weights(head, os.path.join(directory, HEAD_WEIGHTS))


@contextlib.contextmanager
def _local_file(path: str, upload: bool):
    """A local path for an h5 file at `path` (h5 needs one): `path` itself when local,
    else a temporary copy — downloaded first, or uploaded afterwards when `upload`."""
    if "://" not in path:
        yield path
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        if not upload:
            tf.io.gfile.copy(path, local)
        yield local
        if upload:
            tf.io.gfile.copy(local, path, overwrite=True)


def _save_weights(model: keras.Model, path: str) -> None:
    with _local_file(path, upload=True) as local:
        model.save_weights(local)


def _load_weights(model: keras.Model, path: str) -> None:
    with _local_file(path, upload=False) as local:
        model.load_weights(local)


def read_spec(directory: str) -> dict:
    path = os.path.join(directory, SPEC_FILE)
    model_dir = os.path.dirname(directory.rstrip("/"))
    if not tf.io.gfile.exists(path):
        raise InputError(
            f"{model_dir}: not a TFusion model ({path} missing; "
            "expected the output of `tfusion pretrain` / `tfusion transfer` or their Trainer)")
    try:
        with tf.io.gfile.GFile(path) as f:
            info = json.load(f)
        BackboneSpec.from_json(info["spec"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a TFusion model spec ({type(e).__name__}: {e})") from None
    return info


def load_keras(directory: str) -> Tuple[BackboneSpec, keras.Model, Optional[keras.Model]]:
    """Rebuild (spec, backbone, verification head or None) from `save_keras` output."""
    info = read_spec(directory)
    spec = BackboneSpec.from_json(info["spec"])
    backbone = build_backbone(spec)
    _load_weights(backbone, os.path.join(directory, BACKBONE_WEIGHTS))
    head = None
    if info.get("has_verification_head"):
        head = build_head_model(info["embedding_dim"])
        _load_weights(head, os.path.join(directory, HEAD_WEIGHTS))
    return spec, backbone, head
