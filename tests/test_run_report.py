"""The run report: ranked results follow the evaluation's scoring and protocol, and the
HTML shows the given figures, framed pictures and gate decision, self-contained; the
images the ST model never saw and a train split without identities are shown."""
import os
import re
from dataclasses import replace
from html.parser import HTMLParser

import numpy as np
import pytest

from pipeline.report_data import (GateCheck, GateDecision, RoundResult, attach_images,
                                  evaluate_round, ranked_queries)
from pipeline.report_html import write_run_report
from pipeline.report_pictures import MATCH_COLOUR, WRONG_COLOUR, load_images
from st_model import metrics
from st_model.config import FusionRule
from st_model.evaluation import evaluate
from st_model.st_artifact import save_st_model
import report_case


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    sets = report_case.build_case()
    tables = report_case.st_tables(sets["train"])
    uri = report_case.write_examples(str(tmp_path_factory.mktemp("examples")),
                                     {s: sets[s] for s in ("query", "gallery")})
    return sets, tables, uri


class _Page(HTMLParser):
    """Every element's tag and attributes with its text, in document order."""

    def __init__(self, text):
        super().__init__()
        self.elements, self.stack = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        el = {"tag": tag, "attrs": dict(attrs), "text": "", "parents": list(self.stack)}
        self.elements.append(el)
        if tag not in ("img", "meta", "br"):
            self.stack.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data

    def find(self, tag=None, **attrs):
        return [e for e in self.elements if (tag is None or e["tag"] == tag)
                and all(e["attrs"].get(k.rstrip("_").replace("_", "-")) == v
                        for k, v in attrs.items())]


def _first_match_rank(score_fn, q, query, gallery):
    """Rank of the first true match of query q, by evaluate_ranking on it alone."""
    res = metrics.evaluate_ranking(lambda qi, gi: score_fn(np.full_like(qi, q), gi),
                                   query.pid[q:q + 1], query.camera[q:q + 1],
                                   gallery.pid, gallery.camera, max_rank=len(gallery))
    return 1 + int(np.argmax(np.array(res.cmc) > 0))


def test_ranked_lists_follow_the_protocol_and_the_evaluated_scoring(case):
    sets, tables, _ = case
    q, g = sets["query"], sets["gallery"]
    config = FusionRule()
    ranked = ranked_queries(q, g, tables, config, n_queries=5, top=10, seed=3)
    assert len(ranked) == 5 and len({r.name for r in ranked}) == 5
    assert [r.name for r in ranked] == [r.name for r in ranked_queries(
        q, g, tables, config, n_queries=5, seed=3)]                       # seeded
    names = list(q.names)
    from st_model.evaluation import score_function
    vision = score_function(q, g, None, config)
    fused = score_function(q, g, tables, config)
    for r in ranked:
        qi = names.index(r.name)
        for entries, fn in ((r.vision, vision), (r.fused, fused)):
            assert len(entries) == 10
            scores = [e.score for e in entries]
            assert scores == sorted(scores, reverse=True)
            for e in entries:
                assert e.pid != -1                                  # no junk
                assert not (e.pid == r.pid and e.camera == r.camera)  # nor own camera
                assert e.match == (e.pid == r.pid)
            first = next(i for i, e in enumerate(entries, 1) if e.match)
            assert first == _first_match_rank(fn, qi, q, g)
    # the fused lists are not the vision lists (the ST model matters here)
    assert any([e.name for e in r.vision] != [e.name for e in r.fused] for r in ranked)


def test_queries_with_a_true_match_come_first_and_vision_only_has_no_fused_row(case):
    sets, _, _ = case
    q, g = sets["query"], sets["gallery"]
    keep = np.flatnonzero(~np.isin(g.pid, [1, 2, 3]) | (g.camera == 1))
    g_cut = g.subset(keep)            # ids 1-3 lose every other-camera image
    ranked = ranked_queries(q, g_cut, None, FusionRule(), n_queries=9)
    assert {r.pid for r in ranked} == set(range(4, 13))
    assert all(r.fused == [] for r in ranked)
    more = ranked_queries(q, g_cut, None, FusionRule(), n_queries=11)
    assert len(more) == 11 and len({r.pid for r in more} & {1, 2, 3}) == 2


def _gate():
    return GateDecision(False, [
        GateCheck("fused rank-1 (absolute)", 41.25, 50.0, ">="),
        GateCheck("fused rank-1 change vs baseline", -2.5, -1.0, ">=", baseline=43.75)],
        baseline="models/round1 (run 7)", candidate="models/round2")


def test_report_shows_the_figures_framed_pictures_and_gate(case, tmp_path):
    sets, tables, uri = case
    config = FusionRule()
    q, g = sets["query"], sets["gallery"]
    ranked = attach_images(ranked_queries(q, g, tables, config, n_queries=4), uri)
    vis, fus = evaluate(q, g, None, config), evaluate(q, g, tables, config)
    plot = str(tmp_path / "st_model.png")
    from st_model.plot import plot_st_model
    plot_st_model(tables.model, sets["train"], plot)
    rounds = [RoundResult("round 0", {"rank1": 12.5, "rank5": 25.0, "rank10": 37.5,
                                      "mAP": 10.125, "queries": 12},
                          {"rank1": 20.0, "rank5": 30.0, "rank10": 40.0, "mAP": 15.5},
                          [12.5] * 50, [20.0] * 50),
              RoundResult.from_rankings("round 1", vis, fus, plot, ranked)]
    path = write_run_report(str(tmp_path / "report.html"), rounds, _gate(),
                            links={"ST model plot": plot})
    text = open(path, encoding="utf-8").read()
    page = _Page(text)

    # the metric numbers shown are the inputs
    for r in rounds:
        table = page.find("table", data_round=r.name)[0]
        for what, m in (("vision", r.vision), ("fused", r.fused)):
            row = next(e for e in page.find("tr", data_ranking=what)
                       if table in e["parents"])
            for key in ("rank1", "rank5", "rank10", "mAP"):
                cell = next(e for e in page.find("td", data_metric=key)
                            if row in e["parents"])
                assert cell["text"] == f"{m[key]:.2f}"
    assert "10.12" in page.find("table", data_round="round 0")[0]["text"]

    # one framed picture per top-10 entry per row, frame colour = truth
    blocks = [e for e in page.find("div") if e["attrs"].get("data-query")]
    assert [b["attrs"]["data-query"] for b in blocks] == [r.name for r in ranked]
    seen = set()
    for block, r in zip(blocks, ranked):
        for what, entries in (("vision", r.vision), ("fused", r.fused)):
            row = next(e for e in page.find("div", data_ranking=what)
                       if block in e["parents"])
            imgs = [e for e in page.find("img") if row in e["parents"]]
            assert len(imgs) == 10
            for img, e in zip(imgs, entries):
                colour = MATCH_COLOUR if e.match else WRONG_COLOUR
                assert img["attrs"]["style"] == f"border-color:{colour}"
                assert img["attrs"]["alt"] == e.name
                seen.add(e.match)
    assert seen == {True, False}

    # self-contained: every image a data URI, no external reference of any kind
    imgs = page.find("img")
    assert len(imgs) == 4 * 21 + 2 + 1                      # + 2 CMC + 1 ST plot
    assert all(i["attrs"]["src"].startswith("data:image/") for i in imgs)
    assert not re.search(r"(src|href)=\"(https?:|//|file:)", text)
    assert "<script" not in text and "<link" not in text and "url(" not in text
    assert page.find("a")[0]["attrs"]["href"] == "st_model.png"

    gate = page.find("div", class_="gate not-blessed")[0]["text"]
    assert "NOT BLESSED" in gate
    checks = [e["text"] for e in page.find("tr", class_="check")]
    assert checks[0] == "fused rank-1 (absolute)41.25≥ 50.00–FAIL"
    assert checks[1] == "fused rank-1 change vs baseline-2.50≥ -1.0043.75FAIL"
    assert "models/round1 (run 7)" in page.find("body")[0]["text"]
    assert not page.find("p", class_="missing-count")


def test_blessed_gate_missing_images_and_bad_inputs(case, tmp_path):
    sets, tables, uri = case
    q, g = sets["query"], sets["gallery"]
    ranked = ranked_queries(q, g, tables, FusionRule(), n_queries=2)   # no images
    r = RoundResult("round 0", {"rank1": 1.0}, {"rank1": 2.0}, ranked=ranked)
    gate = GateDecision(True, [GateCheck("fused rank-1", 60.0, 50.0)])
    page = _Page(open(write_run_report(str(tmp_path / "a.html"), [r], gate),
                      encoding="utf-8").read())
    assert "BLESSED" in page.find("div", class_="gate blessed")[0]["text"]
    assert page.find("tr", class_="check")[0]["text"].endswith("pass")
    assert "No baseline" in page.find("body")[0]["text"]
    assert "42 image(s) could not be shown" in \
        page.find("p", class_="missing-count")[0]["text"]
    assert "CMC curves not recorded" in page.find("body")[0]["text"]
    page = _Page(open(write_run_report(str(tmp_path / "b.html"), [r], None),
                      encoding="utf-8").read())
    assert page.find("p", class_="gate-none")
    with pytest.raises(ValueError, match="no image named nobody.png"):
        load_images(uri, "gallery", ["nobody.png", str(g.names[0])])
    with pytest.raises(FileNotFoundError, match="nothing.png does not exist"):
        write_run_report(str(tmp_path / "c.html"),
                         [RoundResult("r", {}, {}, st_plot=str(tmp_path / "nothing.png"))])
    with pytest.raises(ValueError, match="comparison must be"):
        GateCheck("fused rank-1", 60.0, 50.0, ">")
    with pytest.raises(ValueError, match="at least one round"):
        write_run_report(str(tmp_path / "d.html"), [])


def test_evaluate_round_from_saved_files_matches_the_evaluation(case, tmp_path):
    sets, tables, uri = case
    q, g = sets["query"], sets["gallery"]
    model = save_st_model(tables.model, str(tmp_path / "st_model.npz"))
    r = evaluate_round("round 0", q, g, model, FusionRule(), examples_uri=uri,
                       n_queries=3)
    assert r.fused == evaluate(q, g, tables, FusionRule()).as_dict()
    assert r.vision_cmc[0] == r.vision["rank1"] and len(r.fused_cmc) == 50
    assert len(r.ranked) == 3 and all(e.image for x in r.ranked for e in x.fused)
    assert os.path.isfile(write_run_report(str(tmp_path / "r.html"), [r]))


def test_reranked_round_shows_its_figures_and_ranked_list(case, tmp_path):
    """With rerank on, a round carries the re-ranked figures (st_model.evaluation),
    and the page shows them in its tables and a third ranked row per query, scored
    by the re-ranked fused score; with it off there is no such row or column."""
    from dataclasses import replace

    from st_model.evaluation import evaluate_reranked
    from st_model.fused_rerank import reranked_score_fn
    sets, tables, uri = case
    q, g = sets["query"], sets["gallery"]
    config = replace(FusionRule(), rerank=True, rerank_k1=6, rerank_k2=2)
    model = save_st_model(tables.model, str(tmp_path / "st_model.npz"))
    r = evaluate_round("round 0", q, g, model, config, examples_uri=uri, n_queries=3)
    want = evaluate_reranked(q, g, tables, config, tables.model.frame_rate)[0]
    assert r.reranked == want.as_dict() and list(r.reranked_cmc) == list(want.cmc)
    score, _ = reranked_score_fn(q, g, tables, config, tables.model.frame_rate)
    for x in r.ranked:
        i = int(np.flatnonzero(q.names == x.name)[0])
        assert len(x.reranked) == 10 and all(e.image for e in x.reranked)
        s = score(np.array([i]), np.arange(len(g)))[0]
        assert [e.score for e in x.reranked] == pytest.approx(
            sorted((e.score for e in x.reranked), reverse=True))
        assert x.reranked[0].score == pytest.approx(float(s[g.names == x.reranked[0].name]
                                                          [0]), rel=1e-5)
    plain = evaluate_round("round 1", q, g, model, FusionRule(), n_queries=3)
    assert plain.reranked is None and all(x.reranked == [] for x in plain.ranked)
    page = _Page(open(write_run_report(str(tmp_path / "r.html"), [r, plain]),
                      encoding="utf-8").read())
    table = page.find("table", data_round="round 0")[0]
    row = next(e for e in page.find("tr", data_ranking="fused_reranked")
               if table in e["parents"])
    assert "fused + re-ranked" in row["text"] and f"{want.mAP:.2f}" in row["text"]
    assert not [e for e in page.find("tr", data_ranking="fused_reranked")
                if page.find("table", data_round="round 1")[0] in e["parents"]]
    assert "fused + re-ranked rank-1" in page.find("table", class_="summary")[0]["text"]
    rows = page.find("div", data_ranking="fused_reranked")
    assert len(rows) == 3 and all(
        len([i for i in page.find("img") if row in i["parents"]]) == 10 for row in rows)
    plain_page = open(write_run_report(str(tmp_path / "p.html"), [plain]),
                      encoding="utf-8").read()
    assert "re-ranked" not in plain_page and "fused_reranked" not in plain_page


def _summary(rounds):
    """A run summary (pipeline/run_summary.py) of `rounds` (dicts with unseen /
    st_true_curve), without gate or push."""
    m = {"rank1": 50.0, "rank5": 60.0, "rank10": 70.0, "mAP": 40.0, "queries": 12}
    return {"pipeline": "tfusion", "out": "OUT", "metadata": "OUT/metadata.sqlite",
            "gate": None, "push": None,
            "rounds": [{"round": i, "vision": m, "fused": m, "st_plot": f"r{i}.png", **r}
                       for i, r in enumerate(rounds)]}


def test_unseen_cameras_are_counted_and_shown_in_report_and_summary(case, tmp_path):
    from pipeline.run_summary import format_summary
    from st_model.evaluation import unseen_report
    sets, tables, _ = case
    q, g, train = sets["query"], sets["gallery"], sets["train"]
    two_cameras = train.subset(np.flatnonzero(train.camera != 3))
    models = {"all": save_st_model(tables.model, str(tmp_path / "all.npz")),
              "two": save_st_model(report_case.st_tables(two_cameras).model,
                                   str(tmp_path / "two.npz"))}
    rounds = [evaluate_round(f"round {k}", q, g, path, FusionRule(), n_queries=2)
              for k, path in models.items()]
    in_camera_3 = int((g.camera == 3).sum())
    assert rounds[0].unseen["gallery"]["images_unseen_camera"] == 0
    assert rounds[1].unseen == unseen_report(report_case.st_tables(two_cameras).model, q, g)
    assert rounds[1].unseen["gallery"]["images_unseen_camera"] == in_camera_3 > 0
    assert rounds[1].unseen["query"]["images_unseen_camera"] == 0
    assert rounds[1].unseen["gallery"]["unseen_cameras"] == [3]
    page = _Page(open(write_run_report(str(tmp_path / "u.html"), rounds + [
        RoundResult("round old", {}, {})]), encoding="utf-8").read())
    notes = page.find("p", class_="unseen")
    assert [n["attrs"].get("data-unseen-camera") for n in notes] == \
        ["0", str(in_camera_3), None]
    assert notes[0]["text"].endswith("query 0 in cameras / 0 in nodes, gallery 0 / 0.")
    assert f"gallery {in_camera_3} / 0 (unseen camera(s) 3)" in notes[1]["text"]
    assert notes[2]["text"].endswith("not recorded.")
    text = format_summary(_summary([{"unseen": r.unseen} for r in rounds] + [{}]))
    assert "  round 0: query 0 in cameras / 0 in nodes, gallery 0 / 0\n" in text
    assert f"  round 1: query 0 in cameras / 0 in nodes, gallery {in_camera_3} / 0 " \
           f"(unseen camera(s) 3)" in text
    assert "  round 2: not recorded\n" in text


def test_report_on_an_unlabeled_train_split_draws_and_shows_no_true_curve(case, tmp_path):
    """A target train split without identities (a manifest whose train rows have no
    pid: pid -1) gets no true Δ curve; the plot, the report and the summary say so."""
    from pipeline.run_summary import format_summary, train_has_identities
    from core.features import save_features
    from st_model.plot import NO_TRUE_CURVE, plot_st_model, st_figure
    sets, tables, _ = case
    q, g, labeled = sets["query"], sets["gallery"], sets["train"]
    unlabeled = replace(labeled, pid=np.full(len(labeled), -1, np.int64))
    model = report_case.st_tables(unlabeled).model
    assert model.same_as(tables.model)           # identities play no part in the model
    for train, true_curve in ((labeled, True), (unlabeled, False)):
        fig = st_figure(model, train)
        labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
        assert ("true" in labels) == true_curve
        assert (NO_TRUE_CURVE in fig._suptitle.get_text()) != true_curve
        folder = tmp_path / ("labeled" if true_curve else "unlabeled")
        save_features(train, str(folder / "train.npz"))
        assert train_has_identities(str(folder)) == true_curve
    plot = plot_st_model(model, unlabeled, str(tmp_path / "st_model.png"))
    path = save_st_model(model, str(tmp_path / "st_model.npz"))
    rounds = [evaluate_round(f"round {i}", q, g, path, FusionRule(), st_plot=plot,
                             n_queries=2, train=t)
              for i, t in enumerate((unlabeled, labeled))]
    assert [r.st_true_curve for r in rounds] == [False, True]
    page = _Page(open(write_run_report(str(tmp_path / "n.html"), rounds),
                      encoding="utf-8").read())
    notes = page.find("p", class_="no-true-curve")
    assert len(notes) == 1 and NO_TRUE_CURVE in notes[0]["text"]
    text = format_summary(_summary([{"st_true_curve": False}, {"st_true_curve": True}]))
    assert f"({NO_TRUE_CURVE})" in text
    assert NO_TRUE_CURVE not in format_summary(_summary([{"st_true_curve": True}]))
