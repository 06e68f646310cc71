#!/usr/bin/env python3
"""Render a run report and open it in a real headless browser (Debian's `chromium`).

The report comes from
- by default, a small SynthReID target (preset `tiny`, rendered here in ~1 s and
  ingested into tf.Examples by the ReidExampleGen Beam job): round 0 ranks with colour
  histograms, round 1 with the same histograms after an LDA trained on the labelled
  source domain (synth/baseline.py), each fused with an ST model estimated on the
  target's train split (`pipeline.fuse_job.fuse`); the gate is a demonstration one
  (fused rank-1 of the last round >= --gate-rank1, no loss beyond 1 point vs round 0);
- or, with --run-out DIR, the report.html a `tfusion run` (or `tfusion demo`) wrote
  in its output folder, as it is.

Chromium then runs with the network disabled (dead proxy, every host unresolvable) and
a NetLog: it must render the page (--dump-dom shows every image), take the
screenshot, and request no URL other than file: and data:. The full-page screenshot
must show both frame colours (true matches green, others red).

usage: python benchmarks/check_report.py [--work DIR] [--preset tiny] [--run-out DIR]
       [--chromium PATH] [--queries 6]
Not part of CI: it needs `apt-get install chromium`.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.report_data import GateCheck, GateDecision, evaluate_round  # noqa: E402
from pipeline.report_html import write_run_report  # noqa: E402
from pipeline.report_pictures import MATCH_COLOUR, WRONG_COLOUR  # noqa: E402
from st_model.config import resolve_settings  # noqa: E402
from core.features import make_feature_set  # noqa: E402

BROWSER_FLAGS = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--hide-scrollbars"]
NO_NETWORK = ["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
              "--host-resolver-rules=MAP * ~NOTFOUND"]
LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:", "chrome-extension:",
                 "devtools:")
WINDOW = (1400, 2000)


# ------------------------------------------------------------------ the report

def _target_features(listing, project=None):
    from synth.baseline import image_features
    out = {}
    for split, recs in listing.splits.items():
        x = image_features([r.path for r in recs])
        if project is not None:
            x = project(x)
        col = lambda k: np.array([getattr(r.point, k) for r in recs])  # noqa: E731
        out[split] = make_feature_set(x, col("camera"), col("frame"), col("sequence"),
                                      col("pid"), np.array([r.name for r in recs]),
                                      source=f"{split} ({listing.root})")
    return out


def synthetic_rounds(work, preset, n_queries):
    """Render + ingest a SynthReID target, fuse two feature rounds; RoundResults."""
    from core.datasets import read_dataset_folder
    from pipeline.beam_options import make_pipeline
    from pipeline.fuse_job import fuse
    from pipeline.reid_examples import ingest_folder
    from schemas import schema_path
    from st_model.st_artifact import FILENAME, PLOT_FILENAME
    from synth.baseline import dataset_features, fit_lda
    from synth.generate import generate
    dirs = generate(preset, os.path.join(work, "data"), seed=0, force=True,
                    preview=False, progress=False).dataset_dirs
    examples = os.path.join(work, "examples", "target")
    ingest_folder(dirs["target"], examples, make_pipeline(), schema_path("reid_examples"))
    listing = read_dataset_folder(dirs["target"])
    source = dataset_features(dirs["source"])["train"]
    lda = fit_lda(source.features, source.pid, dim=32)
    rounds = []
    for r, (what, project) in enumerate((("colour histograms", None),
                                         ("LDA trained on the source", lda))):
        feats = _target_features(listing, project)
        fusion = os.path.join(work, "fusion", f"round{r}")
        fuse(feats["train"], feats["query"], feats["gallery"], resolve_settings(), fusion,
             ranking=False)
        rounds.append(evaluate_round(
            f"round {r}: {what}", feats["query"], feats["gallery"],
            os.path.join(fusion, FILENAME), resolve_settings().rule,
            st_plot=os.path.join(fusion, PLOT_FILENAME), examples_uri=examples,
            n_queries=n_queries, train=feats["train"]))
    return rounds


def demonstration_gate(rounds, bound):
    last, first = rounds[-1].fused["rank1"], rounds[0].fused["rank1"]
    return GateDecision(
        blessed=last >= bound and last - first >= -1.0,
        checks=[GateCheck("fused rank-1 (absolute)", last, bound, ">="),
                GateCheck("fused rank-1 change vs baseline", last - first, -1.0, ">=",
                          baseline=first)],
        baseline=f"{rounds[0].name} (demonstration)", candidate=rounds[-1].name)


# ------------------------------------------------------------------ the browser

def run_chromium(binary, html_path, profile, *extra, timeout=180):
    flags = BROWSER_FLAGS + NO_NETWORK + [f"--user-data-dir={profile}"]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")
    return subprocess.run([binary, *flags, *extra, "file://" + os.path.abspath(html_path)],
                          capture_output=True, text=True, timeout=timeout)


def page_requests(netlog_path):
    """Non-local URLs the page itself asked for, from a Chromium NetLog (None: no
    readable log). The page's requests carry its origin as initiator ("null" for a
    file: page); the browser's own background requests carry "not an origin"."""
    if not os.path.isfile(netlog_path):
        return None
    with open(netlog_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    try:
        log = json.loads(text)
    except ValueError:           # a log cut short when the browser exited
        try:
            log = json.loads(text.rstrip().rstrip(",") + "]}")
        except ValueError:
            return None
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = {e["params"]["url"] for e in log.get("events", [])
            if e.get("type") == start and "url" in e.get("params", {})
            and e["params"].get("initiator") != "not an origin"}
    return sorted(u for u in urls if not u.startswith(LOCAL_SCHEMES))


def colour_pixels(png_path, hex_colour, tol=10):
    from PIL import Image
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    with Image.open(png_path) as im:
        px = np.asarray(im.convert("RGB"), np.int64)
    return int((np.abs(px - target).max(axis=2) <= tol).sum())


CONTROL_URLS = ["http://report-check.invalid/pixel.png",
                "https://report-check.invalid/style.css"]
CONTROL_PAGE = ('<!DOCTYPE html><html><head><link rel="stylesheet" href="'
                f'{CONTROL_URLS[1]}"></head><body><img src="{CONTROL_URLS[0]}">'
                'control</body></html>')


def _screenshot(binary, html_path, png, width, height, expect=None):
    """Screenshot `html_path` with a NetLog; (ok, description)."""
    netlog = png[:-len(".png")] + "_netlog.json"
    for p in (png, netlog):
        if os.path.exists(p):
            os.remove(p)
    with tempfile.TemporaryDirectory() as profile:
        t0 = time.monotonic()
        res = run_chromium(binary, html_path, profile, f"--screenshot={png}",
                           f"--window-size={width},{height}", f"--log-net-log={netlog}")
    requested = page_requests(netlog)
    ok = res.returncode == 0 and os.path.isfile(png) and requested == (expect or [])
    line = (f"exit {res.returncode}, {time.monotonic() - t0:.1f} s, png "
            f"{'written' if os.path.isfile(png) else 'MISSING'}: {png}; external requests "
            f"by the page: {'no NetLog' if requested is None else (requested or 'none')}")
    if res.returncode != 0:
        line += "\n  stderr: " + res.stderr.strip()[-600:]
    return ok, line


def check_in_browser(binary, html_path, work, full_height):
    """Render, dump the DOM and screenshot `html_path`; returns (ok, lines)."""
    lines, ok = [], True
    with open(html_path, encoding="utf-8") as f:
        n_img = f.read().count("<img ")
    with tempfile.TemporaryDirectory() as profile:
        dom = run_chromium(binary, html_path, profile, "--dump-dom")
    rendered = dom.returncode == 0 and dom.stdout.count("<img ") == n_img
    ok &= rendered
    lines.append(f"dump-dom: exit {dom.returncode}, {dom.stdout.count('<img ')} of "
                 f"{n_img} <img> elements in the rendered DOM -> "
                 f"{'rendered' if rendered else 'NOT RENDERED'}")
    shots = {}
    for name, (w, h) in (("screenshot", WINDOW), ("fullpage", (WINDOW[0], full_height))):
        shots[name] = os.path.join(work, f"report_{name}.png")
        good, line = _screenshot(binary, html_path, shots[name], w, h)
        ok &= good
        lines.append(f"{name} {w}x{h}: {line}")
    # the NetLog check must see what it looks for: a page with two external references
    control = os.path.join(work, "control.html")
    with open(control, "w") as f:
        f.write(CONTROL_PAGE)
    seen, line = _screenshot(binary, control, os.path.join(work, "control.png"), 400,
                             300, expect=sorted(CONTROL_URLS))
    ok &= seen
    lines.append(f"control page with 2 external references: {line} -> the NetLog check "
                 f"{'detects them' if seen else 'DOES NOT detect them'}")
    if os.path.isfile(shots["fullpage"]):
        green = colour_pixels(shots["fullpage"], MATCH_COLOUR)
        red = colour_pixels(shots["fullpage"], WRONG_COLOUR)
        ok &= green > 0 and red > 0
        lines.append(f"full page: {green} px of the true-match green, {red} px of the "
                     f"wrong-match red")
    return ok, lines


def check_run_report(run_out, binary, work, queries):
    """The browser check of a finished `tfusion run` folder's own report.html."""
    import json
    with open(os.path.join(run_out, "run_summary.json")) as f:
        summary = json.load(f)
    path = os.path.join(run_out, "report.html")
    print(f"report: {path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    for r in summary["rounds"]:
        print(f"  round {r['round']}: vision rank-1 {r['vision']['rank1']:.1f} | fused "
              f"rank-1 {r['fused']['rank1']:.1f} (TFMA)")
    if not binary:
        print("chromium: not found (apt-get install chromium); browser check skipped")
        return 2
    full_height = 700 + len(summary["rounds"]) * (900 + queries * 330)
    ok, lines = check_in_browser(binary, path, work, min(full_height, 16000))
    for line in lines:
        print("  " + line)
    print(f"chromium rendered the report: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", help="output folder (default: a new temp folder)")
    ap.add_argument("--preset", default="tiny", help="SynthReID preset (default tiny)")
    ap.add_argument("--run-out", help="check the report.html that `tfusion run` wrote in "
                                      "this output folder, as it is")
    ap.add_argument("--queries", type=int, default=6, help="ranked queries per round")
    ap.add_argument("--gate-rank1", type=float, default=20.0,
                    help="demonstration gate: lower bound of the last fused rank-1")
    ap.add_argument("--chromium", default=shutil.which("chromium")
                    or shutil.which("chromium-browser"))
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="check_report_")
    os.makedirs(work, exist_ok=True)
    t0 = time.monotonic()
    if args.run_out:
        return check_run_report(args.run_out, args.chromium, work, args.queries)
    rounds = synthetic_rounds(work, args.preset, args.queries)
    gate = demonstration_gate(rounds, args.gate_rank1)
    path = write_run_report(os.path.join(work, "report.html"), rounds, gate,
                            title="TFusion run report (check_report.py)",
                            links={"work folder": work})
    print(f"report: {path} ({os.path.getsize(path) / 1e6:.2f} MB, "
          f"{time.monotonic() - t0:.1f} s to build)")
    for r in rounds:
        print(f"  {r.name}: vision rank-1 {r.vision['rank1']:.1f} mAP "
              f"{r.vision['mAP']:.1f} | fused rank-1 {r.fused['rank1']:.1f} mAP "
              f"{r.fused['mAP']:.1f}")
    if not args.chromium:
        print("chromium: not found (apt-get install chromium); browser check skipped")
        return 2
    version = subprocess.run([args.chromium, "--version"], capture_output=True,
                             text=True).stdout.strip()
    full_height = 700 + len(rounds) * (900 + args.queries * 330)
    ok, lines = check_in_browser(args.chromium, path, work, min(full_height, 16000))
    print(f"browser: {version}")
    for line in lines:
        print("  " + line)
    print(f"chromium rendered the report: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
