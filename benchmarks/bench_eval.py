#!/usr/bin/env python3
"""TFMA evaluation of the re-ID ranking at the Market harness size, beside st_model.

Features: ../shared/bench/simulate_features.py on the real Market-1501 lists
(3,368 queries x 19,732 gallery images; --noise 1.5, seed 0), an ST model estimated
on the train split (as `tfusion fuse` does). Times, in one process:

  reference  st_model.evaluation.evaluate, vision and fused (the in-memory metrics)
  (a)        the per-query evaluation examples (pipeline/eval_examples.py), vision +
             fused, built and written as GZIP TFRecords
  (b)        TFMA over them as the TFX Evaluator runs it (DirectRunner), with the
             ranking metrics and gates of pipeline/ranking_metrics.py
  (b')       with --baseline-noise N: examples with a baseline model's ranks too
             (features at noise N, its own ST model) and TFMA with the change gate

and prints each metric from TFMA beside st_model's with the absolute difference.
The issue's target: (a) + (b) under 2 minutes on 2 cores.

usage: python benchmarks/bench_eval.py [--lists ../shared/data/market] [--work DIR]
       [--noise 1.5] [--baseline-noise 2.0]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
sys.path.insert(0, HERE)

import networks  # noqa: E402


def simulated(lists: str, work: str, noise: float) -> str:
    out = os.path.join(work, f"market_noise{noise}")
    if not os.path.isfile(os.path.join(out, "gallery.npz")):
        subprocess.run([sys.executable, networks.load_simulator().__file__, "--lists",
                        lists, "--out", out, "--noise", str(noise), "--seed", "0"],
                       check=True, stdout=subprocess.DEVNULL)
    return out


def eval_model(folder: str, config):
    """EvalModel of one feature folder with the ST model of its train split."""
    from core.features import load_features
    from pipeline.eval_examples import EvalModel
    from st_model.estimate import estimate_st_model, frame_span
    from st_model.scoring import STTables
    train, query, gallery = (load_features(os.path.join(folder, f"{s}.npz"),
                                           require_pid=s != "train")
                             for s in ("train", "query", "gallery"))
    model = estimate_st_model(train, config, frame_span(train, query, gallery))
    return EvalModel(query, gallery, STTables.from_model(model))


def reference(m, config) -> dict:
    from st_model.evaluation import evaluate
    out = {}
    for ranking, tables in (("vision", None), ("fused", m.tables)):
        r = evaluate(m.query, m.gallery, tables, config)
        out.update({f"{ranking}_rank1": r.rank1, f"{ranking}_rank5": r.rank5,
                    f"{ranking}_rank10": r.rank10, f"{ranking}_mAP": r.mAP})
        out["query_count"] = float(r.queries)
    return out


def timed(fn, *args, **kwargs):
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t0, time.process_time() - c0


def compare(label: str, got: dict, want: dict) -> float:
    print(f"  {label}: metric        TFMA         st_model     |diff|")
    worst = 0.0
    for name, value in want.items():
        diff = abs(got[name] - value)
        worst = max(worst, diff)
        print(f"    {name:14s} {got[name]:12.6f} {value:12.6f}   {diff:.1e}")
    return worst


def run(args, work: str) -> None:
    from pipeline import eval_examples as ee
    from pipeline import ranking_metrics as rm
    from pipeline.run_summary import tfma_metrics
    from st_model.config import resolve_settings
    st, config = resolve_settings()
    cand, t_st, _ = timed(eval_model, simulated(args.lists, work, args.noise), st)
    print(f"Market harness, noise {args.noise}: {len(cand.query)} queries x "
          f"{len(cand.gallery)} gallery; {os.cpu_count()} CPUs seen (shared machine)")
    print(f"ST model on the train split (not part of the evaluation) {t_st:6.1f} s wall")
    want, t_ref, c_ref = timed(reference, cand, config)
    print(f"reference  st_model.evaluation.evaluate vision + fused   {t_ref:6.1f} s wall "
          f"{c_ref:6.1f} s CPU")
    uri = os.path.join(work, "eval_examples")
    built, t_a, c_a = timed(ee.build_eval_examples, cand, None, config)
    counts, t_w, c_w = timed(ee.write_eval_examples, uri, built)
    print(f"(a)        eval examples: ranks {t_a:6.1f} s + write {t_w:4.1f} s wall "
          f"({c_a + c_w:6.1f} s CPU); {counts}")
    cfg = rm.ranking_eval_config(0.0, 100.0, with_baseline=False)
    out = os.path.join(work, "tfma")
    blessed, t_b, c_b = timed(rm.run_ranking_analysis, uri, out, cfg, False)
    print(f"(b)        TFMA (DirectRunner)                    {t_b:6.1f} s wall "
          f"({c_b:6.1f} s CPU in this process); blessed={blessed}")
    print(f"(a) + (b)  {t_a + t_w + t_b:6.1f} s wall (target: < 120 s on 2 cores)")
    worst = compare("candidate", tfma_metrics(out)["candidate"], want)
    if args.baseline_noise is not None:
        base = eval_model(simulated(args.lists, work, args.baseline_noise), st)
        want_base = reference(base, config)
        uri2 = os.path.join(work, "eval_examples_baseline")
        built, t_a, _ = timed(ee.build_eval_examples, cand, base, config)
        _, t_w, _ = timed(ee.write_eval_examples, uri2, built)
        cfg = rm.ranking_eval_config(0.0, 100.0, with_baseline=True)
        out2 = os.path.join(work, "tfma_baseline")
        blessed, t_b, _ = timed(rm.run_ranking_analysis, uri2, out2, cfg, True)
        print(f"(a')       eval examples with baseline (noise {args.baseline_noise}): "
              f"{t_a + t_w:6.1f} s wall")
        print(f"(b')       TFMA, candidate + baseline, change gate {t_b:6.1f} s wall; "
              f"blessed={blessed}")
        both = tfma_metrics(out2)
        worst = max(worst, compare("candidate", both["candidate"], want),
                    compare("baseline", both["baseline"], want_base))
    print(f"max |TFMA - st_model| over all metrics: {worst:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lists", default=os.path.join(REPO, "..", "shared", "data", "market"))
    ap.add_argument("--work", default=None, help="folder for features and outputs")
    ap.add_argument("--noise", type=float, default=1.5)
    ap.add_argument("--baseline-noise", type=float, default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="bench_eval_")
    os.makedirs(work, exist_ok=True)
    print(f"work folder: {work}")
    run(args, work)


if __name__ == "__main__":
    main()
