"""TensorFlow run-time set-up shared by every trainer entry point.

`setup()` is idempotent and runs on import of any trainer module that builds models:
- autograph is told not to convert tf_keras' own code (under TF_USE_LEGACY_KERAS, TF
  2.16 would otherwise re-convert it and the first `fit` takes ~25 s instead of ~2 s);
- `accelerators()` picks mixed precision, XLA and the distribution strategy: each is on
  only when GPUs are visible or when asked for explicitly.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Union

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from core import progress  # noqa: E402
from core.errors import InputError  # noqa: E402

_DONE = False


def setup() -> None:
    """Exclude tf_keras from autograph conversion (once per process)."""
    global _DONE
    if _DONE:
        return
    from tensorflow.python.autograph.core import config as ag_config
    from tensorflow.python.autograph.core import config_lib
    rule = config_lib.DoNotConvert("tf_keras")
    ag_config.CONVERSION_RULES = (rule,) + tuple(ag_config.CONVERSION_RULES)
    _DONE = True


setup()


log = progress.log  # the one progress logger (stderr)


@dataclass
class Accelerators:
    strategy: tf.distribute.Strategy
    mixed_precision: bool
    xla: bool
    gpus: int

    def describe(self) -> str:
        return (f"gpus={self.gpus} replicas={self.strategy.num_replicas_in_sync} "
                f"mixed_precision={self.mixed_precision} xla={self.xla}")


def _switch(value: Union[str, bool, None], default: bool) -> bool:
    if value is None or value == "auto":
        return default
    if isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise InputError(f"expected auto/true/false, got {value!r}")
    return bool(value)


def accelerators(mixed_precision: Union[str, bool, None] = "auto",
                 xla: Union[str, bool, None] = False,
                 multi_gpu: Union[str, bool, None] = "auto") -> Accelerators:
    """Choose precision policy, XLA and strategy; 'auto' means on iff GPUs are visible.

    Mixed precision = float16 compute with float32 variables (Keras 'mixed_float16');
    MirroredStrategy is used when more than one GPU is visible (or multi_gpu=True).
    """
    gpus = len(tf.config.list_physical_devices("GPU"))
    mixed = _switch(mixed_precision, gpus > 0)
    use_xla = _switch(xla, False)
    mirrored = _switch(multi_gpu, gpus > 1)
    tf.keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    strategy: Optional[tf.distribute.Strategy]
    strategy = tf.distribute.MirroredStrategy() if mirrored else tf.distribute.get_strategy()
    return Accelerators(strategy=strategy, mixed_precision=mixed, xla=use_xla, gpus=gpus)


def seed_everything(seed: int, deterministic: Union[str, bool, None] = "auto") -> bool:
    """Seed Python, NumPy, TensorFlow and Keras from `seed`; with op determinism (auto:
    on iff no GPU is visible) the same seed gives the same weights on the same machine.
    Returns whether op determinism is on."""
    tf.keras.utils.set_random_seed(seed)
    on = _switch(deterministic, not tf.config.list_physical_devices("GPU"))
    if on:
        tf.config.experimental.enable_op_determinism()
    else:  # the switch is process-wide: undo an earlier run's
        from tensorflow.python.framework import config as tf_config
        tf_config.disable_op_determinism()
    log(f"seed {seed}, op determinism {'on' if on else 'off'}")
    return on


def reset_precision() -> None:
    """Back to float32 (after a mixed-precision run in the same process)."""
    tf.keras.mixed_precision.set_global_policy("float32")
