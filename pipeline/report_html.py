"""The run report: one self-contained HTML page a person looks at after a run.

Per round: rank-1/5/10 and mAP of vision, of the fusion and (with re-ranking on) of
the re-ranked fusion, their CMC curves, the ST model plot (saying when it has no true
Δ curve), the images the ST model never saw, and ranked results as pictures (as
torchreid's visualize_ranked_results): for a few queries, the top-10 gallery images
by vision, by fusion and by the re-ranked fusion, true matches framed green and wrong
ones red. Before the rounds, the gate decision (blessed or not, each
threshold with its value and bound). Images are embedded as data URIs and the style
is inline, so the file needs nothing else (no network, no JavaScript).

The inputs are plain data (pipeline/report_data.py); the pictures come from
pipeline/report_pictures.py.
"""
from __future__ import annotations

import html
import os
from typing import List, Mapping, Optional, Sequence

from pipeline.report_data import (SYMBOLS, UNSEEN_LABEL, GateDecision, RankedEntry,
                                  RankedQuery, RoundResult, unseen_counts)
from pipeline.report_pictures import (MATCH_COLOUR, QUERY_COLOUR, THUMB_HEIGHT,
                                      WRONG_COLOUR, cmc_png, data_uri, image_uri,
                                      st_plot_png)
from st_model.plot import NO_TRUE_CURVE

METRICS = (("rank1", "rank-1"), ("rank5", "rank-5"), ("rank10", "rank-10"), ("mAP", "mAP"))
RERANKED = "fused + re-ranked"   # the label of the re-ranked fused list


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
    rankings = [("vision", "vision", r.vision), ("fused", "fused", r.fused)]
    if r.reranked is not None:
        rankings.append(("fused_reranked", RERANKED, r.reranked))
    for what, label, m in rankings:
        cells = "".join(f'<td data-metric="{k}">{_fmt(m.get(k))}</td>' for k, _ in METRICS)
        queries = m.get("queries")
        rows.append(f'<tr data-ranking="{what}"><th class="name">{label}</th>{cells}'
                    f'<td>{"–" if queries is None else int(queries)}</td></tr>')
    return (f'<table class="metrics" data-round="{html.escape(r.name)}">'
            f'<tr><th class="name">ranking (%)</th>{head}<th>queries</th></tr>'
            f'{"".join(rows)}</table>')


def _summary_table(rounds: Sequence[RoundResult]) -> str:
    """rank-1 and mAP per round of vision, fusion and (when any round has it) the
    re-ranked fusion."""
    columns = [("vision", lambda r: r.vision), ("fused", lambda r: r.fused)]
    if any(r.reranked is not None for r in rounds):
        columns.append((RERANKED, lambda r: r.reranked or {}))
    head = "".join(f'<th>{label} rank-1</th><th>{label} mAP</th>' for label, _ in columns)
    rows = "".join(
        f'<tr><td class="name">{html.escape(r.name)}</td>' + "".join(
            f'<td>{_fmt(m(r).get("rank1"))}</td><td>{_fmt(m(r).get("mAP"))}</td>'
            for _, m in columns) + '</tr>'
        for r in rounds)
    return (f'<table class="summary"><tr><th class="name">round</th>{head}</tr>'
            f'{rows}</table>')


def _unseen_note(r: RoundResult) -> str:
    """The round's images the ST model never saw; 0 is shown as 0."""
    attrs = ""
    if r.unseen:
        q, g = r.unseen["query"], r.unseen["gallery"]
        for k in ("camera", "node"):
            n = q[f"images_unseen_{k}"] + g[f"images_unseen_{k}"]
            attrs += f' data-unseen-{k}="{n}"'
    return (f'<p class="unseen"{attrs}>{html.escape(UNSEEN_LABEL)}: '
            f'{html.escape(unseen_counts(r.unseen))}.</p>')


def _ranked_row(page: _Page, label: str, entries: Sequence[RankedEntry],
                ranking: Optional[str] = None) -> str:
    ranking = ranking or label
    if not entries:
        return (f'<div class="row" data-ranking="{ranking}"><div class="label">{label}'
                f'</div><div>no ST model in this round</div></div>')
    figs = []
    for rank, e in enumerate(entries, 1):
        colour, cls = (MATCH_COLOUR, "match") if e.match else (WRONG_COLOUR, "wrong")
        figs.append(page.picture(e.image, colour, cls, e.name, f"{rank} · c{e.camera}",
                                 f"rank {rank}: {e.name} (id {e.pid}, camera {e.camera},"
                                 f" score {e.score:.4g})"))
    return (f'<div class="row" data-ranking="{ranking}"><div class="label">{label}</div>'
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
        reranked = _ranked_row(page, RERANKED, r.reranked, "fused_reranked") \
            if r.reranked else ""
        page.add(f'<div class="query" data-query="{html.escape(r.name)}">{query}'
                 f'<div class="rows">{_ranked_row(page, "vision", r.vision)}'
                 f'{_ranked_row(page, "fused", r.fused)}{reranked}</div></div>')


def _round_section(page: _Page, r: RoundResult) -> None:
    page.add(f'<h2>{html.escape(r.name)}</h2>', _metrics_table(r), '<div class="figures">')
    if len(r.vision_cmc) or len(r.fused_cmc):
        png = cmc_png(r.vision_cmc, r.fused_cmc, r.name, r.reranked_cmc)
        page.add(f'<img class="cmc" src="{data_uri(png, "image/png")}" '
                 f'alt="CMC curves, {html.escape(r.name)}">')
    else:
        page.add('<p>CMC curves not recorded for this round.</p>')
    if r.st_plot:
        uri = data_uri(st_plot_png(r.st_plot, r.name), "image/png")
        page.add(f'<img class="st-plot" src="{uri}" alt="ST model, {html.escape(r.name)}">')
    page.add('</div>')
    if r.st_true_curve is False:
        page.add(f'<p class="no-true-curve">ST model plot: '
                 f'{html.escape(NO_TRUE_CURVE)}.</p>')
    page.add(_unseen_note(r))
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
