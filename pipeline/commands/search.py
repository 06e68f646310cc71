"""`tfusion search --index INDEX --bundle DIR --query IMAGE|FOLDER|LIST.txt
[--camera C --frame F [--sequence S]] [--top-k 10] [--picture out.png] [--json]`

Who in the gallery is this person, given where and when they were seen: embeds each
query image with the bundle, ranks the index's rows by the bundle's fused score
(st_model/gallery_search.py: rows outside the ST model's support windows are skipped
when that provably keeps the same top-k) and prints name, camera, sequence, frame,
time, fused / vision / ST factor; `--picture` draws each query beside its top-k.
Several queries: a folder of images or a text file of image paths (one a line,
relative to the file); their ST points come from their file names unless
--camera/--frame are given. `--protocol` leaves out the gallery images the Market
evaluation ignores for a query whose name carries its identity (junk, and its own
identity in its own camera), as the run report's ranked lists do.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Tuple

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="index folder (`tfusion index`)")
    parser.add_argument("--bundle", required=True,
                        help="the pushed bundle the index was built with")
    parser.add_argument("--query", required=True,
                        help="an image, a folder of images, or a .txt list of image paths")
    parser.add_argument("--camera", type=int, help="camera of the query image(s)")
    parser.add_argument("--frame", type=int, help="frame (time) of the query image(s)")
    parser.add_argument("--sequence", type=int, default=None,
                        help="sequence (clock) of the query image(s); default 1")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--picture", help="PNG: each query beside its top-k")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--exhaustive", action="store_true",
                        help="score every row (no pruning by ST windows)")
    parser.add_argument("--protocol", action="store_true",
                        help="leave out junk and the query identity's own-camera images "
                             "(Market evaluation protocol; needs identities in the names)")


def query_paths(path: str) -> List[str]:
    from core.errors import InputError
    if os.path.isdir(path):
        found = sorted(os.path.join(path, n) for n in os.listdir(path)
                       if n.lower().endswith(IMAGE_SUFFIXES))
        if not found:
            raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        return found
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such query image, folder or list")
    if path.lower().endswith(".txt"):
        base = os.path.dirname(path)
        with open(path) as f:
            found = [os.path.join(base, line.strip()) for line in f if line.strip()]
        if not found:
            raise InputError(f"{path}: empty list of query images")
        for p in found:
            if not os.path.isfile(p):
                raise InputError(f"{p}: no such query image (listed in {path})")
        return found
    return [path]


def st_points(paths: List[str], args) -> List[Tuple[int, int, int, int]]:
    """(camera, sequence, frame, pid or -2) per query."""
    from core.errors import InputError
    from core.names import parse_name
    if (args.camera is None) != (args.frame is None):
        raise InputError(f"{args.query}: give both --camera and --frame (or neither, to "
                         f"read them from the file names)")
    out = []
    for p in paths:
        if args.camera is not None:
            pid = -2
            try:
                pid = parse_name(p).pid
            except InputError:
                pass
            out.append((args.camera, args.sequence or 1, args.frame, pid))
            continue
        try:
            pt = parse_name(p)
        except InputError:
            raise InputError(f"{p}: no --camera/--frame given and the file name carries no "
                             f"ST point (camera, frame)") from None
        out.append((pt.camera, args.sequence or pt.sequence, pt.frame, pt.pid))
    return out


def read_images(paths: List[str]) -> List[bytes]:
    """Encoded bytes of each query; an image TensorFlow cannot decode is an error."""
    import tensorflow as tf

    from core.errors import InputError, op_error_text
    out = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
        except (tf.errors.OpError, ValueError) as e:
            raise InputError(f"{p}: not a readable image ({op_error_text(e)})") from None
        out.append(data)
    return out


def check_times(index, model, frames, source: str) -> None:
    """Each query time within the index's frame range widened by the ST model's reach
    (the grid's largest |Δ|, or max_delta when the model sets a shorter one)."""
    from core.errors import InputError
    grid = model.grid
    reach = max(abs(grid.lo), abs(grid.lo + grid.width * grid.n_bins))
    if model.params.get("max_delta") is not None:
        reach = min(reach, int(model.params["max_delta"]))
    lo, hi = index.frame_range
    for f in frames:
        if f < lo - reach or f > hi + reach:
            raise InputError(f"{index.path}: query frame {f} ({source}) is outside the "
                             f"index's time range: gallery frames {lo}..{hi}, ± the ST "
                             f"model's reach of {reach} frames")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from core.errors import InputError
    from core.features import make_feature_set
    from core.progress import log
    from pipeline.bundle import check_signature, open_bundle
    from st_model.gallery_index import load_index
    from st_model.gallery_search import GallerySearch
    from st_model.scoring import STTables
    if args.top_k < 1:
        raise InputError(f"--top-k must be >= 1, got {args.top_k}")
    if args.picture and os.path.isdir(args.picture):
        raise InputError(f"{args.picture}: picture path is a folder")
    bundle = open_bundle(args.bundle)
    index = load_index(args.index)
    if index.header["bundle_fingerprint"] != bundle.fingerprint:
        raise InputError(f"{args.index}: index built with another bundle "
                         f"({index.header.get('bundle')}, fingerprint "
                         f"{index.header['bundle_fingerprint']}), not {bundle.path} "
                         f"({bundle.fingerprint}); rebuild it with `tfusion index`")
    paths = query_paths(args.query)
    points = st_points(paths, args)
    model = bundle.st_model()
    check_times(index, model, [p[2] for p in points], args.query)
    images = read_images(paths)
    from trainer.export import Embedder
    embedder = Embedder(bundle.path)
    check_signature(bundle.path, embedder.module)
    feats = embedder.embed_image_bytes(images)
    cam, seq, frame, pid = (np.array([p[i] for p in points], np.int64) for i in range(4))
    query = make_feature_set(feats, cam, frame, seq, pid, np.array(
        [os.path.basename(p) for p in paths]), source=args.query)
    unseen = model.nodes.unseen(cam, seq)
    if unseen["images_unseen_camera"] or unseen["images_unseen_node"]:
        log(f"WARNING: the ST model never saw camera(s) {unseen['unseen_cameras']} or some "
            f"(camera, sequence) nodes: {unseen['images_unseen_camera']} query image(s) in "
            f"unseen cameras + {unseen['images_unseen_node']} in unseen nodes "
            f"({args.query}) get the neutral ST factor (vision decides)")
    search = GallerySearch(index, STTables.from_model(model), bundle.config)
    rows = index.rows
    exclude_fn = None
    if args.protocol:
        if rows.pid is None or (pid < -1).any():
            raise InputError(f"{args.query}: --protocol needs identities in the query "
                             f"names and the index")
        exclude_fn = lambda qi: (rows.pid == -1) | (  # noqa: E731
            (rows.pid == pid[qi]) & (rows.camera == cam[qi]))
    results = search.search(query, args.top_k, not args.exhaustive, exclude_fn)
    rate = float(bundle.manifest.get("frame_rate") or 25.0)
    report = []
    for qi, res in enumerate(results):
        report.append({
            "query": paths[qi], "camera": int(cam[qi]), "sequence": int(seq[qi]),
            "frame": int(frame[qi]), "time_s": frame[qi] / rate,
            "rows_scored": res.rows_scored, "rows": len(rows),
            "pruned": res.passes > 0 or res.rows_scored < len(rows),
            "hits": [{"rank": r + 1, "name": str(rows.names[h.row]),
                      "camera": int(rows.camera[h.row]),
                      "sequence": int(rows.sequence[h.row]),
                      "frame": int(rows.frame[h.row]),
                      "time_s": float(rows.frame[h.row]) / rate,
                      "fused": h.fused, "vision": h.vision, "st_factor": h.st_factor}
                     for r, h in enumerate(res.hits)]})
    if args.picture:
        from pipeline.search_picture import draw_search
        draw_search(report, images, index, args.picture)
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
    else:
        print_table(report)
    return 0


def print_table(report) -> None:
    for q in report:
        how = (f"pruned: {q['rows_scored']} of {q['rows']} rows scored" if q["pruned"]
               else f"full scan of {q['rows']} rows")
        print(f"query {q['query']}  camera {q['camera']}  sequence {q['sequence']}  "
              f"frame {q['frame']} ({q['time_s']:.1f} s)  [{how}]")
        print(f"{'rank':>4}  {'name':<28} {'cam':>3} {'seq':>3} {'frame':>8} "
              f"{'time_s':>9} {'fused':>9} {'vision':>7} {'st_factor':>9}")
        if not q["hits"]:
            print("   (no gallery detection within the ST model's reach)")
        for h in q["hits"]:
            print(f"{h['rank']:>4}  {h['name']:<28} {h['camera']:>3} {h['sequence']:>3} "
                  f"{h['frame']:>8} {h['time_s']:>9.1f} {h['fused']:>9.4f} "
                  f"{h['vision']:>7.4f} {h['st_factor']:>9.4f}")
        print()
