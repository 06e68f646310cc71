"""What a RankNet round learns from the fused ranking, read against its controls and bound.

For each seed: the demo target is rendered, the source pretrained and round 0 embedded
and fused once (cached under --work). Then one RankNet round from the same base model,
the same steps and seed, on triples drawn from the anchors of 80 % of the train images,
with
  real       the product's triples and targets (P̄ from the fused ranking);
  constant   the same triples, every target ½: no ranking information at all (what
             fine-tuning on target images alone gives);
  shuffled   the same triples, targets permuted across triples;
  oracle     ORACLE BOUND (benchmarks only: reads target train identities): for each
             anchor of the same triples, i a true cross-camera match, j a wrong
             identity from its fused top-N, target 1;
  paper      the paper's formulation (verification-head score, near 1-25 / far 25-50,
             two thirds frozen, lr 1e-4) with real targets.
Each trained model embeds the target again and its ST model is re-estimated (as the
pipeline's next round does); printed: vision and fused rank-1 / mAP, and the order
accuracy of the embedding on HELD-OUT triples (anchors never trained on): against the
teacher's targets, and against true identities (triples where exactly one of i, j is
the anchor's identity). --rounds 2 adds a second real round from the real round-1
model and its fused ranking.

    python benchmarks/bench_ranknet.py --work /tmp/rn --seeds 0 1 2 [--rounds 2]
        [--variants real constant shuffled oracle paper] [--preset demo]

Figures are mean ± sd over the seeds. Re-running with the same --work reuses the
round-0 state and finished variants (delete a variant's folder to redo it).
"""
import argparse
import json
import os
import sys
import time
from dataclasses import replace
from typing import Dict, List, Tuple

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VARIANTS = ("real", "constant", "shuffled", "oracle", "paper")
HOLDOUT = 0.2


def log(msg: str) -> None:
    print(f"[bench_ranknet {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def round0(work: str, preset: str, seed: int, pretrain_steps: int) -> Dict[str, str]:
    """Rendered domains, examples, pretrained model, round-0 features and fusion."""
    from pipeline.prepared_data import ingest_domain, render_data
    from trainer.config import PretrainConfig
    from trainer.data import split_files
    from trainer.pretrain import pretrain
    out = os.path.join(work, f"seed{seed}")
    dirs = render_data(out, preset, seed, fresh=False)
    examples = {d: os.path.join(out, "examples", d) for d in ("source", "target")}
    for d in examples:
        ingest_domain(dirs[d], examples[d], fresh=False)
    model = os.path.join(out, "models", "round0_pretrained")
    if not os.path.isfile(os.path.join(model, "saved_model.pb")):
        log(f"seed {seed}: pretraining ({pretrain_steps} steps)")
        pretrain(split_files(examples["source"], "train"),
                 PretrainConfig(steps=pretrain_steps, seed=seed, verification=True),
                 export_dir=model)
    state = {"target": examples["target"], "model": model,
             "features": os.path.join(out, "features", "round0"),
             "fusion": os.path.join(out, "fusion", "round0")}
    evaluate_model(state["model"], state["target"], state["features"], state["fusion"])
    return state


def fuse_round(features_dir: str, fusion_dir: str) -> Dict:
    """ST model + fusion + evaluation + fused train ranking of one round's features
    (default settings, as the pipeline's rounds)."""
    from st_model.config import resolve_settings
    from core.features import load_features, split_features_path
    from pipeline.fuse_job import fuse
    from core.datasets import SPLITS
    feats = {s: load_features(split_features_path(features_dir, s)) for s in SPLITS}
    return fuse(feats["train"], feats["query"], feats["gallery"], resolve_settings(),
                fusion_dir)


def evaluate_model(model: str, target: str, features: str, fusion: str) -> Dict:
    """Embed the target with `model`, re-estimate its ST model and fuse (cached)."""
    from trainer.embed import embed_examples_to_dir
    done = os.path.join(fusion, "metrics.json")
    if not os.path.isfile(done):
        embed_examples_to_dir(model, target, features)
        fuse_round(features, fusion)
    with open(done) as f:
        return json.load(f)


def split_anchors(ranking, seed: int) -> Tuple[object, object]:
    """(trained, held-out) rankings: the product's held-out choice of HOLDOUT of the
    anchors, each part holding only its own anchors' records (a stricter protocol than
    the product's: the trained part never sees a held-out anchor's neighbour list, so
    k-reciprocity is judged within each part)."""
    from st_model.fused_ranking import FusedRanking
    from trainer.triplets import held_out_anchors
    held = held_out_anchors(ranking.names, HOLDOUT, seed)

    def part(keep: bool):
        idx = [k for k, n in enumerate(ranking.names) if (n in held) == keep]
        return FusedRanking(ranking.uri, [ranking.names[k] for k in idx],
                            [ranking.neighbours[k] for k in idx],
                            [ranking.scores[k] for k in idx])
    return part(False), part(True)


def oracle_triples(trip, table, ranking, rng: np.random.Generator):
    """ORACLE BOUND: per anchor of `trip`, i = a true cross-camera match (same pid,
    other camera), j = a wrong identity from the anchor's fused list; target 1, the
    order randomised as the product's sampler does. Anchors with no true cross-camera
    match keep their fused triple and target."""
    index_of = table.index_of()
    lists = {index_of[n]: [index_of[m] for m in nb if m in index_of]
             for n, nb in zip(ranking.names, ranking.neighbours) if n in index_of}
    pid, cam = table.pid, table.camera
    rows, target = trip.rows().copy(), trip.target.copy()
    for t, a in enumerate(trip.anchor):
        true = np.flatnonzero((pid == pid[a]) & (cam != cam[a]) & (pid[a] > 0))
        wrong = [b for b in lists.get(int(a), []) if pid[b] != pid[a]]
        if len(true) == 0 or not wrong:
            continue
        i, j = int(rng.choice(true)), int(rng.choice(wrong))
        if rng.random() < 0.5:
            rows[t, 1:], target[t] = (i, j), 1.0
        else:
            rows[t, 1:], target[t] = (j, i), 0.0
    return rows, target


def true_order(rows: np.ndarray, pid: np.ndarray) -> np.ndarray:
    """1 / 0 where exactly one of i, j is the anchor's identity (i / j), else ½."""
    a, i, j = (pid[rows[:, c]] for c in range(3))
    t = np.full(len(rows), 0.5, np.float32)
    t[(i == a) & (j != a)] = 1.0
    t[(j == a) & (i != a)] = 0.0
    return t


def run_variant(name: str, state: Dict[str, str], out: str, seed: int, steps: int,
                table, ranking, held, overrides: Dict) -> Dict:
    """One variant trained from state['model'] and evaluated (cached in `out`), with
    its held-out order figures."""
    summary_file = os.path.join(out, "variant.json")
    if not os.path.isfile(summary_file):
        train_variant(name, state, out, seed, steps, table, ranking, overrides, summary_file)
    with open(summary_file) as f:
        summary = json.load(f)
    feats = load_train_features(os.path.join(out, "features"), table)
    return {**summary, **held_out_figures(feats, held, table)}


def train_variant(name: str, state: Dict[str, str], out: str, seed: int, steps: int,
                  table, ranking, overrides: Dict, summary_file: str) -> None:
    from trainer import ranknet, triplets
    from trainer.config import PAPER_RANKNET, RankNetConfig
    config = RankNetConfig.from_dict({**overrides, "steps": steps, "seed": seed})
    if name == "paper":
        config = replace(config, **PAPER_RANKNET)
    trained, _ = split_anchors(ranking, seed)
    trip = triplets.sample_for_config(trained, table, config, "target train split")
    rows, target = trip.rows(), trip.target
    rng = np.random.default_rng(seed)
    if name == "constant":
        target = np.full_like(target, 0.5)
    elif name == "shuffled":
        target = rng.permutation(target)
    elif name == "oracle":
        rows, target = oracle_triples(trip, table, trained, rng)
    model = os.path.join(out, "model")
    log(f"{out}: {name}, {len(rows)} triples, mean target {target.mean():.3f}")
    t0 = time.monotonic()
    result = ranknet.train_ranknet(table.images, rows, target, state["model"], config,
                                   export_dir=model)
    minutes = (time.monotonic() - t0) / 60
    metrics = evaluate_model(model, state["target"], os.path.join(out, "features"),
                             os.path.join(out, "fusion"))
    summary = {"variant": name, "config": config.to_dict(), "triples": int(len(rows)),
               "train_minutes": round(minutes, 2), "steps": result.get("steps"),
               "train_order_accuracy": float(result["final"].get("order_accuracy", np.nan)),
               "vision": metrics["vision"], "fused": metrics["fusion"]}
    with open(summary_file, "w") as f:
        json.dump(summary, f, indent=2, default=str)


def held_out_triples(held, table, seed: int):
    """The product's triples from the held-out anchors (teacher targets)."""
    from trainer import triplets
    from trainer.config import RankNetConfig
    config = RankNetConfig(seed=seed + 1, steps=100, epoch_steps=100)
    return triplets.sample_for_config(held, table, config, "target train split")


def held_out_figures(feats: np.ndarray, held, table) -> Dict[str, float]:
    from trainer.ranknet import held_out_order_accuracy
    rows, target = held
    truth = true_order(rows, table.pid)
    return {"held_out_order_accuracy": held_out_order_accuracy(feats, rows, target),
            "held_out_true_order_accuracy": held_out_order_accuracy(feats, rows, truth),
            "held_out_triples": int(len(rows)),
            "held_out_true_triples": int((truth != 0.5).sum())}


def load_train_features(features_dir: str, table) -> np.ndarray:
    """The train embeddings in the row order of `table`."""
    from core.features import load_features, split_features_path
    f = load_features(split_features_path(features_dir, "train"))
    pos = {n: k for k, n in enumerate(f.name)}
    return f.features[[pos[n] for n in table.name]]


def bench_seed(work: str, preset: str, seed: int, steps: int, pretrain_steps: int,
               variants: List[str], rounds: int, overrides: Dict, tag: str,
               report_only: bool = False) -> Dict[str, Dict]:
    from trainer import data, triplets
    state = round0(work, preset, seed, pretrain_steps)
    table = data.read_split(data.split_files(state["target"], "train"))
    out = os.path.join(work, f"seed{seed}")
    ranking0 = triplets.read_fused_ranking(state["fusion"])
    held = _held(ranking0, table, seed)  # the same held-out triples for every variant
    m0 = evaluate_model(**_paths(state))
    rows = {"round0": {"vision": m0["vision"], "fused": m0["fusion"],
                       **held_out_figures(load_train_features(state["features"], table),
                                          held, table)}}
    for name in variants:
        if report_only and not os.path.isfile(
                os.path.join(out, tag, "round1", name, "variant.json")):
            continue
        rows[name] = run_variant(name, state, os.path.join(out, tag, "round1", name), seed,
                                 steps, table, ranking0, held, overrides)
    if rounds >= 2 and "real" in rows and not (report_only and not os.path.isfile(
            os.path.join(out, tag, "round2", "real", "variant.json"))):
        r1 = os.path.join(out, tag, "round1", "real")
        state2 = {"target": state["target"], "model": os.path.join(r1, "model"),
                  "features": os.path.join(r1, "features"), "fusion": os.path.join(r1, "fusion")}
        rows["real_round2"] = run_variant(
            "real", state2, os.path.join(out, tag, "round2", "real"), seed, steps, table,
            triplets.read_fused_ranking(state2["fusion"]), held, overrides)
    return rows


def _paths(state: Dict[str, str]) -> Dict[str, str]:
    return {k: state[k] for k in ("model", "target", "features", "fusion")}


def _held(ranking0, table, seed: int):
    """(rows, targets) of the held-out triples of round 0's ranking."""
    _, held = split_anchors(ranking0, seed)
    trip = held_out_triples(held, table, seed)
    return trip.rows(), trip.target


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=300, help="RankNet steps (demo: 300)")
    ap.add_argument("--pretrain-steps", type=int, default=400)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--rounds", type=int, default=2, choices=(1, 2))
    ap.add_argument("--ranknet", default="{}",
                    help="JSON of RankNetConfig fields overriding the product's defaults "
                         "for every variant but paper (to compare designs)")
    ap.add_argument("--report", action="store_true",
                    help="print the table of the finished variants only (train nothing)")
    ap.add_argument("--tag", default="default",
                    help="sub-folder of each seed's runs (one per --ranknet design)")
    args = ap.parse_args()
    overrides = json.loads(args.ranknet)
    os.makedirs(args.work, exist_ok=True)
    per_seed = {s: bench_seed(args.work, args.preset, s, args.steps, args.pretrain_steps,
                              args.variants, args.rounds, overrides, args.tag, args.report)
                for s in args.seeds}
    with open(os.path.join(args.work, f"bench_ranknet_{args.tag}.json"), "w") as f:
        json.dump(per_seed, f, indent=2)
    print_table(per_seed, args.seeds)
    return 0


def print_table(per_seed: Dict[int, Dict[str, Dict]], seeds: List[int]) -> None:
    """One row per variant: mean ± sd over the seeds that ran it (n)."""
    names = list(dict.fromkeys(n for s in seeds for n in per_seed[s]))

    def col(n, get, among=None):
        return np.array([get(per_seed[s][n]) for s in (among or seeds) if n in per_seed[s]],
                        np.float64)

    def fmt(v):
        return f"{np.nanmean(v):5.1f} ± {np.nanstd(v, ddof=1) if v.size > 1 else 0:3.1f}"
    print(f"\nRankNet round, seeds {seeds}: mean ± sd over the n seeds that ran the "
          "variant; order accuracy on held-out anchors (embedding cosine), % of triples")
    print(f"{'variant':<13} {'n':>2} {'vision r1':>12} {'vision mAP':>12} {'fused r1':>12} "
          f"{'fused mAP':>12} {'order (teacher)':>16} {'order (truth)':>14}")
    for n in names:
        label = "oracle BOUND" if n == "oracle" else n
        print(f"{label:<13} {len(col(n, lambda r: 0)):>2} "
              f"{fmt(col(n, lambda r: r['vision']['rank1']))} "
              f"{fmt(col(n, lambda r: r['vision']['mAP']))} "
              f"{fmt(col(n, lambda r: r['fused']['rank1']))} "
              f"{fmt(col(n, lambda r: r['fused']['mAP']))} "
              f"{fmt(100 * col(n, lambda r: r['held_out_order_accuracy'])):>16} "
              f"{fmt(100 * col(n, lambda r: r['held_out_true_order_accuracy'])):>14}")

    def gain(n, ref="round0"):
        both = [s for s in seeds if n in per_seed[s] and ref in per_seed[s]]
        return (col(n, lambda r: r["vision"]["rank1"], both)
                - col(ref, lambda r: r["vision"]["rank1"], both)), both
    print("\nvision rank-1 gain over round 0 (per seed): " + "; ".join(
        f"{n} {g.mean():+.1f} ({', '.join(f'{x:+.1f}' for x in g)})"
        for n in names if n not in ("round0", "real_round2") for g, _ in [gain(n)]))
    if "constant" in names:
        d, both = gain("real", "constant")
        print(f"real − no-information control: {d.mean():+.1f} vision rank-1 points "
              f"(seeds {both}: {', '.join(f'{x:+.1f}' for x in d)})")
    if "oracle" in names:
        (g, both), (o, _) = gain("real"), gain("oracle")
        both_o = [s for s in both if "oracle" in per_seed[s]]
        g = col("real", lambda r: r["vision"]["rank1"], both_o) - col(
            "round0", lambda r: r["vision"]["rank1"], both_o)
        print(f"real gain / oracle-bound gain: {100 * g.mean() / max(o.mean(), 1e-9):.0f} % "
              f"(seeds {both_o})")
    if "real_round2" in names:
        d, both = gain("real_round2", "real")
        f = (col("real_round2", lambda r: r["fused"]["rank1"], both)
             - col("real", lambda r: r["fused"]["rank1"], both))
        print(f"round 2 vs round 1 (real): vision {d.mean():+.1f} (per seed "
              f"{', '.join(f'{x:+.1f}' for x in d)}), fused {f.mean():+.1f}")


if __name__ == "__main__":
    sys.exit(main())
