"""Data prepared on this machine before a DAG or a benchmark runs, each reused only
when its recorded fingerprint (pipeline/fingerprint.py) is the one it would record
now: the SynthReID source and target domains of a preset (`render_data`, what
`tfusion run --preset` trains on) and one domain ingested into tf.Examples by the
ReidExampleGen Beam job outside TFX (`ingest_domain`, for benchmarks).
"""
import json
import os
import shutil
import sys
from typing import Dict

from pipeline import fingerprint
from core import progress
from core.errors import InputError

_log = progress.log


def _reusable(folder: str, fp: Dict, fresh: bool, what: str) -> bool:
    """Whether `folder` holds outputs of exactly `fp` (logs why not when it differs)."""
    if fresh or not os.path.isdir(folder):
        return False
    if fingerprint.matches(folder, fp):
        _log(f"reusing {what} in {folder}")
        return True
    _log(f"redoing {what} in {folder} ({fingerprint.differences(folder, fp)})")
    return False


def render_data(out: str, preset: str, seed: int, fresh: bool) -> Dict[str, str]:
    """SynthReID source and target domains in the Market layout under OUT/data;
    reused only when rendered from the same preset (its resolved settings) and seed."""
    from synth.config import load_config
    from synth.generate import generate
    data = os.path.join(out, "data")
    fp = fingerprint.make(stage="synth", preset=preset, seed=seed,
                          settings=load_config(preset))
    dirs = {d: os.path.join(data, d) for d in ("source", "target")}
    if _reusable(data, fp, fresh, "SynthReID images"):
        return dirs
    fingerprint.forget(data)
    _log(f"rendering SynthReID preset {preset!r} into {data}")
    report = generate(preset, data, seed=seed, force=True)
    if not {"source", "target"} <= set(report.dataset_dirs):
        raise InputError(f"preset {preset!r} has domains {sorted(report.dataset_dirs)}; "
                         "the demo needs a source and a target domain")
    fingerprint.record(data, fp)
    return report.dataset_dirs


def ingest_domain(dataset_dir: str, examples_dir: str, fresh: bool) -> Dict:
    """tf.Examples of one domain (the ReidExampleGen Beam job); reused only when
    ingested from the same image content."""
    from pipeline.beam_options import make_pipeline
    from pipeline.reid_examples import REPORT_NAME, format_report, ingest_folder
    from schemas import schema_path
    fp = fingerprint.make(stage="ingest", images=fingerprint.tree_digest(dataset_dir))
    if _reusable(examples_dir, fp, fresh, "examples"):
        with open(os.path.join(examples_dir, REPORT_NAME)) as f:
            report = json.load(f)
    else:
        shutil.rmtree(examples_dir, ignore_errors=True)  # no stale shards mixed in
        _log(f"ingesting {dataset_dir} -> {examples_dir}")
        report = ingest_folder(dataset_dir, examples_dir, make_pipeline(),
                               schema_path("reid_examples"))
        fingerprint.record(examples_dir, fp)
    print(format_report(report), file=sys.stderr)
    return report
