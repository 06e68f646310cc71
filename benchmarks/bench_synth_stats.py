#!/usr/bin/env python3
"""SynthReID target vs Market-1501: per-identity statistics from the file names.

Market-1501's figures are computed from the real name lists (train/query/gallery.txt
in --lists; default $TFUSION_MARKET_LISTS or ../shared/data/market), the SynthReID
figures from the names of a preset's domain as planned for --seed (the names
`tfusion synth` writes; nothing is rendered) or, with --dataset, from a rendered
dataset folder listed by core.datasets.read_dataset_folder. Printed per split
(train; query + gallery pooled): identities, images per identity, cameras per
identity, true cross-camera matches per image, the share of true cross-camera pairs
that cross sequences, and the ratio SynthReID / Market with the ±30 % band; then
how concentrated the train split's true cross-camera time deltas are (share within
±40 s of their node pair's median, against different-identity pairs').

usage: python benchmarks/bench_synth_stats.py [--preset demo] [--domain target]
           [--seed 0] [--dataset DIR] [--lists DIR] [--band 0.3]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.datasets import SPLITS, read_dataset_folder  # noqa: E402
from synth.config import default_lists_dir, load_config  # noqa: E402
from synth.plan import plan_lists_domain, plan_network_domain  # noqa: E402
from synth.stats import COMPARED, dataset_stats, transit_concentration  # noqa: E402

MARKET_LISTS_ENV = "TFUSION_MARKET_LISTS"
ROWS = (("identities", "identities", "{:.0f}"),
        ("images_per_identity", "images per identity", "{:.2f}"),
        ("cameras_per_identity", "cameras per identity", "{:.2f}"),
        ("cross_camera_matches", "cross-camera matches per image", "{:.2f}"),
        ("cross_sequence_share", "share of those crossing sequences", "{:.3f}"))


def by_split(jobs) -> dict:
    return {s: [j for j in jobs if j.split == s] for s in SPLITS}


def synth_points(args) -> tuple:
    """Points per split of the SynthReID side, and a label saying where from."""
    if args.dataset:
        listing = read_dataset_folder(args.dataset)
        return ({s: [r.point for r in recs] for s, recs in listing.splits.items()},
                f"rendered folder {args.dataset}")
    cfg = load_config(args.preset)
    if args.domain not in cfg["domains"]:
        sys.exit(f"preset {args.preset!r} has no domain {args.domain!r}; it has "
                 f"{', '.join(cfg['domains'])}")
    dcfg = cfg["domains"][args.domain]
    if dcfg["st"] != "network":
        sys.exit(f"domain {args.domain!r} of preset {args.preset!r} renders real names; "
                 f"compare a simulated network")
    plan = plan_network_domain(args.domain, dcfg, args.seed)
    return by_split(plan.jobs), f"preset {args.preset}, domain {args.domain}, seed {args.seed}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--domain", default="target")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", help="a rendered dataset folder instead of the preset's plan")
    ap.add_argument("--lists", default=os.environ.get(MARKET_LISTS_ENV) or default_lists_dir(),
                    help="folder of the real Market-1501 train/query/gallery.txt")
    ap.add_argument("--band", type=float, default=0.3)
    a = ap.parse_args()
    market_points = by_split(plan_lists_domain("market", a.lists).jobs)
    market = dataset_stats(market_points)
    points, label = synth_points(a)
    synth = dataset_stats(points)
    print(f"Market-1501 ({a.lists}) vs SynthReID ({label})")
    for part, title in (("train", "train"), ("test", "query + gallery pooled")):
        m, s = market[part], synth[part]
        print(f"\n{title}: Market {m.images} images ({m.distractors} distractors, "
              f"{m.junk} junk), SynthReID {s.images} images ({s.distractors} "
              f"distractors, {s.junk} junk)")
        print(f"  {'statistic':36s} {'Market':>9s} {'SynthReID':>9s} {'ratio':>6s}")
        for key, name, fmt in ROWS:
            mv, sv = getattr(m, key), getattr(s, key)
            ratio = sv / mv if mv else float("nan")
            mark = ("  ok" if abs(ratio - 1) <= a.band else "  OUT") if key in COMPARED else ""
            print(f"  {name:36s} {fmt.format(mv):>9s} {fmt.format(sv):>9s} "
                  f"{ratio:6.2f}{mark}")
    mq, sq = market["gallery_matches_per_query"], synth["gallery_matches_per_query"]
    print(f"\ngallery matches per query (other camera): Market {mq:.2f}, SynthReID "
          f"{sq:.2f}, ratio {sq / mq:.2f}")
    print(f"('ok' = within ±{a.band:.0%} of Market-1501)")
    window = 1000                                  # frames: 40 s at 25 fps (both)
    mt, mr = transit_concentration(market_points["train"], window)
    st, sr = transit_concentration(points["train"], window)
    print(f"\ntrain time deltas within ±{window} frames of their node pair's median: "
          f"Market true {mt:.1%} vs random {mr:.2%} ({mt / mr:.0f}x), SynthReID true "
          f"{st:.1%} vs random {sr:.2%} ({st / sr:.0f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
