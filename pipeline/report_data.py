"""What the run report shows, as plain data: `RoundResult` per round, `GateDecision`,
and `RankedQuery` lists.

`ranked_queries` ranks a few queries from the round's FeatureSets with exactly the
scoring that evaluates the round (st_model.evaluation.score_function and, with
re-ranking on, st_model.fused_rerank.reranked_score_fn) under the Market protocol
(st_model.metrics.ranked_gallery); `attach_images` fills in their images
from a target Examples artifact; `evaluate_round` builds a whole round from its saved
files. A round also carries the query / gallery images the ST model never saw
(st_model.evaluation.unseen_report) and whether its ST plot could draw a true Δ curve.
The page itself is pipeline/report_html.py, its pictures pipeline/report_pictures.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import List, Mapping, Optional, Sequence

import numpy as np

from st_model import metrics
from st_model.config import FusionRule
from core.features import FeatureSet
from st_model.evaluation import score_function
from st_model.fused_rerank import reranked_score_fn
from st_model.plot import Points
from st_model.scoring import STTables

SYMBOLS = {">=": "≥", "<=": "≤"}
UNSEEN_LABEL = ("Images the ST model never saw (query / gallery images in cameras, and "
                "in (camera, sequence) nodes, that the target train split lacks; their "
                "pairs get the neutral ST factor)")


@dataclass
class RankedEntry:
    """One gallery image at one rank of a query's list."""
    name: str
    pid: int
    camera: int
    score: float
    match: bool                    # a true match of the query (Market protocol)
    image: Optional[bytes] = None  # encoded image; None = not loaded


@dataclass
class RankedQuery:
    """A query and its top gallery images by vision, by fusion and by the re-ranked
    fusion."""
    name: str
    pid: int
    camera: int
    vision: List[RankedEntry]
    fused: List[RankedEntry]       # empty when the round has no ST model
    image: Optional[bytes] = None
    reranked: List[RankedEntry] = field(default_factory=list)  # empty: re-ranking off


@dataclass
class RoundResult:
    """One round's evaluation: metric dicts {rank1, rank5, rank10, mAP} in percent
    (RankingResult.as_dict), CMC at ranks 1..K (RankingResult.cmc; may be empty),
    the ST model plot (PNG path, st_model/plot.py) and the ranked queries.
    `unseen`: st_model.evaluation.unseen_report of the round (None: not recorded);
    `st_true_curve`: whether the train split had identities for the plot's true Δ
    curve (None: not known); `reranked` and `reranked_cmc`: the same figures of the
    re-ranked fused list (None: re-ranking off)."""
    name: str
    vision: Mapping[str, float]
    fused: Mapping[str, float]
    vision_cmc: Sequence[float] = ()
    fused_cmc: Sequence[float] = ()
    st_plot: Optional[str] = None
    ranked: List[RankedQuery] = field(default_factory=list)
    unseen: Optional[Mapping] = None
    st_true_curve: Optional[bool] = None
    reranked: Optional[Mapping[str, float]] = None
    reranked_cmc: Sequence[float] = ()

    @classmethod
    def from_rankings(cls, name: str, vision: metrics.RankingResult,
                      fused: metrics.RankingResult, st_plot: Optional[str] = None,
                      ranked: Sequence[RankedQuery] = (), unseen: Optional[Mapping] = None,
                      st_true_curve: Optional[bool] = None,
                      reranked: Optional[metrics.RankingResult] = None) -> "RoundResult":
        return cls(name, vision.as_dict(), fused.as_dict(), list(vision.cmc),
                   list(fused.cmc), st_plot, list(ranked), unseen, st_true_curve,
                   None if reranked is None else reranked.as_dict(),
                   () if reranked is None else list(reranked.cmc))


@dataclass
class GateCheck:
    """One threshold of the gate: `value` compared with `bound` (">=" or "<=").
    For a change threshold, `value` is the change and `baseline` the baseline's
    own figure. `passed` as the evaluator decided it (None: computed here)."""
    name: str
    value: float
    bound: float
    comparison: str = ">="
    baseline: Optional[float] = None
    passed: Optional[bool] = None

    def __post_init__(self):
        if self.comparison not in SYMBOLS:
            raise ValueError(f"gate check {self.name!r}: comparison must be '>=' or "
                             f"'<=', got {self.comparison!r}")

    def ok(self) -> bool:
        if self.passed is not None:
            return bool(self.passed)
        return self.value >= self.bound if self.comparison == ">=" else \
            self.value <= self.bound


@dataclass
class GateDecision:
    """Whether the candidate was blessed (and so pushed), and the checks behind it."""
    blessed: bool
    checks: List[GateCheck] = field(default_factory=list)
    baseline: Optional[str] = None    # the baseline model, when there is one
    candidate: Optional[str] = None   # the candidate model


def unseen_counts(unseen: Optional[Mapping]) -> str:
    """A round's unseen images as text (st_model.evaluation.unseen_report): query and
    gallery counts in unseen cameras / unseen nodes, 0 shown as 0; the cameras
    when there are any; "not recorded" for None."""
    if not unseen:
        return "not recorded"
    q, g = unseen["query"], unseen["gallery"]
    text = (f"query {q['images_unseen_camera']} in cameras / {q['images_unseen_node']} "
            f"in nodes, gallery {g['images_unseen_camera']} / {g['images_unseen_node']}")
    cameras = sorted(set(q["unseen_cameras"]) | set(g["unseen_cameras"]))
    if cameras:
        text += f" (unseen camera(s) {', '.join(map(str, cameras))})"
    if unseen.get("neutral_pairs"):
        text += (f"; {unseen['neutral_pairs']} of {unseen['pairs']} query × gallery "
                 f"pairs get the neutral ST factor")
    return text


# ---------------------------------------------------------------- ranked queries

def choose_queries(query: FeatureSet, gallery: FeatureSet, n: int, seed: int) -> np.ndarray:
    """n query indices drawn with `seed`, queries with a true match first (the
    others only when fewer than n have one), in ascending order."""
    rng = np.random.default_rng(seed)
    good = metrics.evaluable_queries(query.pid, query.camera, gallery.pid, gallery.camera,
                                     source=query.source)
    rest = np.setdiff1d(np.arange(len(query)), good)
    pick = rng.permutation(good)[:n]
    if pick.size < n:
        pick = np.concatenate([pick, rng.permutation(rest)[:n - pick.size]])
    return np.sort(pick)


def _ranked_entries(score_fn, q: int, query: FeatureSet, gallery: FeatureSet,
                    top: int) -> List[RankedEntry]:
    g, s, match = metrics.ranked_gallery(score_fn, q, query.pid, query.camera,
                                         gallery.pid, gallery.camera, top,
                                         source=f"{query.source} / {gallery.source}")
    names = gallery.names
    return [RankedEntry(str(names[i]), int(gallery.pid[i]), int(gallery.camera[i]),
                        float(sc), bool(m)) for i, sc, m in zip(g, s, match)]


def ranked_queries(query: FeatureSet, gallery: FeatureSet, tables: Optional[STTables],
                   config: FusionRule, n_queries: int = 6, top: int = 10,
                   seed: int = 0) -> List[RankedQuery]:
    """Top-`top` gallery lists by vision, by fusion (none when `tables` is None) and,
    when config.rerank, by the re-ranked fusion, of n_queries seeded queries, scored as
    st_model.evaluation scores the round (the visit window at the ST model's frame
    rate)."""
    for fs in (query, gallery):
        if fs.pid is None:
            raise ValueError(f"{fs.source}: missing array pid (needed to frame true "
                             f"matches in the ranked results)")
    vision = score_function(query, gallery, None, config)
    fused = None if tables is None else score_function(query, gallery, tables, config)
    reranked = None
    if tables is not None and config.rerank:
        reranked, _ = reranked_score_fn(query, gallery, tables, config,
                                        tables.model.frame_rate)
    entries = lambda fn, q: [] if fn is None else _ranked_entries(  # noqa: E731
        fn, q, query, gallery, top)
    out = []
    for q in choose_queries(query, gallery, n_queries, seed):
        q = int(q)
        out.append(RankedQuery(str(query.names[q]), int(query.pid[q]), int(query.camera[q]),
                               entries(vision, q), entries(fused, q),
                               reranked=entries(reranked, q)))
    return out


def attach_images(ranked: Sequence[RankedQuery], examples_uri: str,
                  query_split: str = "query", gallery_split: str = "gallery"
                  ) -> List[RankedQuery]:
    """Copies of `ranked` with every query and gallery image loaded from the Examples."""
    from pipeline.report_pictures import load_images
    q_img = load_images(examples_uri, query_split, (r.name for r in ranked))
    g_img = load_images(examples_uri, gallery_split,
                        (e.name for r in ranked for e in r.vision + r.fused + r.reranked))
    with_image = lambda es: [replace(e, image=g_img[e.name]) for e in es]  # noqa: E731
    return [replace(r, image=q_img[r.name], vision=with_image(r.vision),
                    fused=with_image(r.fused), reranked=with_image(r.reranked))
            for r in ranked]


def evaluate_round(name: str, query: FeatureSet, gallery: FeatureSet,
                   st_model_path: str, config: FusionRule,
                   st_plot: Optional[str] = None, examples_uri: Optional[str] = None,
                   n_queries: int = 6, seed: int = 0,
                   train: Optional[Points] = None) -> RoundResult:
    """One round of the report from its files: vision and fusion (and, when
    config.rerank, the re-ranked fusion) evaluated (with CMC) by st_model.evaluation
    with the saved ST model, `n_queries` ranked
    queries, their images when `examples_uri` (the target Examples) is given, and
    the images the ST model never saw. `train` (any ST points of the train split)
    tells whether the ST plot could draw a true Δ curve."""
    from st_model.evaluation import evaluate, evaluate_reranked, unseen_report
    from st_model.plot import has_identities
    from st_model.st_artifact import load_st_model
    model = load_st_model(st_model_path)
    tables = STTables.from_model(model)
    vis = evaluate(query, gallery, None, config)
    fus = evaluate(query, gallery, tables, config)
    rr = None
    if config.rerank:
        rr, _ = evaluate_reranked(query, gallery, tables, config, model.frame_rate)
    ranked = ranked_queries(query, gallery, tables, config, n_queries, seed=seed)
    if examples_uri:
        ranked = attach_images(ranked, examples_uri)
    return RoundResult.from_rankings(name, vis, fus, st_plot, ranked,
                                     unseen_report(model, query, gallery),
                                     None if train is None else has_identities(train), rr)

