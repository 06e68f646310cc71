"""ServingBundle: Model + STModel -> Model that a server can fuse with.

The pushed unit: one SavedModel with the embedding signatures and `fused_scores`
(the ST model it was evaluated with, as lookup tables in its variables:
trainer/fused_scoring.py), the ST model artifact itself, and a manifest — the
signatures and what each input means, ST node ids (camera, sequence), frame rate,
bin width, input size, fusion rule:

    Format-Serving/saved_model.pb, variables/, keras/   embedding + fused scoring
    Format-Serving/st_model/st_model.npz, st_model.png  the ST model
    Format-Serving/tfusion_manifest.json                the manifest
    Format-Serving/fused_scores_request.json            a REST :predict body for fused_scores
"""
import json
import os

from tfx import v1 as tfx
from tfx.types.standard_artifacts import Model

from pipeline.artifacts import STModel
from pipeline.bundle import MANIFEST, ST_DIR, bundle_st_model_dir

REQUEST = "fused_scores_request.json"
MANIFEST_VERSION = 2   # 2: fused_scores signature in the SavedModel


def copy_tree(src: str, dst: str) -> None:
    """Recursive copy through tf.io.gfile (any TensorFlow filesystem)."""
    import tensorflow as tf
    for folder, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(folder, src)
        out = os.path.normpath(os.path.join(dst, rel))
        tf.io.gfile.makedirs(out)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(out, name), True)


@tfx.dsl.components.component
def ServingBundle(
    model: tfx.dsl.components.InputArtifact[Model],
    st_model: tfx.dsl.components.InputArtifact[STModel],
    bundle: tfx.dsl.components.OutputArtifact[Model],
    fusion_rule: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Export the model with the ST model's `fused_scores` signature, and copy the
    ST model, into one servable Model artifact."""
    write_bundle(model.uri, st_model.uri, os.path.join(bundle.uri, "Format-Serving"),
                 fusion_rule)
    bundle.set_string_custom_property("source_model", model.uri)
    bundle.set_string_custom_property("st_model", st_model.uri)


def write_bundle(model_uri: str, st_model_uri: str, serving: str,
                 fusion_rule: str = "{}") -> str:
    """The bundle's serving folder from a model folder and an ST model folder."""
    import tensorflow as tf

    from pipeline.component_io import settings_of
    from st_model.config import FusionRule
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    from trainer import fused_scoring
    from trainer.export import base_model_spec, export_bundle_model
    from trainer.models import read_spec
    config = settings_of(FusionRule, fusion_rule, "ServingBundle", "fusion_rule")
    st = load_st_model(st_model_uri)
    tables = STTables.from_model(st)
    export_bundle_model(model_uri, serving, tables, config)
    copy_tree(st_model_uri, bundle_st_model_dir(serving))
    header = st.header()
    spec = base_model_spec(serving)
    dim = int(read_spec(os.path.join(serving, "keras"))["embedding_dim"])
    frame_rate = header.get("frame_rate")
    manifest = {
        "format": "tfusion-serving-bundle", "version": MANIFEST_VERSION,
        "signatures": {
            "serving_default": {"inputs": {"examples": "serialized tf.Example [B] with "
                                           "an 'image' bytes feature"},
                                "outputs": {"embedding": f"float32 [B, {dim}], L2-normalised"}},
            "embed_image_bytes": {"inputs": {"images": "encoded JPEG/PNG/BMP bytes [B]"},
                                  "outputs": {"embedding": f"float32 [B, {dim}], L2-normalised"}},
            fused_scoring.SIGNATURE: fused_scoring.signature_manifest(config, frame_rate),
        },
        "embedding_signatures": ["serving_default (serialized tf.Example with 'image')",
                                 "embed_image_bytes (encoded JPEG/PNG)"],
        "embedding_dim": dim,
        "input_size": [spec.height, spec.width],
        "st_model": f"{ST_DIR}/st_model.npz",
        "st_nodes": header["nodes"], "node_mode": header["mode"],
        "frame_rate": frame_rate, "bin_frames": header["bin_frames"],
        "fusion_rule": json.loads(fusion_rule),
        "example_request": REQUEST,
        "source_model": model_uri, "source_st_model": st_model_uri,
    }
    with tf.io.gfile.GFile(os.path.join(serving, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, default=str)
    with tf.io.gfile.GFile(os.path.join(serving, REQUEST), "w") as f:
        json.dump(fused_scoring.example_request(tables, dim), f)
    return serving
