"""The TFusion math: ST points, histograms, fusion and ranking metrics (no TFX)."""
