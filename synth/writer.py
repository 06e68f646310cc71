"""Rendering the planned images to JPEG files with a pool of worker processes.

Each worker rebuilds the domains from the configuration and seed, so the image of a
name is the same whichever worker renders it, and in whatever order.
"""
from __future__ import annotations

import io
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from core.progress import log
from synth.domain import Domain
from synth.plan import ImageJob

_WORKER: Dict[str, Any] = {}


def build_domains(cfg: Dict[str, Any], seed: int) -> Dict[str, Domain]:
    size = image_size(cfg)
    return {name: Domain(name, d["style"], seed, clusters=d["clusters"],
                         cluster_share=d["cluster_share"],
                         colour_jitter=d["colour_jitter"],
                         difficulty=d["difficulty"], size=size)
            for name, d in cfg["domains"].items()}


def job_key(job: ImageJob) -> str:
    """The per-image random stream key: split and name."""
    return f"{job.split}/{job.name}"


def _init_worker(cfg: Dict[str, Any], seed: int, out_dirs: Dict[str, str]) -> None:
    _WORKER["domains"] = build_domains(cfg, seed)
    _WORKER["quality"] = int(cfg["jpeg_quality"])
    _WORKER["out"] = out_dirs


def _render_chunk(chunk: Sequence[ImageJob]) -> int:
    domains, quality, out = _WORKER["domains"], _WORKER["quality"], _WORKER["out"]
    for job in chunk:
        img = domains[job.domain].render(job_key(job), job.pid, job.camera)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        with open(os.path.join(out[job.domain], job.relpath()), "wb") as f:
            f.write(buf.getbuffer())
    return len(chunk)


@dataclass
class RenderStats:
    images: int
    seconds: float
    workers: int

    @property
    def rate(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def _start_method() -> str:
    # fork is fastest, but is unsafe once TensorFlow's threads exist in the parent.
    methods = mp.get_all_start_methods()
    if "fork" in methods and "tensorflow" not in sys.modules:
        return "fork"
    return "spawn"


def render_jobs(jobs: Sequence[ImageJob], cfg: Dict[str, Any], seed: int,
                out_dirs: Dict[str, str], workers: Optional[int] = None,
                chunk: int = 64, progress: bool = True) -> RenderStats:
    """Render and write every job (folders must exist); progress goes to stderr."""
    workers = max(1, workers or os.cpu_count() or 1)
    total = len(jobs)
    chunks: List[Sequence[ImageJob]] = [jobs[i:i + chunk] for i in range(0, total, chunk)]
    t0 = time.perf_counter()
    done, next_report = 0, 0.1

    def report(n: int) -> None:
        nonlocal done, next_report
        done += n
        if progress and total and done / total >= next_report:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            log(f"synth: rendered {done}/{total} images ({rate:.0f}/s)")
            while next_report <= done / total:
                next_report += 0.1

    if workers == 1 or len(chunks) <= 1:
        _init_worker(cfg, seed, out_dirs)
        for c in chunks:
            report(_render_chunk(c))
    else:
        ctx = mp.get_context(_start_method())
        with ctx.Pool(min(workers, len(chunks)), _init_worker,
                      (cfg, seed, out_dirs)) as pool:
            for n in pool.imap_unordered(_render_chunk, chunks):
                report(n)
    return RenderStats(total, time.perf_counter() - t0, workers)


def render_one(cfg: Dict[str, Any], seed: int, job: ImageJob,
               domains: Optional[Dict[str, Domain]] = None):
    """The PIL image of one job, in memory (for previews and tests)."""
    domains = domains or build_domains(cfg, seed)
    return domains[job.domain].render(job_key(job), job.pid, job.camera)


def image_size(cfg: Dict[str, Any]) -> Tuple[int, int]:
    return cfg["height"], cfg["width"]
