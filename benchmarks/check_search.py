"""`tfusion index` + `tfusion search` on a finished run: index the target gallery with
the pushed bundle, search the run report's ranked queries of the gated round, and
compare each top-10 with the report's fused ranked list (run_summary.report_rounds's
ranked_queries, same seed).

    python benchmarks/check_search.py --run demo_out [--index /tmp/demo_index]
"""
import argparse
import contextlib
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline.cli import main as tfusion  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--index", default=None, help="index folder (built when missing)")
    args = ap.parse_args()
    from pipeline.component_io import load_split_features
    from pipeline.report_data import ranked_queries
    from core.dataclass_dict import from_dict
    from st_model.config import FusionRule
    from st_model.scoring import STTables
    from st_model.st_artifact import load_st_model
    summary = json.load(open(os.path.join(args.run, "run_summary.json")))
    bundle = summary["push"]["destination"]
    examples = summary["target_examples"]
    index = args.index or os.path.join(args.run, "gallery_index")
    if not os.path.exists(index):
        t0 = time.monotonic()
        assert tfusion(["index", "--bundle", bundle, "--dataset", examples,
                        "--output", index]) == 0
        print(f"index built in {time.monotonic() - t0:.1f} s")
    row = summary["rounds"][-1]
    query, gallery = load_split_features(row["features"], ("query", "gallery"))
    tables = STTables.from_model(load_st_model(row["st_model"]))
    config = from_dict(FusionRule, summary["config"]["fusion_rule"], "run_summary.json")
    ranked = ranked_queries(query, gallery, tables, config, seed=summary["config"]["seed"])
    data = os.path.join(args.run, "data")
    qdir = next(os.path.join(r, "query") for r, d, _ in os.walk(data) if "query" in d
                and "target" in r) if os.path.isdir(data) else None
    listing = os.path.join(args.run, "report_queries.txt")
    with open(listing, "w") as f:
        # absolute: a list's relative paths are read from the list's own folder
        f.write("\n".join(os.path.abspath(os.path.join(qdir, r.name)) for r in ranked) + "\n")
    out = io.StringIO()
    t0 = time.monotonic()
    with contextlib.redirect_stdout(out):
        rc = tfusion(["search", "--index", index, "--bundle", bundle, "--query", listing,
                      "--json", "--protocol"])
    assert rc == 0
    print(f"searched {len(ranked)} queries in {time.monotonic() - t0:.1f} s")
    result = json.loads(out.getvalue())
    same = 0
    for r, q in zip(ranked, result):
        mine = [h["name"] for h in q["hits"]]
        report = [e.name for e in r.fused]
        same += mine == report
        print(f"{r.name}: {'same top-10' if mine == report else 'DIFFERENT'}"
              f"{'' if mine == report else f' search {mine} report {report}'}")
    print(f"identical top-10 with the run report's fused list: {same} of {len(ranked)}")


if __name__ == "__main__":
    main()
