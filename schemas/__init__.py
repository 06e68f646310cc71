"""TFMD schemas (text protos) of the records TFusion-TFX writes, and their row-level
check (schemas/check.py)."""
import os

SCHEMA_DIR = os.path.dirname(os.path.abspath(__file__))


def schema_path(name: str) -> str:
    """Path of `schemas/<name>.pbtxt`."""
    path = os.path.join(SCHEMA_DIR, f"{name}.pbtxt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such schema")
    return path
