"""A small serving bundle for tests: a tiny exported backbone and an ST model
estimated on a simulated 3-camera, 2-sequence network with real transit structure."""
import os

import numpy as np

from core.features import FeatureSet, make_feature_set
from pipeline.component_io import settings_json
from st_model.config import FusionRule, STConfig
from st_model.estimate import estimate_st_model
from st_model.st_artifact import save_st_model

H, W = 32, 16
DIM = 64   # the small backbone's embedding size


def simulated_split(n_ids: int, seed: int, pid0: int = 1, span: int = 20000,
                    noise: float = 0.9) -> FeatureSet:
    """Each identity walks camera 1 -> 2 -> 3 (transits ~300 and ~800 frames), two
    shots a visit, on sequence 1 or 2; features = identity centre + noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, DIM))
    feats, cam, frame, seq, pid = [], [], [], [], []
    for i in range(n_ids):
        t = int(rng.integers(0, span))
        s = int(rng.integers(1, 3))
        for c, gap in ((1, 0), (2, 300), (3, 800)):
            t += int(rng.normal(gap, gap * 0.1 + 5))
            for k in range(2):
                feats.append(centres[i] + noise * rng.standard_normal(DIM))
                cam.append(c)
                frame.append(t + 10 * k)
                seq.append(s)
                pid.append(pid0 + i)
    names = [f"{p:04d}_c{c}s{s}_{f:06d}_00.jpg" for p, c, s, f in zip(pid, cam, seq, frame)]
    return make_feature_set(np.array(feats, np.float32), cam, frame, seq, pid,
                            np.array(names))


def st_model_dir(root: str, config: STConfig = STConfig()) -> str:
    train = simulated_split(120, 0)
    model = estimate_st_model(train, config, 30000)
    out = os.path.join(root, "st")
    os.makedirs(out, exist_ok=True)
    save_st_model(model, out)
    return out


def model_dir(root: str) -> str:
    from trainer import export, models
    spec = models.BackboneSpec("small", H, W, base_width=8)
    return export.export_model(os.path.join(root, "model"), spec,
                               models.build_backbone(spec))


def bundle(root: str, config: STConfig = STConfig(), rule: FusionRule = FusionRule()) -> str:
    from pipeline.components.serving_bundle import write_bundle
    return write_bundle(model_dir(root), st_model_dir(root, config),
                        os.path.join(root, "serving"), settings_json(rule))
