"""`tfusion synth`: render a SynthReID dataset in the Market-1501 folder layout.

    tfusion synth --preset demo --out data/synth [--config FILE] [--lists DIR]
                  [--seed N] [--workers N] [--force] [--no-preview]

Presets: tiny (seconds, for tests), demo (a 670-identity source + a Market-like
6-camera target), dense (the demo with a denser target), market (one image per name
of --lists, default ../shared/data/market). Two-domain presets write OUT/source/ and
OUT/target/; one-domain presets write OUT/ itself.
"""
from __future__ import annotations

import argparse
import sys

from synth.config import PRESETS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="demo",
                        help=f"one of {', '.join(PRESETS)} (default demo)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", default=None,
                        help="JSON file whose keys override the preset's parameters")
    parser.add_argument("--lists", default=None,
                        help="folder with train.txt / query.txt / gallery.txt name lists "
                             "for domains with \"st\": \"lists\" (default "
                             "../shared/data/market relative to the repository root)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: number of CPUs)")
    parser.add_argument("--force", action="store_true",
                        help="replace images already in the output split folders")
    parser.add_argument("--no-preview", action="store_true",
                        help="do not write OUT/preview.png")


def run(args: argparse.Namespace) -> int:
    from core.errors import InputError, check_output_dir
    from synth.generate import generate

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    check_output_dir(args.out)
    report = generate(args.preset, args.out, config_path=args.config,
                      lists_dir=args.lists, seed=args.seed, workers=args.workers,
                      force=args.force, preview=not args.no_preview)
    for name, counts in report.counts.items():
        print(f"{name}: {report.dataset_dirs[name]}  train {counts['train']}  "
              f"query {counts['query']}  gallery {counts['gallery']}")
    if report.preview:
        print(f"preview: {report.preview}")
    print(f"manifest: {report.manifest}")
    print(f"rendered {report.images} images in {report.seconds:.1f} s: "
          f"{report.rate:.0f} images/s with {report.workers} worker(s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(prog="tfusion synth")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
