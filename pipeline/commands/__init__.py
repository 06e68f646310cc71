"""The `tfusion` sub-commands, one module each (registered in pipeline/cli.py).

Each module exposes `add_arguments(parser)` and `run(args) -> int` and imports
TensorFlow, TFX or Beam only inside `run`, so `tfusion synth` or `tfusion fuse` never
pay for what they do not use. Errors follow pipeline/errors.py.
"""
