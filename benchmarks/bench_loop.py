"""The TFusion loop on SynthReID, read against its bounds: `tfusion run` per seed, then
per round vision / fused rank-1 and mAP (TFMA's figures) beside the oracle-ST bound (the
same fusion with the ST model estimated from true train identities) and chance; mean
and spread over the seeds.

    python benchmarks/bench_loop.py --out /tmp/loop --seeds 0 1 2 --rounds 2 [--preset demo]

Re-running with the same --out reuses finished runs (the pipeline's cache).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def run_seed(out: str, preset: str, seed: int, rounds: int) -> dict:
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--preset", preset, "--seed",
           str(seed), "--rounds", str(rounds), "--output-dir", out]
    t0 = time.monotonic()
    with open(out + ".log", "w") as log:
        rc = subprocess.call(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        raise SystemExit(f"seed {seed}: tfusion run failed (rc {rc}); see {out}.log")
    with open(os.path.join(out, "run_summary.json")) as f:
        summary = json.load(f)
    summary["bench_minutes"] = (time.monotonic() - t0) / 60
    return summary


def bounds(row: dict, run_config: dict) -> dict:
    """Oracle-ST fused figures and chance rank-1 of one round's features (with the
    run's resolved settings)."""
    from pipeline.component_io import load_split_features
    from st_model import estimate
    from pipeline.run_config import RunConfig
    from st_model.evaluation import evaluate
    from st_model.scoring import STTables
    config = RunConfig.from_dict(run_config, "run_summary.json config")
    train, query, gallery = load_split_features(row["features"])
    oracle = estimate.oracle_st_model(train, config.st,
                                      estimate.frame_span(train, query, gallery))
    result = evaluate(query, gallery, STTables.from_model(oracle), config.fusion_rule)
    return {"oracle_rank1": result.rank1, "oracle_mAP": result.mAP}


def chance_rank1(features_uri: str) -> float:
    """Expected rank-1 of a random ranking: mean over evaluated queries of the share of
    true matches among the gallery images the protocol keeps."""
    from pipeline.component_io import load_split_features
    q, g = load_split_features(features_uri, ("query", "gallery"))
    rates = []
    for p, c in zip(q.pid, q.camera):
        if p <= 0:
            continue
        valid = (g.pid != -1) & ~((g.pid == p) & (g.camera == c))
        match = valid & (g.pid == p)
        if match.any():
            rates.append(match.sum() / valid.sum())
    return 100.0 * float(np.mean(rates))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    table = {}
    for seed in args.seeds:
        s = run_seed(os.path.join(args.out, f"seed{seed}"), args.preset, seed, args.rounds)
        rows = []
        for row in s["rounds"]:
            b = bounds(row, s["config"])
            rows.append({"round": row["round"], "vision": row["vision"]["rank1"],
                         "vision_mAP": row["vision"]["mAP"], "fused": row["fused"]["rank1"],
                         "fused_mAP": row["fused"]["mAP"], **b,
                         "chance": chance_rank1(row["features"])})
        table[seed] = rows
        print(f"seed {seed}: {s['bench_minutes']:.1f} min, gate "
              f"{'blessed' if s['gate']['blessed'] else 'NOT blessed'}", flush=True)
        for r in rows:
            print(f"  round {r['round']}: vision {r['vision']:5.1f} / {r['vision_mAP']:5.1f}"
                  f"  fused {r['fused']:5.1f} / {r['fused_mAP']:5.1f}  oracle-ST "
                  f"{r['oracle_rank1']:5.1f} / {r['oracle_mAP']:5.1f}  chance "
                  f"{r['chance']:.2f}  (fused/vision x{r['fused'] / max(r['vision'], 1e-9):.2f},"
                  f" fused/oracle {100 * r['fused'] / max(r['oracle_rank1'], 1e-9):.0f} %)",
                  flush=True)
    print(f"\nmean ± sd over seeds {args.seeds} (rank-1 %, {args.preset} preset):")
    for k in range(args.rounds + 1):
        col = {key: np.array([table[s][k][key] for s in args.seeds])
               for key in ("vision", "fused", "oracle_rank1", "chance", "vision_mAP",
                           "fused_mAP")}
        fmt = lambda a: f"{a.mean():5.1f} ± {a.std(ddof=1) if a.size > 1 else 0:.1f}"  # noqa
        print(f"  round {k}: vision {fmt(col['vision'])} (mAP {fmt(col['vision_mAP'])})  "
              f"fused {fmt(col['fused'])} (mAP {fmt(col['fused_mAP'])})  oracle-ST "
              f"{fmt(col['oracle_rank1'])}  chance {col['chance'].mean():.2f}")
    v0 = np.array([table[s][0]["vision"] for s in args.seeds])
    f0 = np.array([table[s][0]["fused"] for s in args.seeds])
    o0 = np.array([table[s][0]["oracle_rank1"] for s in args.seeds])
    print(f"round 0: fused / vision x{(f0 / v0).mean():.2f} (mean of the per-seed ratios); "
          f"mean fused / mean oracle-ST {100 * f0.mean() / o0.mean():.1f} % (mean of the "
          f"per-seed ratios {100 * (f0 / o0).mean():.1f} %)")
    for k in range(1, args.rounds + 1):
        dv = np.array([table[s][k]["vision"] - table[s][k - 1]["vision"] for s in args.seeds])
        df = np.array([table[s][k]["fused"] - table[s][k - 1]["fused"] for s in args.seeds])
        print(f"round {k} vs {k - 1}: vision {dv.mean():+.1f} (per seed "
              f"{', '.join(f'{x:+.1f}' for x in dv)}), fused {df.mean():+.1f} (per seed "
              f"{', '.join(f'{x:+.1f}' for x in df)})")
    with open(os.path.join(args.out, "bench_loop.json"), "w") as f:
        json.dump(table, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
