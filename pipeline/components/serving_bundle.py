"""ServingBundle: Model + STModel -> Model that a server can fuse with.

The pushed unit: the exported SavedModel (embedding signatures, trainer/export.py),
the ST model it was evaluated with, and a manifest saying how to join the two —
ST node ids (camera, sequence), frame rate, bin width, input size, fusion rule:

    Format-Serving/saved_model.pb, variables/, keras/   the embedding model
    Format-Serving/st_model/st_model.npz, st_model.png  the ST model
    Format-Serving/tfusion_manifest.json                the manifest
"""
import json
import os

from tfx import v1 as tfx
from tfx.types.standard_artifacts import Model

from pipeline.artifacts import STModel

MANIFEST = "tfusion_manifest.json"
ST_DIR = "st_model"


def copy_tree(src: str, dst: str) -> None:
    """Recursive copy through tf.io.gfile (any TensorFlow filesystem)."""
    import tensorflow as tf
    for folder, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(folder, src)
        out = os.path.normpath(os.path.join(dst, rel))
        tf.io.gfile.makedirs(out)
        for name in files:
            tf.io.gfile.copy(os.path.join(folder, name), os.path.join(out, name), True)


def bundle_st_model_dir(model_dir: str) -> str:
    """The ST model folder inside a bundle's serving directory."""
    return os.path.join(model_dir, ST_DIR)


@tfx.dsl.components.component
def ServingBundle(
    model: tfx.dsl.components.InputArtifact[Model],
    st_model: tfx.dsl.components.InputArtifact[STModel],
    bundle: tfx.dsl.components.OutputArtifact[Model],
    fusion_config: tfx.dsl.components.Parameter[str] = "{}",
) -> None:
    """Copy the SavedModel and the ST model into one servable Model artifact."""
    import tensorflow as tf

    from st_model.st_artifact import load_st_model
    from trainer.export import base_model_spec, resolve_model_dir
    src = resolve_model_dir(model.uri)
    serving = os.path.join(bundle.uri, "Format-Serving")
    copy_tree(src, serving)
    copy_tree(st_model.uri, bundle_st_model_dir(serving))
    header = load_st_model(st_model.uri).header()
    spec = base_model_spec(serving)
    manifest = {
        "format": "tfusion-serving-bundle", "version": 1,
        "embedding_signatures": ["serving_default (serialized tf.Example with 'image')",
                                 "embed_image_bytes (encoded JPEG/PNG)"],
        "input_size": [spec.height, spec.width],
        "st_model": f"{ST_DIR}/st_model.npz",
        "st_nodes": header["nodes"], "node_mode": header["mode"],
        "frame_rate": header.get("frame_rate"), "bin_frames": header["bin_frames"],
        "fusion": json.loads(fusion_config),
        "source_model": model.uri, "source_st_model": st_model.uri,
    }
    with tf.io.gfile.GFile(os.path.join(serving, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, default=str)
    bundle.set_string_custom_property("source_model", model.uri)
    bundle.set_string_custom_property("st_model", st_model.uri)
