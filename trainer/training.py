"""Pieces common to both trainers: schedule, progress logging, fit loop, summary."""
from __future__ import annotations

import json
import math
import os
import time
from typing import Dict, List, Optional, Tuple

from trainer import runtime
from trainer.config import TrainConfig
import tensorflow as tf


class WarmupCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = lr0 · t/w for t < w, then lr0 · ½(1 + cos(π (t − w)/(T − w)))."""

    def __init__(self, lr: float, total: int, warmup: int):
        self.lr, self.total, self.warmup = float(lr), max(1, int(total)), max(0, int(warmup))

    def __call__(self, step):
        t = tf.cast(step, tf.float32)
        warm = self.lr * (t + 1.0) / max(1, self.warmup)
        progress = (t - self.warmup) / max(1, self.total - self.warmup)
        cos = 0.5 * self.lr * (1.0 + tf.cos(math.pi * tf.clip_by_value(progress, 0.0, 1.0)))
        return tf.where(t < self.warmup, warm, cos)

    def get_config(self):
        return {"lr": self.lr, "total": self.total, "warmup": self.warmup}


def optimizer(config: TrainConfig) -> tf.keras.optimizers.Optimizer:
    schedule = WarmupCosine(config.learning_rate, config.steps,
                            int(config.warmup_fraction * config.steps))
    return tf.keras.optimizers.Adam(schedule)


class Progress(tf.keras.callbacks.Callback):
    """One stderr line per epoch of `epoch_steps` steps: losses and images/s."""

    def __init__(self, what: str, images_per_step: int, total_steps: int):
        super().__init__()
        self.what, self.images_per_step, self.total = what, images_per_step, total_steps
        self.history: List[Dict[str, float]] = []
        self.step = 0

    def on_train_begin(self, logs=None):
        self.start = self.t0 = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.time()

    def on_epoch_end(self, epoch, logs=None):
        steps = self.params.get("steps") or 0
        self.step += steps
        dt = time.time() - self.t0
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs.update(step=self.step, images_per_s=steps * self.images_per_step / max(dt, 1e-9))
        self.history.append(logs)
        shown = " ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "step")
        runtime.log(f"{self.what} step {self.step}/{self.total} {shown}")


def epoch_plan(config: TrainConfig) -> Tuple[int, int]:
    """(steps per epoch, epochs): config.steps rounded up to whole epochs of
    config.epoch_steps, the number of steps `fit` runs and its data must provide."""
    per_epoch = max(1, min(config.epoch_steps, config.steps))
    return per_epoch, math.ceil(config.steps / per_epoch)


def fit(model: tf.keras.Model, dataset: tf.data.Dataset, config: TrainConfig,
        run_dir: Optional[str], what: str, images_per_step: int) -> Dict:
    """model.fit for config.steps steps in epochs of config.epoch_steps; TensorBoard logs
    under run_dir. Returns a summary (steps, minutes, images/s, last losses)."""
    per_epoch, epochs = epoch_plan(config)
    progress = Progress(what, images_per_step, epochs * per_epoch)
    callbacks: List[tf.keras.callbacks.Callback] = [progress]
    if run_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(
            log_dir=os.path.join(run_dir, what), update_freq="epoch", profile_batch=0))
    start = time.time()
    model.fit(dataset, epochs=epochs, steps_per_epoch=per_epoch, verbose=0,
              callbacks=callbacks)
    minutes = (time.time() - start) / 60
    last = progress.history[-1] if progress.history else {}
    summary = {"what": what, "steps": epochs * per_epoch, "minutes": round(minutes, 3),
               "images_per_step": images_per_step,
               "images_per_s": round(epochs * per_epoch * images_per_step / max(minutes * 60, 1e-9), 2),
               "final": last, "config": config.to_dict()}
    if run_dir:
        tf.io.gfile.makedirs(run_dir)
        with tf.io.gfile.GFile(os.path.join(run_dir, f"{what}_summary.json"), "w") as f:
            json.dump(summary, f, indent=2, default=str)
    return summary
