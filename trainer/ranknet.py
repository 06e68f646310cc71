"""RankNet transfer on the unlabeled target (TFusion step 5, "learning to rank").

For a triple (a, i, j) with target P̄_ij (trainer/triplets.py):
    s_ai = sigmoid(w · (ê_a − ê_i)² + c),  s_aj likewise    (shared head; initialised
                                                            from the verification head)
    P_ij = sigmoid(s_ai − s_aj)                             (RankNet)
    L = −P̄_ij log P_ij − (1 − P̄_ij) log(1 − P_ij)           (cross entropy)
with one shared backbone for a, i and j; the first two thirds of the backbone are frozen
by default (RankNetConfig.freeze_fraction).
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from st_model.errors import InputError
from trainer import data, export, models, runtime, training, triplets
from trainer.config import RankNetConfig
import tensorflow as tf


def ranknet_probability(s_ai: tf.Tensor, s_aj: tf.Tensor) -> tf.Tensor:
    """P_ij = sigmoid(s_ai − s_aj)."""
    return tf.sigmoid(tf.cast(s_ai, tf.float32) - tf.cast(s_aj, tf.float32))


def ranknet_loss(target: tf.Tensor, s_ai: tf.Tensor, s_aj: tf.Tensor) -> tf.Tensor:
    """Mean cross entropy between P̄_ij and P_ij = sigmoid(s_ai − s_aj) (computed from the
    logit s_ai − s_aj for numerical stability)."""
    logit = tf.cast(s_ai, tf.float32) - tf.cast(s_aj, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.cast(target, tf.float32), logits=logit))


class RankNetModel(tf.keras.Model):
    """Shared backbone + pair-score head over images [B, 3, H, W, 3] = (a, i, j)."""

    def __init__(self, backbone: tf.keras.Model, head: tf.keras.Model):
        super().__init__(name="ranknet")
        self.backbone = backbone
        self.head = head
        self.loss_tracker = tf.keras.metrics.Mean("loss")
        self.order_tracker = tf.keras.metrics.Mean("order_accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.order_tracker]

    def scores(self, triples: tf.Tensor, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
        shape = tf.shape(triples)
        flat = tf.reshape(triples, tf.concat([[shape[0] * 3], shape[2:]], 0))
        feats = self.backbone(flat, training=training)
        feats = tf.reshape(feats, [shape[0], 3, -1])
        a, i, j = feats[:, 0], feats[:, 1], feats[:, 2]
        return models.pair_score(self.head, a, i), models.pair_score(self.head, a, j)

    def call(self, triples, training=False):
        return ranknet_probability(*self.scores(triples, training))

    def train_step(self, batch):
        triples, target = batch
        with tf.GradientTape() as tape:
            s_ai, s_aj = self.scores(triples, training=True)
            loss = ranknet_loss(target, s_ai, s_aj)
            scaled = loss / self.distribute_strategy.num_replicas_in_sync  # summed over replicas
        self.optimizer.minimize(scaled, self.trainable_variables, tape=tape)
        self.loss_tracker.update_state(loss)
        self.order_tracker.update_state(tf.cast(
            tf.equal(s_ai > s_aj, target > 0.5), tf.float32))
        return {"loss": self.loss_tracker.result(),
                "order_accuracy": self.order_tracker.result()}


def transfer(train_files: Sequence[str], ranking_uri: str, base_model: str,
             config: RankNetConfig, export_dir: Optional[str] = None,
             run_dir: Optional[str] = None) -> Dict:
    """Fine-tune `base_model` on the target train split with RankNet; export if asked."""
    check_base_model_size(base_model, config)
    ranking = triplets.read_fused_ranking(ranking_uri)
    table = data.read_split(train_files)
    trip = triplets.sample_for_config(ranking, table, config, f"examples {train_files[0]}")
    runtime.log(f"ranknet: {len(ranking)} ranked anchors, {len(trip)} triples, "
                f"τ={trip.temperature:.4g}, mean target {trip.target.mean():.3f}")
    return train_ranknet(table.images, trip.rows(), trip.target, base_model, config,
                         export_dir, run_dir,
                         summary={"triplets": len(trip), "temperature": trip.temperature,
                                  "skipped": trip.skipped},
                         extra={"fused_ranking": ranking_uri})


def transfer_from_triplets(triplet_files: Sequence[str], base_model: str,
                           config: RankNetConfig, export_dir: Optional[str] = None,
                           run_dir: Optional[str] = None) -> Dict:
    """RankNet on a triplets Examples artifact (trainer/triplets.py, written by the
    pipeline's TripletGen from a fused ranking): the TFX path, where the ranking reaches
    the Trainer as an artifact with lineage rather than as a URI."""
    check_base_model_size(base_model, config)
    table = triplets.read_triplet_examples(triplet_files)
    runtime.log(f"ranknet: {len(table.target)} triples over {len(table.images)} images "
                f"from {triplet_files[0]}, mean target {table.target.mean():.3f}")
    return train_ranknet(table.images, table.rows, table.target, base_model, config,
                         export_dir, run_dir, summary={"triplets": len(table.target)},
                         extra={"triplets": os.path.dirname(triplet_files[0])})


def check_base_model_size(base_model: str, config: RankNetConfig) -> None:
    """An explicit height/width must be the base model's input size."""
    asked = (config.height, config.width) if config.height or config.width else None
    export.base_model_spec(base_model, asked)  # raises on a size mismatch


def train_ranknet(images: np.ndarray, rows: np.ndarray, target: np.ndarray,
                  base_model: str, config: RankNetConfig,
                  export_dir: Optional[str] = None, run_dir: Optional[str] = None,
                  summary: Optional[Dict] = None, extra: Optional[Dict] = None) -> Dict:
    """Fit RankNet on triples `rows` [N, 3] (a, i, j indices into `images`, encoded
    bytes) with targets P̄_ij; the data cycles when the steps need more than N triples."""
    runtime.seed_everything(config.seed, config.deterministic)
    per_epoch, epochs = training.epoch_plan(config)
    need = epochs * per_epoch * config.batch_triplets
    reps = -(-need // len(rows))
    rows, target = np.tile(rows, (reps, 1))[:need], np.tile(target, reps)[:need]
    acc = runtime.accelerators(config.mixed_precision, config.xla, config.multi_gpu)
    runtime.log(f"ranknet: {acc.describe()}")
    with acc.strategy.scope():
        spec, backbone, head = export.load_base_model(base_model)
        if head is None:
            runtime.log(f"ranknet: base model {base_model} has no verification head; "
                        "the RankNet head starts from its default initialisation")
            head = models.build_head_model(int(backbone.output_shape[-1]))
        frozen = models.freeze_front(backbone, config.freeze_fraction)
        runtime.log(f"ranknet: froze the first {frozen} weighted layers of the backbone")
        model = RankNetModel(backbone, head)
        model.compile(optimizer=training.optimizer(config), jit_compile=acc.xla)
    aug = data.Augmentation(config.flip, config.crop_padding, config.erasing)
    load = data.image_loader(images, spec.height, spec.width, aug, config.seed)
    ds = data.indexed_dataset(rows, load, (target,), batch=config.batch_triplets)
    result = training.fit(model, ds, config, run_dir, "ranknet", 3 * config.batch_triplets)
    runtime.reset_precision()
    for layer in models._flat_layers(backbone):
        layer.trainable = True
    result.update(summary or {})
    result.update(frozen_layers=frozen, accelerators=acc.describe())
    if export_dir:
        export.export_model(export_dir, spec, backbone, head,
                            extra={"trained_by": "ranknet", "base_model": base_model,
                                   **(extra or {})})
    result.update(backbone=backbone, head=head, spec=spec)
    return result


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (module file trainer/module/ranknet_module.py).

    In the pipeline: fn_args.train_files = a triplets Examples artifact (TripletGen:
    image bytes of a, i, j and the target P̄_ij), base model = fn_args.base_model.
    Standalone use keeps the older form: train_files = the target train split and
    custom_config['fused_ranking_uri'] (and optionally 'base_model_uri').
    Other custom_config keys: RankNetConfig fields. Exports to serving_model_dir;
    TensorBoard logs under model_run_dir.
    """
    values = dict(fn_args.custom_config or {})
    ranking_uri = values.get("fused_ranking_uri")
    base_model = fn_args.base_model or values.get("base_model_uri")
    if not base_model:
        raise InputError("ranknet Trainer: no base model (connect base_model or set "
                         "custom_config['base_model_uri'])")
    if fn_args.train_steps:
        values["steps"] = int(fn_args.train_steps)
    config = RankNetConfig.from_dict(values)
    files = data.expand_patterns(fn_args.train_files, "ranknet examples (train_files)")
    if ranking_uri:
        transfer(files, ranking_uri, base_model, config, export_dir=fn_args.serving_model_dir,
                 run_dir=fn_args.model_run_dir)
    else:
        transfer_from_triplets(files, base_model, config,
                               export_dir=fn_args.serving_model_dir,
                               run_dir=fn_args.model_run_dir)
