"""Gallery search at scale: pruned by ST support windows vs the exhaustive scan, in the
same run, on simulated embeddings with real-looking timing.

A Market-like network (6 cameras on a line, mean transits 400–1200 frames at 25 fps,
people walking several visits, a few shots each; benchmarks/networks.py) gives a
train split for the ST model (estimated as `tfusion fuse` does) and, scaled up in
identities and duration at the same density, a gallery of ~N detections; embeddings
from ../shared/bench/simulate_features.py (clusters, camera bias, noise) at --dim.
Prints index build time, p50 / p99 latency per query of both searches, their ratio,
the share of queries the windows certified, and whether every top-k is identical —
for the default ST model (no reach) and, in the same run, for the same model with a
reach (--max-delta: a pair further apart in time is out of reach), with the share of
queries whose top-1 is a true match with and without the reach.

    python benchmarks/bench_search.py --gallery 1000000 --dim 128 --queries 200
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from networks import camera_network, load_simulator  # noqa: E402
from core.features import make_feature_set  # noqa: E402
from st_model.config import resolve_settings  # noqa: E402
from st_model.estimate import estimate_st_model  # noqa: E402
from st_model.gallery_index import build_index, write_index  # noqa: E402
from st_model.gallery_search import TAU0, GallerySearch, top_rows  # noqa: E402
from st_model.scoring import STTables  # noqa: E402

NET = dict(n_cameras=6, transit=400.0, visits=6, shots=3)
TRAIN_IDS, TRAIN_DURATION = 3000, 400000


def feature_set(split, x):
    return make_feature_set(x, split["camera"], split["frame"], split["sequence"],
                            split["pid"], split["name"], unit_rows=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gallery", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--noise", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-delta", type=int, default=90000,
                    help="the ST model's reach in frames for the second measurement "
                         "(default 90000: 1 h at 25 fps; 0: skip it)")
    ap.add_argument("--st-model", choices=("estimated", "oracle"), default="estimated",
                    help="the ST model as `tfusion fuse` estimates it from visual "
                         "neighbours, or from true train identities (estimate.oracle_st_model)")
    args = ap.parse_args()
    t0 = time.monotonic()
    train_net = camera_network(n_ids=TRAIN_IDS, duration=TRAIN_DURATION, seed=args.seed, **NET)
    rows_per_id = len(train_net["gallery"]["pid"]) / (TRAIN_IDS / 2)
    n_ids = int(np.ceil(2 * args.gallery / rows_per_id * 1.02))
    duration = int(TRAIN_DURATION * n_ids / TRAIN_IDS)
    big = camera_network(n_ids=n_ids, duration=duration, seed=args.seed + 1, **NET)
    for s in ("query", "gallery"):
        big[s]["pid"] = big[s]["pid"] + 10_000_000      # other people than train's
    splits = {"train": train_net["train"], "query": big["query"], "gallery": big["gallery"]}
    x = load_simulator().simulate(splits, dim=args.dim, noise=args.noise, seed=args.seed)
    train, query, gallery = (feature_set(splits[s], x[s]) for s in ("train", "query", "gallery"))
    t_sim = time.monotonic() - t0
    print(f"simulated: train {len(train)}, query {len(query)}, gallery {len(gallery)} "
          f"detections over {duration} frames ({duration / 25 / 3600:.1f} h at 25 fps), "
          f"{args.dim}-d, noise {args.noise} ({t_sim:.0f} s)")

    t0 = time.monotonic()
    st, config = resolve_settings()
    if args.st_model == "oracle":
        from st_model.estimate import oracle_st_model
        model = oracle_st_model(train, st, None)
    else:
        model = estimate_st_model(train, st)
    tables = STTables.from_model(model)
    print(f"ST model ({args.st_model}): {model.nodes.size} nodes, "
          f"bins of {model.grid.width} frames, "
          f"{time.monotonic() - t0:.0f} s")

    t0 = time.monotonic()
    index = build_index(model, gallery, "bench", {})
    t_sort = time.monotonic() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        write_index(index, os.path.join(tmp, "index"))
        t_write = time.monotonic() - t0
    print(f"index build: sort {t_sort:.2f} s, write {t_write:.2f} s "
          f"({len(gallery)} rows, embedding not included: simulated)")

    search = GallerySearch(index, tables, config)
    lr = tables.log_ratio[:-1, :-1]
    print(f"vision term bound V = w(1 - mean)/scale = {search.v_max:.2f}; ST log-ratio "
          f"min {lr.min():.2f}, median {np.median(lr):.2f}, max {lr.max():.2f} (a row "
          f"outside the windows is skipped only when V + its log-ratio < the k-th score)")
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.choice(len(query), min(args.queries, len(query)), replace=False))
    q = query.subset(pick)
    no_reach = measure(search, q, args.top_k, windows_only=True)
    report("no reach (max_delta none, the default)", no_reach, len(gallery), args.top_k)
    if args.max_delta:
        model.params["max_delta"] = args.max_delta
        reach_search = GallerySearch(index, STTables.from_model(model), config)
        reach = measure(reach_search, q, args.top_k)
        report(f"reach max_delta {args.max_delta} frames "
               f"({args.max_delta / 25 / 60:.0f} min at 25 fps)", reach, len(gallery),
               args.top_k)
        print(f"top-1 a true match: {reach['true_top1']} of {len(q)} queries with the "
              f"reach, {no_reach['true_top1']} without; top-{args.top_k} identical to "
              f"the no-reach exhaustive scan: {sum(a == b for a, b in zip(reach['exact'], no_reach['exact']))}"
              f" of {len(q)}")
        print(f"SUMMARY p50 x{ratio(reach, 50):.1f} with the reach, x{ratio(no_reach, 50):.1f}"
              f" without (pruned vs exhaustive, same run)")


def measure(search, q, k, windows_only=False):
    """Per query: pruned and exhaustive latency, rows scored, passes, identical top-k,
    whether the exhaustive top-1 is a true match; optionally the windows-only search."""
    scorer = search.scorer(q)
    gallery = search.index.rows
    out = {k_: [] for k_ in ("lat_p", "lat_e", "lat_w", "scored", "scored_w", "passes",
                             "exact", "same", "same_w", "recall_w")}
    out["true_top1"] = 0
    for qi in range(len(q)):
        if windows_only:    # windows only (LR >= TAU0), no certificate: what exactness costs
            t0 = time.perf_counter()
            a = int(scorer.q_base[qi] // ((search.m + 1) * search.grid.n_bins))
            if a < search.m:
                sl = search.windows(a, int(q.frame[qi]), TAU0)
            else:
                sl = [(0, len(gallery))]
            sc, rows = search._score_slices(scorer, qi, sl, None)
            top_w, _ = top_rows(sc, rows, search.index.name_rank, k)
            out["lat_w"].append(time.perf_counter() - t0)
            out["scored_w"].append(rows.size)
        t0 = time.perf_counter()
        p = search.search_one(scorer, qi, k, pruned=True)
        out["lat_p"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        e = search.search_one(scorer, qi, k, pruned=False)
        out["lat_e"].append(time.perf_counter() - t0)
        exact = [h.row for h in e.hits]
        out["exact"].append(exact)
        out["same"].append([h.row for h in p.hits] == exact)
        out["true_top1"] += bool(exact) and gallery.pid[exact[0]] == q.pid[qi]
        if windows_only:
            out["same_w"].append(list(top_w) == exact)
            out["recall_w"].append(len(set(top_w) & set(exact)) / max(1, len(exact)))
        out["scored"].append(p.rows_scored)
        out["passes"].append(p.passes)
    for key in ("lat_p", "lat_e", "lat_w"):
        out[key] = np.array(out[key]) * 1e3
    out["passes"] = np.array(out["passes"])
    return out


def ratio(m, pct):
    return np.percentile(m["lat_e"], pct) / np.percentile(m["lat_p"], pct)


def report(title, m, n, k):
    lat_e, lat_p, passes = m["lat_e"], m["lat_p"], m["passes"]
    print(f"-- {title}: {len(lat_e)} queries, top-{k}")
    print(f"exhaustive scan : p50 {np.percentile(lat_e, 50):8.2f} ms  "
          f"p99 {np.percentile(lat_e, 99):8.2f} ms  ({n} rows a query)")
    print(f"pruned          : p50 {np.percentile(lat_p, 50):8.2f} ms  "
          f"p99 {np.percentile(lat_p, 99):8.2f} ms  (median {np.median(m['scored']):.0f} "
          f"rows scored, {np.mean(m['scored']) / n * 100:.3f} % on average)")
    print(f"speed-up: p50 x{ratio(m, 50):.1f}, p99 x{ratio(m, 99):.1f}, "
          f"mean x{lat_e.mean() / lat_p.mean():.1f}")
    print(f"certified by the windows: {(passes == 1).sum()} in one pass, "
          f"{((passes > 1)).sum()} after widening, {(passes == 0).sum()} scans (of the "
          f"reach, or of every row without one)")
    print(f"identical top-{k}: {sum(m['same'])} of {len(lat_e)} queries")
    if len(m["lat_w"]):
        lat_w = m["lat_w"]
        print(f"windows only, no certificate (not offered by `tfusion search`): p50 "
              f"{np.percentile(lat_w, 50):.2f} ms, p99 {np.percentile(lat_w, 99):.2f} ms "
              f"(x{np.percentile(lat_e, 50) / np.percentile(lat_w, 50):.1f} at p50; median "
              f"{np.median(m['scored_w']):.0f} rows scored); identical top-{k} "
              f"{sum(m['same_w'])} of {len(lat_e)}, mean recall@{k} of the exhaustive top-"
              f"{k} {np.mean(m['recall_w']):.3f}")

if __name__ == "__main__":
    main()
