"""Score a finished run's query × gallery through the pushed bundle's `fused_scores`
signature in a TensorFlow-only process; print rank-1 / mAP beside the gated round's
TFMA figures.

    python benchmarks/check_serving.py --run demo_out
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.serving_check import check_pushed_bundle  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--run", required=True, help="output folder of `tfusion run`")
    args = ap.parse_args()
    summary = json.load(open(os.path.join(args.run, "run_summary.json")))
    if not summary["push"]["pushed"]:
        sys.exit(f"{args.run}: the last round was not pushed")
    t0 = time.monotonic()
    res = check_pushed_bundle(summary)
    s, t = res["signature"], res["tfma"]
    print(f"bundle {res['bundle']} ({res['queries']} queries, {time.monotonic() - t0:.1f} s)")
    print(f"fused_scores signature: rank-1 {s['rank1']:.2f}  mAP {s['mAP']:.2f}")
    print(f"TFMA (gated round):     rank-1 {t['rank1']:.2f}  mAP {t['mAP']:.2f}")
    print(f"difference:             rank-1 {s['rank1'] - t['rank1']:+.4f}  "
          f"mAP {s['mAP'] - t['mAP']:+.4f}")


if __name__ == "__main__":
    main()
