"""SynthReID end to end: configuration -> plan -> rendered Market-layout folders,
preview.png and synth.json.

Output layout: a configuration with one domain writes the Market-1501 layout
directly in OUT (OUT/bounding_box_train, OUT/query, OUT/bounding_box_test); with two
or more domains each gets its own folder OUT/<domain>/ (e.g. OUT/source/,
OUT/target/) in that layout. OUT/preview.png is the contact sheet and
OUT/synth.json records the resolved configuration, seed, image counts and, for
simulated networks, the ground-truth camera links, transit times and sessions.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Optional

from core.datasets import IMAGE_EXTENSIONS, LAYOUTS
from core.errors import InputError
from core.progress import log
from synth.config import ConfigError, default_lists_dir, load_config
from synth.plan import DatasetPlan, plan_dataset
from synth.preview import contact_sheet
from synth.writer import image_size, render_jobs

MANIFEST = "synth.json"
PREVIEW = "preview.png"


class OutputExists(InputError):
    """The output folder already holds images (use force to replace them)."""


@dataclass
class SynthReport:
    out: str
    dataset_dirs: Dict[str, str]          # domain -> Market-layout folder
    counts: Dict[str, Dict[str, int]]     # domain -> split -> images
    images: int
    seconds: float
    rate: float                           # images per second
    workers: int
    preview: Optional[str]
    manifest: str


def output_dirs(cfg: Dict[str, Any], out: str) -> Dict[str, str]:
    """OUT itself for one domain, OUT/<domain> for several."""
    names = list(cfg["domains"])
    if len(names) == 1:
        return {names[0]: out}
    return {n: os.path.join(out, n) for n in names}


def prepare_folders(out_dirs: Dict[str, str], force: bool) -> None:
    """Create the split folders; refuse to mix with images already there unless
    `force`, which deletes the old images of those folders first."""
    for root in out_dirs.values():
        for folder in LAYOUTS["market"].values():
            d = os.path.join(root, folder)
            os.makedirs(d, exist_ok=True)
            old = [n for n in os.listdir(d) if n.lower().endswith(IMAGE_EXTENSIONS)]
            if old and not force:
                raise OutputExists(f"{d}: already holds {len(old)} images; choose an "
                                   f"empty --out or pass --force to replace them")
            for n in old:
                os.remove(os.path.join(d, n))


def write_manifest(path: str, preset: str, seed: int, cfg: Dict[str, Any],
                   plan: DatasetPlan, out_dirs: Dict[str, str], stats: Dict) -> None:
    domains = {}
    for name, dp in plan.domains.items():
        ids = {s: len({j.pid for j in dp.jobs if j.split == s and j.pid > 0})
               for s in LAYOUTS["market"]}
        domains[name] = {"dir": os.path.relpath(out_dirs[name], os.path.dirname(path)),
                         "st_source": dp.source, "images": dp.counts(),
                         "identities": ids, "network": dp.truth}
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": "SynthReID", "preset": preset, "seed": seed,
                   "config": cfg, "domains": domains, "render": stats}, f, indent=1)


def generate(preset: str, out: str, config_path: Optional[str] = None,
             lists_dir: Optional[str] = None, seed: int = 0,
             workers: Optional[int] = None, overrides: Optional[Dict[str, Any]] = None,
             force: bool = False, preview: bool = True,
             progress: bool = True) -> SynthReport:
    """Render a SynthReID dataset; see the module docstring for the layout."""
    cfg = load_config(preset, config_path, overrides)
    if not 0 <= int(seed) < 2 ** 63:
        raise ConfigError(f"seed must be a non-negative integer, got {seed}")
    uses_lists = any(d["st"] == "lists" for d in cfg["domains"].values())
    if lists_dir and not uses_lists and progress:
        log(f"synth: note: --lists is ignored, preset {preset!r} simulates its "
            f"camera networks (set a domain's \"st\": \"lists\" to use real names)")
    lists_dir = lists_dir or default_lists_dir()
    plan = plan_dataset(cfg, seed, lists_dir)
    out_dirs = output_dirs(cfg, out)
    prepare_folders(out_dirs, force)
    jobs = plan.jobs
    if progress:
        log(f"synth: preset {preset}, seed {seed}: {len(jobs)} images in "
            f"{len(plan.domains)} domain(s) -> {out}")
    stats = render_jobs(jobs, cfg, seed, out_dirs, workers, progress=progress)
    sheet = None
    if preview:
        sheet = contact_sheet(plan, out_dirs, image_size(cfg), os.path.join(out, PREVIEW))
    render_stats = {"images": stats.images, "seconds": round(stats.seconds, 3),
                    "images_per_s": round(stats.rate, 1), "workers": stats.workers}
    manifest = os.path.join(out, MANIFEST)
    write_manifest(manifest, preset, seed, cfg, plan, out_dirs, render_stats)
    return SynthReport(out, out_dirs, {n: d.counts() for n, d in plan.domains.items()},
                       stats.images, stats.seconds, stats.rate, stats.workers, sheet,
                       manifest)
