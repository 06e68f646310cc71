"""The run report: one self-contained HTML page a person looks at after a run.

Per round: rank-1/5/10 and mAP of vision and of the fusion, their CMC curves, the ST
model plot, and ranked results as pictures (as torchreid's visualize_ranked_results):
for a few queries, the top-10 gallery images by vision and by fusion, true matches
framed green and wrong ones red. Before the rounds, the gate decision (blessed or
not, each threshold with its value and bound). Images are embedded as data URIs and the style
is inline, so the file needs nothing else (no network, no JavaScript).

The inputs are plain data: `RoundResult`, `GateDecision`, and `RankedQuery` lists
built by `ranked_queries` from the round's FeatureSets with exactly the scoring that
evaluates the round (st_model.evaluation.score_function) under the Market protocol
(st_model.metrics.ranked_gallery); `attach_images` fills in the images from a
target Examples artifact. matplotlib, PIL and TensorFlow are imported only when used.
"""
from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field, replace
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from core.features import FeatureSet
from st_model import metrics
from st_model.config import FusionConfig
from st_model.evaluation import score_function
from st_model.scoring import STTables

METRICS = (("rank1", "rank-1"), ("rank5", "rank-5"), ("rank10", "rank-10"), ("mAP", "mAP"))
MATCH_COLOUR = "#1a9e3f"      # frame of a true match
WRONG_COLOUR = "#d62728"      # frame of any other gallery image
QUERY_COLOUR = "#1f4e99"      # frame of the query image
THUMB_HEIGHT = 128            # px on the page; larger images are downscaled once
SYMBOLS = {">=": "≥", "<=": "≤"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                   "WEBP": "image/webp", "BMP": "image/bmp"}


# ------------------------------------------------------------------------ inputs

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
    """A query and its top gallery images by vision and by fusion."""
    name: str
    pid: int
    camera: int
    vision: List[RankedEntry]
    fused: List[RankedEntry]       # empty when the round has no ST model
    image: Optional[bytes] = None


@dataclass
class RoundResult:
    """One round's evaluation: metric dicts {rank1, rank5, rank10, mAP} in percent
    (RankingResult.as_dict), CMC at ranks 1..K (RankingResult.cmc; may be empty),
    the ST model plot (PNG path, st_model/plot.py) and the ranked queries."""
    name: str
    vision: Mapping[str, float]
    fused: Mapping[str, float]
    vision_cmc: Sequence[float] = ()
    fused_cmc: Sequence[float] = ()
    st_plot: Optional[str] = None
    ranked: List[RankedQuery] = field(default_factory=list)

    @classmethod
    def from_rankings(cls, name: str, vision: metrics.RankingResult,
                      fused: metrics.RankingResult, st_plot: Optional[str] = None,
                      ranked: Sequence[RankedQuery] = ()) -> "RoundResult":
        return cls(name, vision.as_dict(), fused.as_dict(), list(vision.cmc),
                   list(fused.cmc), st_plot, list(ranked))


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
                   config: FusionConfig, n_queries: int = 6, top: int = 10,
                   seed: int = 0) -> List[RankedQuery]:
    """Top-`top` gallery lists by vision and by fusion (none when `tables` is None) of
    n_queries seeded queries, scored as st_model.evaluation.evaluate scores the round."""
    for fs in (query, gallery):
        if fs.pid is None:
            raise ValueError(f"{fs.source}: missing array pid (needed to frame true "
                             f"matches in the ranked results)")
    config = config.resolved()       # the rules fuse() evaluates with
    vision = score_function(query, gallery, None, config)
    fused = None if tables is None else score_function(query, gallery, tables, config)
    out = []
    for q in choose_queries(query, gallery, n_queries, seed):
        out.append(RankedQuery(
            str(query.names[q]), int(query.pid[q]), int(query.camera[q]),
            _ranked_entries(vision, int(q), query, gallery, top),
            [] if fused is None else _ranked_entries(fused, int(q), query, gallery, top)))
    return out


def load_images(examples_uri: str, split: str, names: Iterable[str]) -> Dict[str, bytes]:
    """Encoded image bytes of `names` from one split of an Examples artifact
    (Split-<split>/*.gz); raises ValueError naming the split and the missing names."""
    from trainer.data import read_split, split_files
    wanted = set(names)
    if not wanted:
        return {}
    table = read_split(split_files(examples_uri, split), images=True)
    found = {str(n): bytes(b) for n, b in zip(table.name, table.images) if n in wanted}
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"examples {examples_uri}: split {split!r} has no image named "
                         f"{', '.join(missing[:5])}" +
                         (f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""))
    return found


def attach_images(ranked: Sequence[RankedQuery], examples_uri: str,
                  query_split: str = "query", gallery_split: str = "gallery"
                  ) -> List[RankedQuery]:
    """Copies of `ranked` with every query and gallery image loaded from the Examples."""
    q_img = load_images(examples_uri, query_split, (r.name for r in ranked))
    g_img = load_images(examples_uri, gallery_split,
                        (e.name for r in ranked for e in r.vision + r.fused))
    with_image = lambda es: [replace(e, image=g_img[e.name]) for e in es]  # noqa: E731
    return [replace(r, image=q_img[r.name], vision=with_image(r.vision),
                    fused=with_image(r.fused)) for r in ranked]


# ------------------------------------------------------------------- rendering

def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def image_uri(data: Optional[bytes]) -> Optional[str]:
    """A data URI a browser shows for encoded image `data` (re-encoded as PNG when the
    format is not one browsers read or the image is tall); None if unreadable."""
    if not data:
        return None
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            if fmt in BROWSER_FORMATS and img.height <= 2 * THUMB_HEIGHT:
                return _data_uri(data, BROWSER_FORMATS[fmt])
            img.load()
            small = img.convert("RGB")
            small.thumbnail((4 * THUMB_HEIGHT, THUMB_HEIGHT))
            buf = io.BytesIO()
            small.save(buf, format="PNG")
            return _data_uri(buf.getvalue(), "image/png")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def cmc_png(vision_cmc: Sequence[float], fused_cmc: Sequence[float], title: str) -> bytes:
    """PNG of the CMC curves (percent at rank 1..K) of vision and fusion."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for cmc, label, style in ((vision_cmc, "vision", "--"), (fused_cmc, "fused", "-")):
        if len(cmc):
            ax.plot(np.arange(1, len(cmc) + 1), cmc, style, lw=1.6, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, max(len(vision_cmc), len(fused_cmc), 2))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"CMC, {title}", fontsize=10)
    fig.tight_layout()
    return _figure_png(fig)


STYLE = f"""
body {{ font-family: sans-serif; margin: 24px; color: #222; max-width: 1500px; }}
h1 {{ margin-bottom: 4px; }}
h2 {{ border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 36px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
th {{ background: #f3f3f3; }}
td.name, th.name {{ text-align: left; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }}
.figures img {{ border: 1px solid #ddd; max-width: 100%; }}
.gate {{ padding: 10px 14px; font-size: 1.2em; font-weight: bold; color: white;
         display: inline-block; border-radius: 4px; }}
.blessed {{ background: {MATCH_COLOUR}; }}
.not-blessed {{ background: {WRONG_COLOUR}; }}
.pass {{ color: {MATCH_COLOUR}; font-weight: bold; }}
.fail {{ color: {WRONG_COLOUR}; font-weight: bold; }}
.query {{ display: flex; gap: 14px; align-items: center; margin: 14px 0;
          padding: 8px; border: 1px solid #eee; }}
.rows {{ display: flex; flex-direction: column; gap: 6px; }}
.row {{ display: flex; gap: 5px; align-items: flex-start; }}
.label {{ width: 56px; font-weight: bold; align-self: center; }}
figure {{ margin: 0; text-align: center; font-size: 11px; color: #555; }}
figure img, .missing {{ height: {THUMB_HEIGHT}px; border: 4px solid;
                        display: block; }}
.missing {{ width: 48px; background: #eee; font-size: 10px; color: #777; }}
.legend span {{ padding: 0 6px; border: 3px solid; margin-right: 8px; }}
code {{ background: #f6f6f6; padding: 1px 4px; }}
"""


class _Page:
    """HTML assembled piece by piece; counts images that could not be shown."""

    def __init__(self):
        self.parts: List[str] = []
        self.missing_images = 0

    def add(self, *parts: str) -> None:
        self.parts.extend(parts)

    def picture(self, data: Optional[bytes], colour: str, cls: str, alt: str,
                caption: str, tip: str) -> str:
        uri = image_uri(data)
        frame = f'style="border-color:{colour}"'
        if uri is None:
            self.missing_images += 1
            body = f'<div class="missing {cls}" {frame}>no image</div>'
        else:
            body = f'<img class="{cls}" {frame} src="{uri}" alt="{html.escape(alt)}">'
        return (f'<figure title="{html.escape(tip)}">{body}'
                f'<figcaption>{html.escape(caption)}</figcaption></figure>')


def _fmt(v) -> str:
    return "–" if v is None else f"{float(v):.2f}"


def _metrics_table(r: RoundResult) -> str:
    head = "".join(f"<th>{label}</th>" for _, label in METRICS)
    rows = []
    for what, m in (("vision", r.vision), ("fused", r.fused)):
        cells = "".join(f'<td data-metric="{k}">{_fmt(m.get(k))}</td>' for k, _ in METRICS)
        queries = m.get("queries")
        rows.append(f'<tr data-ranking="{what}"><th class="name">{what}</th>{cells}'
                    f'<td>{"–" if queries is None else int(queries)}</td></tr>')
    return (f'<table class="metrics" data-round="{html.escape(r.name)}">'
            f'<tr><th class="name">ranking (%)</th>{head}<th>queries</th></tr>'
            f'{"".join(rows)}</table>')


def _summary_table(rounds: Sequence[RoundResult]) -> str:
    rows = "".join(
        f'<tr><td class="name">{html.escape(r.name)}</td>'
        f'<td>{_fmt(r.vision.get("rank1"))}</td><td>{_fmt(r.vision.get("mAP"))}</td>'
        f'<td>{_fmt(r.fused.get("rank1"))}</td><td>{_fmt(r.fused.get("mAP"))}</td></tr>'
        for r in rounds)
    return ('<table class="summary"><tr><th class="name">round</th>'
            '<th>vision rank-1</th><th>vision mAP</th><th>fused rank-1</th>'
            f'<th>fused mAP</th></tr>{rows}</table>')


def _ranked_row(page: _Page, label: str, entries: Sequence[RankedEntry]) -> str:
    if not entries:
        return (f'<div class="row" data-ranking="{label}"><div class="label">{label}'
                f'</div><div>no ST model in this round</div></div>')
    figs = []
    for rank, e in enumerate(entries, 1):
        colour, cls = (MATCH_COLOUR, "match") if e.match else (WRONG_COLOUR, "wrong")
        figs.append(page.picture(e.image, colour, cls, e.name, f"{rank} · c{e.camera}",
                                 f"rank {rank}: {e.name} (id {e.pid}, camera {e.camera},"
                                 f" score {e.score:.4g})"))
    return (f'<div class="row" data-ranking="{label}"><div class="label">{label}</div>'
            f'{"".join(figs)}</div>')


def _ranked_block(page: _Page, ranked: Sequence[RankedQuery]) -> None:
    page.add('<p class="legend">Top-10 gallery images per query (Market protocol: '
             'junk and the query\'s identity seen by its own camera left out). '
             f'<span style="border-color:{MATCH_COLOUR}">true match</span>'
             f'<span style="border-color:{WRONG_COLOUR}">other identity</span>'
             'Caption: rank · camera.</p>')
    for r in ranked:
        query = page.picture(r.image, QUERY_COLOUR, "query-image", r.name,
                             f"query · c{r.camera}",
                             f"query {r.name} (id {r.pid}, camera {r.camera})")
        page.add(f'<div class="query" data-query="{html.escape(r.name)}">{query}'
                 f'<div class="rows">{_ranked_row(page, "vision", r.vision)}'
                 f'{_ranked_row(page, "fused", r.fused)}</div></div>')


def _round_section(page: _Page, r: RoundResult) -> None:
    page.add(f'<h2>{html.escape(r.name)}</h2>', _metrics_table(r), '<div class="figures">')
    if len(r.vision_cmc) or len(r.fused_cmc):
        png = cmc_png(r.vision_cmc, r.fused_cmc, r.name)
        page.add(f'<img class="cmc" src="{_data_uri(png, "image/png")}" '
                 f'alt="CMC curves, {html.escape(r.name)}">')
    else:
        page.add('<p>CMC curves not recorded for this round.</p>')
    if r.st_plot:
        from core.files import exists, open_file
        if not exists(r.st_plot):
            raise FileNotFoundError(f"{r.name}: ST model plot {r.st_plot} does not exist")
        with open_file(r.st_plot) as f:
            data = f.read()
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError(f"{r.name}: ST model plot {r.st_plot} is not a PNG file")
        uri = _data_uri(data, "image/png")
        page.add(f'<img class="st-plot" src="{uri}" alt="ST model, {html.escape(r.name)}">')
    page.add('</div>')
    if r.ranked:
        page.add('<h3>Ranked results</h3>')
        _ranked_block(page, r.ranked)


def _gate_section(page: _Page, gate: Optional[GateDecision]) -> None:
    page.add('<h2>Gate</h2>')
    if gate is None:
        page.add('<p class="gate-none">No gate decision in this run.</p>')
        return
    verdict = ('blessed', 'BLESSED: the candidate passed the gate and may be pushed') \
        if gate.blessed else ('not-blessed', 'NOT BLESSED: the candidate is not pushed')
    page.add(f'<div class="gate {verdict[0]}">{verdict[1]}</div>')
    for what, v in (("candidate", gate.candidate), ("baseline", gate.baseline)):
        if v:
            page.add(f'<p>{what}: <code>{html.escape(v)}</code></p>')
    if not gate.baseline:
        page.add('<p>No baseline: no model has been blessed before.</p>')
    rows = []
    for c in gate.checks:
        ok = c.ok()
        rows.append(f'<tr class="check"><td class="name">{html.escape(c.name)}</td>'
                    f'<td>{_fmt(c.value)}</td><td>{SYMBOLS[c.comparison]} '
                    f'{_fmt(c.bound)}</td><td>{_fmt(c.baseline)}</td>'
                    f'<td class="{"pass" if ok else "fail"}">{"pass" if ok else "FAIL"}'
                    f'</td></tr>')
    if rows:
        page.add('<table class="gate-checks"><tr><th class="name">threshold</th>'
                 '<th>value</th><th>bound</th><th>baseline</th><th>result</th></tr>',
                 *rows, '</table>')


def _link(href: str, report_dir: Optional[str]) -> str:
    """A relative link for a local file under the report's local folder, else the
    path as text."""
    from core.files import is_remote
    if report_dir is None or is_remote(href):
        return f'<code>{html.escape(href)}</code>'
    full = os.path.abspath(href)
    rel = os.path.relpath(full, report_dir)
    if os.path.exists(full) and not rel.startswith(os.pardir):
        return f'<a href="{html.escape(rel)}"><code>{html.escape(href)}</code></a>'
    return f'<code>{html.escape(href)}</code>'


def write_run_report(path: str, rounds: Sequence[RoundResult],
                     gate: Optional[GateDecision] = None,
                     title: str = "TFusion run report",
                     links: Optional[Mapping[str, str]] = None) -> str:
    """Write the report to `path` (one self-contained HTML file, through Beam's
    FileSystems: a local path, `gs://…` or any registered scheme); returns `path`."""
    from core.files import is_remote, make_folder, write_file
    if not rounds:
        raise ValueError(f"{path}: a run report needs at least one round")
    report_dir = None if is_remote(path) else os.path.dirname(os.path.abspath(path))
    page = _Page()
    page.add(f'<h1>{html.escape(title)}</h1>',
             '<p>Query vs gallery of the target, Market protocol (rank-k and mAP in %).</p>',
             _summary_table(rounds))
    if links:
        page.add('<ul class="links">', *(f'<li>{html.escape(k)}: {_link(v, report_dir)}'
                                         f'</li>' for k, v in links.items()), '</ul>')
    notes_at = len(page.parts)
    _gate_section(page, gate)
    for r in rounds:
        _round_section(page, r)
    if page.missing_images:
        page.parts.insert(notes_at, f'<p class="missing-count">{page.missing_images} '
                                   f'image(s) could not be shown (not loaded or '
                                   f'unreadable).</p>')
    doc = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
           f'<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>'
           + "\n".join(page.parts) + '</body></html>\n')
    if report_dir is not None:
        make_folder(report_dir)
    return write_file(path, doc.encode("utf-8"))


def evaluate_round(name: str, query: FeatureSet, gallery: FeatureSet,
                   st_model_path: str, config: FusionConfig,
                   st_plot: Optional[str] = None, examples_uri: Optional[str] = None,
                   n_queries: int = 6, seed: int = 0) -> RoundResult:
    """One round of the report from its files: vision and fusion evaluated (with
    CMC) by st_model.evaluation.evaluate with the saved ST model, `n_queries` ranked
    queries, and their images when `examples_uri` (the target Examples) is given."""
    from st_model.evaluation import evaluate
    from st_model.st_artifact import load_st_model
    config = config.resolved()
    tables = STTables.from_model(load_st_model(st_model_path))
    vis = evaluate(query, gallery, None, config)
    fus = evaluate(query, gallery, tables, config)
    ranked = ranked_queries(query, gallery, tables, config, n_queries, seed=seed)
    if examples_uri:
        ranked = attach_images(ranked, examples_uri)
    return RoundResult.from_rankings(name, vis, fus, st_plot, ranked)
