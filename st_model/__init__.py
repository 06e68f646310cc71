"""The TFusion math: ST models, fusion, fused ranking and re-ranking, ranking metrics,
and their Beam transforms (numpy/scipy + Beam, no TFX). Imports core and schemas."""
