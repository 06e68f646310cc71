"""Source pretraining: identity classification with an optional pair-verification head.

Loss per P×K batch (P identities, K images each):
    L = CE_ε(y, softmax(W · BN(e)))                       identity loss, label smoothing ε
      + λ · [BCE(1, s(a, a⁺)) + BCE(0, s(a, a⁻))]         optional verification (TFusion's
                                                           pair training), s = verification
                                                           head over (ê_a − ê_b)²
where a⁺ is the next image of the same identity in the batch and a⁻ the image at the
same position of the next identity. Junk (pid −1) and distractor (pid 0) images are
not trained on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from trainer import data, export, models, runtime, training
from trainer.config import PretrainConfig
import tensorflow as tf


class IdentityModel(tf.keras.Model):
    """Backbone + BN-neck identity classifier (+ verification head); custom train_step."""

    def __init__(self, backbone: tf.keras.Model, num_classes: int, config: PretrainConfig):
        super().__init__(name="pretrain")
        self.backbone = backbone
        self.neck = tf.keras.layers.BatchNormalization(momentum=models.BN_MOMENTUM, name="neck")
        self.classifier = tf.keras.layers.Dense(num_classes, use_bias=False, dtype="float32",
                                                name="identity")
        dim = int(backbone.output_shape[-1])
        self.head = models.build_head_model(dim) if config.verification else None
        self.num_classes = num_classes
        self.cfg = config
        self.trackers = {n: tf.keras.metrics.Mean(n) for n in
                         ["loss", "id_loss", "accuracy"] +
                         (["ver_loss", "ver_accuracy"] if self.head is not None else [])}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, images, training=False):
        return self.classifier(self.neck(self.backbone(images, training=training),
                                         training=training))

    def losses_for(self, images, labels, training: bool) -> Dict[str, tf.Tensor]:
        feats = self.backbone(images, training=training)
        logits = self.classifier(self.neck(feats, training=training))
        onehot = tf.one_hot(labels, self.num_classes)
        id_loss = tf.reduce_mean(tf.keras.losses.categorical_crossentropy(
            onehot, logits, from_logits=True, label_smoothing=self.cfg.label_smoothing))
        out = {"id_loss": id_loss, "loss": id_loss,
               "accuracy": tf.reduce_mean(tf.cast(
                   tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                            tf.cast(labels, tf.int32)), tf.float32))}
        if self.head is not None:
            pos, neg = pair_partners(tf.shape(feats)[0], self.cfg.k)
            s_pos = models.pair_score(self.head, feats, tf.gather(feats, pos))
            s_neg = models.pair_score(self.head, feats, tf.gather(feats, neg))
            bce = tf.keras.losses.binary_crossentropy
            ver = tf.reduce_mean(bce(tf.ones_like(s_pos)[:, None], s_pos[:, None]) +
                                 bce(tf.zeros_like(s_neg)[:, None], s_neg[:, None]))
            out["ver_loss"] = ver
            out["ver_accuracy"] = 0.5 * tf.reduce_mean(
                tf.cast(s_pos > 0.5, tf.float32) + tf.cast(s_neg < 0.5, tf.float32))
            out["loss"] = id_loss + self.cfg.verification_weight * ver
        return out

    def train_step(self, batch):
        images, labels = batch
        with tf.GradientTape() as tape:
            out = self.losses_for(images, labels, training=True)
            # per-replica mean; gradients are summed over replicas
            scaled = out["loss"] / self.distribute_strategy.num_replicas_in_sync
        self.optimizer.minimize(scaled, self.trainable_variables, tape=tape)
        for k, v in out.items():
            self.trackers[k].update_state(v)
        return {k: t.result() for k, t in self.trackers.items()}


def pair_partners(batch: tf.Tensor, k: int):
    """In a P×K batch: index of a same-identity partner and of a different-identity one."""
    n = tf.range(batch)
    group, pos_in_group = n // k, n % k
    positive = group * k + (pos_in_group + 1) % k
    negative = (n + k) % batch
    return positive, negative


@dataclass
class LabelMap:
    """pid → class index over the trainable identities (pid > 0) of a split."""
    pids: np.ndarray

    @classmethod
    def from_pids(cls, pid: np.ndarray) -> "LabelMap":
        return cls(np.unique(pid[pid > 0]))

    def labels(self, pid: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.pids, pid).astype(np.int64)


def pretrain(train_files: Sequence[str], config: PretrainConfig,
             export_dir: Optional[str] = None, run_dir: Optional[str] = None,
             init_model: Optional[str] = None) -> Dict:
    """Train a backbone with identity labels on `train_files`; export it if asked.

    Returns the training summary with the trained `backbone`, `head` and `spec`.
    """
    table = data.read_split(train_files)
    keep = np.flatnonzero(table.pid > 0)
    if len(keep) == 0:
        raise data.ExamplesError(f"examples {list(train_files)[:3]}: no image with pid > 0 "
                                 "to pretrain on (pretraining needs a labelled source)")
    label_map = LabelMap.from_pids(table.pid[keep])
    labels = label_map.labels(table.pid)
    skipped = len(table) - len(keep)
    runtime.log(f"pretrain: {len(keep)} images of {len(label_map.pids)} identities"
                + (f" ({skipped} junk/distractor images skipped)" if skipped else ""))
    acc = runtime.accelerators(config.mixed_precision, config.xla, config.multi_gpu)
    runtime.log(f"pretrain: {acc.describe()}")
    spec = models.BackboneSpec(config.backbone, config.height, config.width, config.base_width)
    p = min(config.p, len(label_map.pids))
    per_epoch, epochs = training.epoch_plan(config)
    steps = epochs * per_epoch
    rng = np.random.default_rng(config.seed)
    runtime.seed_everything(config.seed, config.deterministic)
    rows = keep[data.pk_batches(labels[keep], p, config.k, steps, rng)].reshape(-1)
    aug = data.Augmentation(config.flip, config.crop_padding, config.erasing)

    def dataset(spec: models.BackboneSpec):
        load = data.image_loader(table.images, spec.height, spec.width, aug, config.seed)
        return data.indexed_dataset(rows, load, (labels[rows],), batch=p * config.k)
    # with init_model the input size is the loaded model's, known only once loaded
    ds = None if init_model else dataset(spec)
    with acc.strategy.scope():
        if init_model:
            asked = (config.height, config.width) if config.height or config.width else None
            spec, backbone, _ = export.load_base_model(init_model, asked)
            ds = dataset(spec)
        else:
            backbone = models.build_backbone(spec, config.weights)
        model = IdentityModel(backbone, len(label_map.pids), config)
        model.compile(optimizer=training.optimizer(config), jit_compile=acc.xla)
    summary = training.fit(model, ds, config, run_dir, "pretrain", p * config.k)
    runtime.reset_precision()
    summary.update(identities=int(len(label_map.pids)), images=int(len(keep)),
                   accelerators=acc.describe())
    if export_dir:
        export.export_model(export_dir, spec, backbone, model.head,
                            extra={"trained_by": "pretrain",
                                   "identities": int(len(label_map.pids))})
    summary.update(backbone=backbone, head=model.head, spec=spec)
    return summary


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (module file trainer/module/pretrain_module.py).

    Reads fn_args.train_files (GZIP tf.Examples, reid_examples schema), trains for
    fn_args.train_steps (or custom_config['steps']), exports to serving_model_dir and
    writes TensorBoard logs under model_run_dir. custom_config: PretrainConfig fields.
    A fn_args.base_model, when given, initialises the backbone. fn_args.eval_files are
    not read: ranking evaluation belongs to the Evaluator / `tfusion fuse`.
    """
    values = dict(fn_args.custom_config or {})
    if fn_args.train_steps:
        values["steps"] = int(fn_args.train_steps)
    config = PretrainConfig.from_dict(values)
    files = data.expand_patterns(fn_args.train_files, "pretrain examples (train_files)")
    pretrain(files, config, export_dir=fn_args.serving_model_dir,
             run_dir=fn_args.model_run_dir, init_model=fn_args.base_model or None)
