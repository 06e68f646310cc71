"""Re-ID images -> tf.Examples: the Beam job behind ReidExampleGen and `tfusion ingest`.

One tf.Example per image with `image` (encoded bytes, as stored), `image_name`,
`camera`, `frame`, `sequence`, `pid` and `split`, written as GZIP TFRecords in the
layout of a TFX Examples artifact (`URI/Split-<split>/data_tfrecord-*.gz`). Each
example is checked against `schemas/reid_examples.pbtxt`; images that cannot be read
or decoded, and examples that fail the schema, are not written but counted and listed
in `URI/ingest_report.json`, and the job fails when their fraction exceeds
`max_bad_fraction`.

Every path goes through Beam's FileSystems, so the dataset, its manifest and the
output may be local or remote (`gs://...`). The launcher lists the dataset and
writes the listing to `URI/image_list.jsonl`; the job reads it from there (the job
graph stays small whatever the dataset's size) and the workers read the images.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from core import examples_layout
from core.datasets import SPLITS, DatasetListing, ImageRecord, read_dataset_folder
from core.errors import InputError
from core.names import FRAME_RATES
from schemas.check import ExampleValidator

REPORT_NAME = "ingest_report.json"
LISTING_NAME = "image_list.jsonl"
DEFAULT_MAX_BAD_FRACTION = 0.01

# A record travelling through the pipeline: (path, name, pid, camera, frame, sequence, split)
RecordTuple = Tuple[str, str, int, int, int, int, str]


class TooManyBadImages(InputError):
    """More images failed to read or validate than the allowed fraction."""


def _as_tuple(r: ImageRecord) -> RecordTuple:
    p = r.point
    return (r.path, r.name, p.pid, p.camera, p.frame, p.sequence, r.split)


def _from_json(line: str) -> RecordTuple:
    return tuple(json.loads(line))


def write_listing(records: Sequence[RecordTuple], output_uri: str) -> str:
    """Write the records one JSON list a line to `URI/image_list.jsonl`; its path."""
    path = FileSystems.join(output_uri, LISTING_NAME)
    with FileSystems.create(path) as f:
        f.write("".join(json.dumps(r) + "\n" for r in records).encode())
    return path


def check_image(data: bytes) -> Optional[str]:
    """None if `data` decodes as an image, else the reason it does not."""
    from PIL import Image, UnidentifiedImageError
    if not data:
        return "empty file"
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.width < 1 or img.height < 1:
                return f"zero-sized image {img.width}x{img.height}"
    except UnidentifiedImageError:
        return "not a readable image (unknown or corrupt format)"
    except (OSError, SyntaxError, ValueError) as e:
        return f"cannot decode image: {e}"
    return None


def example_features(record: RecordTuple, data: bytes) -> Dict[str, object]:
    """The feature values of one image's example (before encoding)."""
    _, name, pid, camera, frame, sequence, split = record
    return {"image": data, "image_name": name.encode(), "camera": camera,
            "frame": frame, "sequence": sequence, "pid": pid,
            "split": split.encode()}


def encode_example(features: Dict[str, object]) -> bytes:
    """Serialize a feature dict of bytes / ints into a tf.Example."""
    import tensorflow as tf
    feats = {}
    for key, value in features.items():
        if isinstance(value, bytes):
            feats[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        else:
            feats[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


class _ReadValidateEncode(beam.DoFn):
    """Read an image's bytes, check it decodes and fits the schema, encode it.

    Main output: (split, serialized tf.Example). Tagged output 'bad': (path, reason).
    """
    BAD = "bad"

    def __init__(self, schema_path: str):
        self._schema_path = schema_path
        self._validator: Optional[ExampleValidator] = None

    def setup(self):
        self._validator = ExampleValidator.from_pbtxt(self._schema_path)

    def process(self, record: RecordTuple):
        path, split = record[0], record[6]
        try:
            with FileSystems.open(path) as f:
                data = f.read()
        except Exception as e:  # any I/O failure is a reported bad image
            yield beam.pvalue.TaggedOutput(self.BAD, (path, f"cannot read: {e}"))
            return
        reason = check_image(data)
        if reason is None:
            feats = example_features(record, data)
            problems = self._validator.problems(feats)
            reason = "; ".join(problems) if problems else None
        if reason is not None:
            beam.metrics.Metrics.counter("reid_examples", "bad_images").inc()
            yield beam.pvalue.TaggedOutput(self.BAD, (path, reason))
            return
        beam.metrics.Metrics.counter("reid_examples", f"examples_{split}").inc()
        yield split, encode_example(feats)


@dataclass
class SplitStats:
    """What one split holds: counts, cameras, sequences, frame range."""
    count: int = 0
    cameras: List[int] = field(default_factory=list)
    sequences: List[List[int]] = field(default_factory=list)  # (camera, sequence) pairs
    frame_min: Optional[int] = None
    frame_max: Optional[int] = None
    pids: int = 0


def split_stats(records: Sequence[ImageRecord]) -> SplitStats:
    """Counts, cameras, (camera, sequence) nodes, frame range and ids of a split."""
    if not records:
        return SplitStats()
    frames = [r.point.frame for r in records]
    return SplitStats(
        count=len(records),
        cameras=sorted({r.point.camera for r in records}),
        sequences=sorted([list(x) for x in {(r.point.camera, r.point.sequence)
                                             for r in records}]),
        frame_min=min(frames), frame_max=max(frames),
        pids=len({r.point.pid for r in records if r.point.pid > 0}))


class WriteReidExamples(beam.PTransform):
    """PCollection of RecordTuple -> Examples-artifact TFRecords + bad-image list.

    Returns the PCollection of (path, reason) of the images that were not written.
    """

    def __init__(self, output_uri: str, schema_path: str,
                 splits: Sequence[str] = SPLITS):
        super().__init__()
        self._uri = output_uri
        self._schema = schema_path
        self._splits = tuple(splits)

    def expand(self, records):
        results = records | "ReadValidateEncode" >> beam.ParDo(
            _ReadValidateEncode(self._schema)).with_outputs(
                _ReadValidateEncode.BAD, main="examples")
        for split in self._splits:
            (results.examples
             | f"Only{split.title()}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
             | f"Values{split.title()}" >> beam.Values()
             | f"Write{split.title()}" >> beam.io.WriteToTFRecord(
                 examples_layout.file_prefix(self._uri, split),
                 file_name_suffix=examples_layout.FILE_SUFFIX,
                 compression_type=beam.io.filesystem.CompressionTypes.GZIP))
        bad = results[_ReadValidateEncode.BAD]
        (bad
         | "FormatBad" >> beam.Map(lambda pr: json.dumps({"path": pr[0], "reason": pr[1]}))
         | "WriteBad" >> beam.io.WriteToText(FileSystems.join(self._uri, "bad_images"),
                                             file_name_suffix=".jsonl",
                                             shard_name_template=""))
        return bad


def read_bad_images(output_uri: str) -> List[Dict[str, str]]:
    """The (path, reason) list written by WriteReidExamples."""
    path = FileSystems.join(output_uri, "bad_images.jsonl")
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line]


def listing_records(listing: DatasetListing) -> List[RecordTuple]:
    """The records of every split; an error when a split has no images."""
    records = [_as_tuple(r) for s in SPLITS for r in listing.splits.get(s, [])]
    if not records:
        raise InputError(f"{listing.root}: no images found in any split")
    empty = [s for s in SPLITS if not listing.splits.get(s)]
    if empty:
        raise InputError(f"{listing.root}: no images in split(s) {', '.join(empty)} "
                         f"({listing.layout} layout); every split of {', '.join(SPLITS)} "
                         "needs images")
    return records


def build_ingest(pipeline: beam.Pipeline, records: Sequence[RecordTuple], output_uri: str,
                 schema_path: str) -> beam.pvalue.PCollection:
    """Add the ingestion of `records` into `output_uri` to `pipeline` (not run).

    The records go to `URI/image_list.jsonl` and the job reads them from there (they
    are not captured in the job graph), spread over the workers before the images
    are read. Returns the PCollection of bad (path, reason)."""
    listing_path = write_listing(records, output_uri)
    return (pipeline
            | "ReadImageList" >> beam.io.ReadFromText(listing_path, validate=False)
            | "ParseRecords" >> beam.Map(_from_json)
            | "SpreadOverWorkers" >> beam.Reshuffle()
            | "WriteExamples" >> WriteReidExamples(output_uri, schema_path))


def ingest(listing: DatasetListing, output_uri: str, pipeline: beam.Pipeline,
           schema_path: str, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION
           ) -> Dict[str, object]:
    """Run the ingestion of `listing` into `output_uri` on `pipeline`; write the report.

    Raises TooManyBadImages (after writing the report) when the fraction of images
    that failed exceeds `max_bad_fraction`.
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise InputError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
    records = listing_records(listing)
    with pipeline as p:
        build_ingest(p, records, output_uri, schema_path)
    bad = read_bad_images(output_uri)
    bad_paths = {b["path"] for b in bad}
    report = {
        "dataset": listing.root, "layout": listing.layout,
        "convention": listing.convention, "images": len(records),
        "bad_images": len(bad), "bad_fraction": len(bad) / len(records),
        "max_bad_fraction": max_bad_fraction,
        "skipped_non_images": listing.skipped,
        "splits": {s: split_stats([r for r in listing.splits.get(s, [])
                                   if r.path not in bad_paths]).__dict__
                   for s in SPLITS},
        "bad": bad,
    }
    report_path = FileSystems.join(output_uri, REPORT_NAME)
    with FileSystems.create(report_path) as f:
        f.write(json.dumps(report, indent=1).encode())
    if report["bad_fraction"] > max_bad_fraction:
        listed = "; ".join(f"{b['path']}: {b['reason']}" for b in bad[:5])
        raise TooManyBadImages(
            f"{listing.root}: {len(bad)} of {len(records)} images are unreadable or "
            f"invalid ({100 * report['bad_fraction']:.2f}% > allowed "
            f"{100 * max_bad_fraction:.2f}%); first: {listed}; full list in "
            f"{report_path}")
    return report


def ingest_folder(dataset_dir: str, output_uri: str, pipeline: beam.Pipeline,
                  schema_path: str, layout: Optional[str] = None,
                  convention: Optional[str] = None,
                  max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION) -> Dict[str, object]:
    """List `dataset_dir` (any supported layout) and ingest it; returns the report."""
    listing = read_dataset_folder(dataset_dir, layout=layout or None,
                                  convention=convention or None)
    return ingest(listing, output_uri, pipeline, schema_path, max_bad_fraction)


def format_report(report: Dict[str, object]) -> str:
    """Human-readable per-split summary of an ingestion report."""
    fps = FRAME_RATES.get(report["convention"], FRAME_RATES["manifest"])
    lines = [f"{report['dataset']} ({report['layout']} layout, "
             f"{report['convention']} names): {report['images']} images, "
             f"{report['bad_images']} bad"]
    for split, st in report["splits"].items():
        if not st["count"]:
            lines.append(f"  {split:8s}      0 images")
            continue
        seqs = ", ".join(f"c{c}s{s}" for c, s in st["sequences"])
        span_s = (st["frame_max"] - st["frame_min"]) / fps
        lines.append(f"  {split:8s} {st['count']:6d} images, {st['pids']} ids, "
                     f"cameras {st['cameras']}, frames {st['frame_min']}-"
                     f"{st['frame_max']} ({span_s:.0f} s at {fps:g} fps), "
                     f"sequences: {seqs}")
    if report["skipped_non_images"]:
        lines.append(f"  skipped {len(report['skipped_non_images'])} non-image files")
    for b in report["bad"][:10]:
        lines.append(f"  bad: {b['path']}: {b['reason']}")
    return "\n".join(lines)

