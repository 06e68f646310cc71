"""RankNet transfer on the unlabeled target (TFusion step 5, "learning to rank").

For a triple (a, i, j) with target P̄_ij (trainer/triplets.py), one shared backbone
embeds a, i and j and a pair score s rates (a, i) and (a, j):
    P_ij = sigmoid(s_ai − s_aj)                             (RankNet)
    L = −P̄_ij log P_ij − (1 − P̄_ij) log(1 − P_ij)           (cross entropy)
Two pair scores (RankNetConfig.score):
    cosine         s = γ · ê_a·ê_i, γ = exp(ρ) learned          (default)
    verification   s = sigmoid(w · (ê_a − ê_i)² + c)            (the paper's head)
The paper's score lies in (0, 1), so P_ij stays inside (0.27, 0.73): it can never
express a confident order, its gradient is small, and it ranks by a weighted distance
that the evaluation (cosine of the embeddings) never sees. The scaled cosine is
unbounded, is the very similarity the evaluation and the next round's ST model use, and
so shapes the embedding itself. The first `freeze_fraction` of the backbone is frozen.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from core.errors import InputError
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


SCORES = ("cosine", "verification")


class ScaledCosine(tf.keras.layers.Layer):
    """s(a, b) = γ · ê_a·ê_b with γ = exp(ρ) learned (module docstring, 'cosine')."""

    def __init__(self, scale: float = 10.0, **kwargs):
        super().__init__(name="scaled_cosine", dtype="float32", **kwargs)
        self.initial_scale = float(scale)

    def build(self, input_shape):
        self.log_scale = self.add_weight(
            "log_scale", shape=(), dtype=tf.float32,
            initializer=tf.keras.initializers.Constant(np.log(self.initial_scale)))

    def call(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        cosine = tf.reduce_sum(models.l2_normalize(a) * models.l2_normalize(b), axis=-1)
        return tf.exp(self.log_scale) * cosine


class VerificationScore(tf.keras.layers.Layer):
    """s(a, b) = verification head on (ê_a − ê_b)² (module docstring, 'verification')."""

    def __init__(self, head: tf.keras.Model, **kwargs):
        super().__init__(name="verification_score", dtype="float32", **kwargs)
        self.head = head

    def call(self, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        return models.pair_score(self.head, a, b)


def pair_scorer(config: RankNetConfig, head: tf.keras.Model) -> tf.keras.layers.Layer:
    """The pair score RankNetConfig.score names."""
    if config.score == "verification":
        return VerificationScore(head)
    return ScaledCosine(config.score_scale)


class RankNetModel(tf.keras.Model):
    """Shared backbone + pair score over images [B, 3, H, W, 3] = (a, i, j)."""

    def __init__(self, backbone: tf.keras.Model, scorer: tf.keras.layers.Layer):
        super().__init__(name="ranknet")
        self.backbone = backbone
        self.scorer = scorer
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
        return self.scorer(a, i), self.scorer(a, j)

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
        agree, weight = order_agreement(s_ai, s_aj, target)
        self.order_tracker.update_state(agree, sample_weight=weight)
        return {"loss": self.loss_tracker.result(),
                "order_accuracy": self.order_tracker.result()}


def order_agreement(s_ai, s_aj, target) -> Tuple[tf.Tensor, tf.Tensor]:
    """(1 where the scores order i, j as the target does, else 0; weight): the
    no-information target ½ has no order and gets weight 0."""
    target = tf.cast(target, tf.float32)
    agree = tf.cast(tf.equal(s_ai > s_aj, target > 0.5), tf.float32)
    return agree, tf.cast(tf.not_equal(target, 0.5), tf.float32)


def embed_images(backbone: tf.keras.Model, images: np.ndarray, spec,
                 batch: int = 128) -> np.ndarray:
    """L2-normalised embeddings [N, D] of encoded images (no augmentation)."""
    load = data.image_loader(images, spec.height, spec.width)
    ds = data.indexed_dataset(np.arange(len(images)), load).batch(batch)
    return np.concatenate([models.l2_normalize(backbone(x, training=False)).numpy()
                           for (x,) in ds])


def held_out_order_accuracy(features: np.ndarray, rows: np.ndarray,
                            target: np.ndarray) -> float:
    """Share of triples (a, i, j) whose embedding cosine orders i and j as the target
    does (target ≠ ½ only): the order the evaluation and the next ST model see.
    `features` [N, D] are the embeddings of the images `rows` index."""
    f = np.asarray(features, np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    rows = np.asarray(rows, np.int64)
    keep = np.asarray(target) != 0.5
    if not keep.any():
        return float("nan")
    a, i, j = (f[rows[keep, c]] for c in range(3))
    return float(np.mean(((a * i).sum(1) > (a * j).sum(1)) == (np.asarray(target)[keep] > 0.5)))


def transfer(train_files: Sequence[str], ranking_uri: str, base_model: str,
             config: RankNetConfig, export_dir: Optional[str] = None,
             run_dir: Optional[str] = None) -> Dict:
    """Fine-tune `base_model` on the target train split with RankNet; export if asked.
    holdout_fraction of the anchors are kept out of training and measure the order
    accuracy of the trained model."""
    check_base_model_size(base_model, config)
    ranking = triplets.read_fused_ranking(ranking_uri)
    table = data.read_split(train_files)
    where = f"examples {train_files[0]}"
    held = triplets.held_out_anchors(ranking.names, config.holdout_fraction, config.seed)
    trip = triplets.sample_for_config(ranking, table, config, where, exclude=held)
    held_trip = triplets.sample_held_out(ranking, held, table, config, where)
    runtime.log(f"ranknet: {len(ranking) - len(held)} ranked anchors, {len(trip)} triples, "
                f"τ={trip.temperature:.4g}, mean target {trip.target.mean():.3f}; "
                f"{len(held)} anchors held out")
    held_out = None if held_trip is None else triplets.TripletTable(
        table.images, list(table.name), held_trip.rows(), held_trip.target)
    return train_ranknet(table.images, trip.rows(), trip.target, base_model, config,
                         export_dir, run_dir,
                         summary={"triplets": len(trip), "temperature": trip.temperature,
                                  "skipped": trip.skipped},
                         extra={"fused_ranking": ranking_uri}, held_out=held_out)


def transfer_from_triplets(triplet_files: Sequence[str], base_model: str,
                           config: RankNetConfig, export_dir: Optional[str] = None,
                           run_dir: Optional[str] = None,
                           held_out_files: Sequence[str] = ()) -> Dict:
    """RankNet on a triplets Examples artifact (trainer/triplets.py, written by the
    pipeline's TripletGen from a fused ranking): the TFX path, where the ranking reaches
    the Trainer as an artifact with lineage rather than as a URI. `held_out_files`:
    its eval split, the triples of anchors kept out of training."""
    check_base_model_size(base_model, config)
    table = triplets.read_triplet_examples(triplet_files)
    runtime.log(f"ranknet: {len(table.target)} triples over {len(table.images)} images "
                f"from {triplet_files[0]}, mean target {table.target.mean():.3f}")
    held_out = triplets.read_triplet_examples(held_out_files, allow_empty=True)
    return train_ranknet(table.images, table.rows, table.target, base_model, config,
                         export_dir, run_dir, summary={"triplets": len(table.target)},
                         extra={"triplets": os.path.dirname(triplet_files[0])},
                         held_out=held_out if len(held_out.target) else None)


def check_base_model_size(base_model: str, config: RankNetConfig) -> None:
    """An explicit height/width must be the base model's input size."""
    asked = (config.height, config.width) if config.height or config.width else None
    export.base_model_spec(base_model, asked)  # raises on a size mismatch


def train_ranknet(images: np.ndarray, rows: np.ndarray, target: np.ndarray,
                  base_model: str, config: RankNetConfig,
                  export_dir: Optional[str] = None, run_dir: Optional[str] = None,
                  summary: Optional[Dict] = None, extra: Optional[Dict] = None,
                  held_out: Optional[triplets.TripletTable] = None) -> Dict:
    """Fit RankNet on triples `rows` [N, 3] (a, i, j indices into `images`, encoded
    bytes) with targets P̄_ij; the data cycles when the steps need more than N triples.
    With `held_out` triples (anchors never trained on), the trained embedding's order
    accuracy on them is logged, returned and recorded with the exported model."""
    runtime.seed_everything(config.seed, config.deterministic)
    covered = triplets.steps_to_cover(config, len(rows))
    if covered.steps != config.steps:
        runtime.log(f"ranknet: {covered.steps} steps instead of {config.steps}, to train "
                    f"on each of the {len(rows)} triples (triples_per_anchor)")
    config = covered
    need = triplets.run_triplets(config)
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
        model = RankNetModel(backbone, pair_scorer(config, head))
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
    extra = dict(extra or {})
    if held_out is not None:
        used, rows = np.unique(held_out.rows, return_inverse=True)
        accuracy = held_out_order_accuracy(embed_images(backbone, held_out.images[used], spec),
                                           rows.reshape(-1, 3), held_out.target)
        runtime.log(f"ranknet: order accuracy {accuracy:.3f} on {len(held_out.rows)} "
                    "triples of held-out anchors (never trained on)")
        extra.update(held_out_order_accuracy=accuracy,
                     held_out_triplets=int(len(held_out.rows)))
        result.update(extra)
    if export_dir:
        export.export_model(export_dir, spec, backbone, head,
                            extra={"trained_by": "ranknet", "base_model": base_model,
                                   **extra})
    result.update(backbone=backbone, head=head, spec=spec)
    return result


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (module file trainer/module/ranknet_module.py).

    In the pipeline: fn_args.train_files = a triplets Examples artifact (TripletGen:
    image bytes of a, i, j and the target P̄_ij), fn_args.eval_files = its held-out
    triples, base model = fn_args.base_model.
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
        held = data.expand_patterns(fn_args.eval_files or [], "ranknet held-out triples "
                                    "(eval_files)") if fn_args.eval_files else []
        transfer_from_triplets(files, base_model, config,
                               export_dir=fn_args.serving_model_dir,
                               run_dir=fn_args.model_run_dir, held_out_files=held)
