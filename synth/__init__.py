"""SynthReID: procedural pedestrian images on simulated or real camera networks,
written in the Market-1501 folder layout (see synth/README.md and `tfusion synth`)."""
from synth.config import PRESETS, ConfigError, load_config
from synth.generate import OutputExists, SynthReport, generate

__all__ = ["PRESETS", "ConfigError", "load_config", "OutputExists", "SynthReport",
           "generate"]
