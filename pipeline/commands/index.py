"""`tfusion index --bundle DIR --dataset FOLDER_OR_EXAMPLES --output INDEX [-- beam options]`

Embeds one split (default gallery) of a dataset with a pushed bundle — a Beam job:
the Embedder's transform (pipeline/components/embedder.py) writes row shards — and
stores the rows sorted by (ST node, frame) with the bundle's fingerprint
(st_model/gallery_index.py). A dataset folder is first ingested (the same Beam job
as `tfusion ingest`) into INDEX/examples, which also serves the search's pictures.
Everything is written under INDEX.partial and renamed at the end: a failed run
leaves no INDEX.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

ACCEPTS_BEAM_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="pushed bundle (DIR/serving/<version>)")
    parser.add_argument("--dataset", required=True,
                        help="Examples folder (Split-gallery/...) or a dataset image folder")
    parser.add_argument("--output", required=True, help="new index folder")
    parser.add_argument("--split", default="gallery", help="split to index (default gallery)")
    parser.add_argument("--batch-size", type=int, default=128)


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError
    from core.features import load_features
    from pipeline.beam_options import make_pipeline
    from pipeline.bundle import open_bundle
    from pipeline.components.embedder import embed_split_to_shards
    from st_model.gallery_index import build_index, write_index
    from trainer.data import has_split
    t0 = time.monotonic()
    bundle = open_bundle(args.bundle)
    out = args.output.rstrip("/")
    if os.path.exists(out):
        raise InputError(f"{out}: exists; choose a new index folder")
    if not os.path.exists(args.dataset):
        raise InputError(f"{args.dataset}: no such dataset folder")
    model = bundle.st_model()
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    try:
        examples = args.dataset
        if not has_split(examples, args.split):
            from pipeline.reid_examples import ingest_folder
            from schemas import schema_path
            examples = os.path.join(partial, "examples")
            ingest_folder(args.dataset, examples, make_pipeline(args.beam_args),
                          schema_path("reid_examples"))
            if not has_split(examples, args.split):
                raise InputError(f"{args.dataset}: no {args.split} split")
        embedded = os.path.join(partial, "embedded")
        with make_pipeline(args.beam_args) as p:
            embed_split_to_shards(p, examples, args.split, bundle.path, embedded,
                                  args.batch_size)
        rows = load_features(embedded)
        t1 = time.monotonic()
        index = build_index(model, rows, bundle.fingerprint, {
            "bundle": os.path.abspath(bundle.path), "dataset": os.path.abspath(args.dataset),
            "split": args.split,
            "examples": "examples" if examples != args.dataset else os.path.abspath(examples),
            "frame_rate": bundle.manifest.get("frame_rate")})
        write_index(index, partial)
        shutil.rmtree(embedded)
        os.rename(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    h = index.header
    print(f"indexed {h['rows']} {args.split} images ({h['dim']}-d, frames "
          f"{h['frame_range'][0]}..{h['frame_range'][1]}, {len(h['nodes'])} ST nodes, "
          f"{h['unseen_rows']} rows in nodes the ST model never saw) into {out} in "
          f"{time.monotonic() - t0:.1f} s (sorting and writing {time.monotonic() - t1:.1f} s)")
    return 0
