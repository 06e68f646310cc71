"""The Beam transforms (DirectRunner) give exactly the in-memory ST model."""
import numpy as np
import pytest

apache_beam = pytest.importorskip("apache_beam")

from apache_beam.testing.util import assert_that  # noqa: E402

from st_model.beam_transforms import EstimateSTModel  # noqa: E402
from st_model.config import FusionConfig  # noqa: E402
from st_model.estimate import estimate_st_model, frame_span  # noqa: E402
from st_model.features import make_feature_set  # noqa: E402

OPTIONS = ["--runner=DirectRunner", "--direct_running_mode=in_memory",
           "--direct_num_workers=1"]


def _train(n=300, seed=0):
    rng = np.random.default_rng(seed)
    pid = rng.integers(1, 40, n)
    cam = rng.integers(1, 4, n)
    seq = rng.integers(1, 3, n)
    proto = rng.standard_normal((40, 16))
    x = proto[pid] + 0.8 * rng.standard_normal((n, 16))
    frame = pid * 300 + cam * 40 + rng.integers(0, 30, n)
    return make_feature_set(x, cam, frame, seq, pid)


@pytest.mark.parametrize("mode", ["camera_sequence", "tfusion"])
def test_beam_estimate_equals_in_memory(mode):
    from apache_beam.options.pipeline_options import PipelineOptions
    train = _train()
    config = FusionConfig(mode=mode, top_k=4)
    span = frame_span(train)
    # small row blocks: several Beam elements, same math per block
    expected = estimate_st_model(train, config, span, row_block=64)
    assert expected.visual.sum() > 0

    def check(models):
        assert len(models) == 1
        assert models[0].same_as(expected)

    with apache_beam.Pipeline(options=PipelineOptions(OPTIONS)) as p:
        model = p | EstimateSTModel(train, config, span, row_block=64)
        assert_that(model, check)
