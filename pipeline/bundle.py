"""A pushed serving bundle as `tfusion index` / `tfusion search` read it: its
manifest, ST model, fusion config and fingerprint; errors name the folder. The
bundle's file names (written by pipeline/components/serving_bundle.py) live here."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Dict

from core.dataclass_dict import from_dict
from core.errors import InputError
from st_model.config import FusionRule

MANIFEST = "tfusion_manifest.json"
ST_DIR = "st_model"   # the bundle's copy of its ST model artifact
FUSED_SIGNATURE = "fused_scores"
FINGERPRINTED = ("saved_model.pb", os.path.join("variables", "variables.index"),
                 os.path.join(ST_DIR, "st_model.npz"))


def bundle_st_model_dir(model_dir: str) -> str:
    """The ST model folder inside a bundle's serving directory."""
    return os.path.join(model_dir, ST_DIR)


@dataclass
class Bundle:
    path: str
    manifest: Dict
    fingerprint: str

    @property
    def config(self) -> FusionRule:
        """The bundle's fusion rule (resolved when the bundle was written)."""
        if "fusion_rule" not in self.manifest and "fusion" in self.manifest:
            raise InputError(f"{self.path}/{MANIFEST}: written by an earlier version "
                             "(\"fusion\" in place of \"fusion_rule\"); push the "
                             "model again")
        return from_dict(FusionRule, self.manifest.get("fusion_rule") or {},
                         f"{self.path}/{MANIFEST} fusion_rule")

    def st_model(self):
        from st_model.st_artifact import load_st_model
        return load_st_model(os.path.join(self.path, self.manifest["st_model"]))


def fingerprint(path: str) -> str:
    """sha256 over the bundle's graph, variable index and ST model."""
    h = hashlib.sha256()
    for rel in FINGERPRINTED:
        with open(os.path.join(path, rel), "rb") as f:
            h.update(rel.encode() + b"\0" + f.read())
    return h.hexdigest()[:16]


def open_bundle(path: str) -> Bundle:
    """A pushed bundle folder (DIR/serving/<version>/ or a ServingBundle's
    Format-Serving/) that carries the fused_scores signature."""
    for candidate in (path, os.path.join(path, "Format-Serving")):
        if os.path.isfile(os.path.join(candidate, MANIFEST)):
            path = candidate
            break
    else:
        raise InputError(f"{path}: not a serving bundle (no {MANIFEST}); give a pushed "
                         f"folder DIR/serving/<version>")
    try:
        with open(os.path.join(path, MANIFEST)) as f:
            manifest = json.load(f)
    except ValueError as e:
        raise InputError(f"{os.path.join(path, MANIFEST)}: not JSON ({e})") from None
    if FUSED_SIGNATURE not in (manifest.get("signatures") or {}):
        raise InputError(f"{path}: bundle has no {FUSED_SIGNATURE} signature (pushed by an "
                         f"older version, manifest v{manifest.get('version')}); run the "
                         f"pipeline again to push a bundle with fused scoring")
    missing = [r for r in FINGERPRINTED if not os.path.isfile(os.path.join(path, r))]
    if missing:
        raise InputError(f"{path}: incomplete bundle, missing {', '.join(missing)}")
    return Bundle(path, manifest, fingerprint(path))


def check_signature(path: str, module) -> None:
    """The loaded SavedModel really has the fused signature."""
    if FUSED_SIGNATURE not in module.signatures:
        raise InputError(f"{path}: the SavedModel has no {FUSED_SIGNATURE} signature "
                         f"(an older push); run the pipeline again")
