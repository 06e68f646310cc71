"""The picture of `tfusion search`: each query beside its top-k gallery images, as
the run report's ranked results (pipeline/report_html.py) — true matches framed green
and others red when the names carry identities, the query framed blue."""
from __future__ import annotations

import io
import os
from typing import Dict, List, Sequence

from PIL import Image, ImageDraw

THUMB_H, THUMB_W, LABEL_H, PAD = 128, 64, 30, 6
QUERY, MATCH, WRONG, UNKNOWN = (40, 90, 220), (30, 160, 60), (210, 40, 40), (150, 150, 150)


def _thumb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").resize((THUMB_W, THUMB_H))


def _pid(name: str) -> int:
    from core.errors import InputError
    from core.names import parse_name
    try:
        return parse_name(name).pid
    except InputError:
        return -2


def gallery_images(index, names: Sequence[str]) -> Dict[str, bytes]:
    """Encoded bytes of the index rows `names`, from the Examples the index was built
    from (INDEX/examples for an ingested folder)."""
    from pipeline.report_pictures import load_images
    src = index.header["examples"]
    if not os.path.isabs(src):
        src = os.path.join(index.path, src)
    return load_images(src, index.header["split"], names)


def draw_search(report: List[dict], query_images: Sequence[bytes], index, path: str) -> str:
    """Write the PNG (to a temporary name first, then renamed)."""
    names = sorted({h["name"] for q in report for h in q["hits"]})
    g_img = gallery_images(index, names)
    k = max((len(q["hits"]) for q in report), default=0)
    cell_w = THUMB_W + 2 * PAD
    width = cell_w * (k + 1) + PAD
    height = (THUMB_H + LABEL_H + 2 * PAD) * len(report) + PAD
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)

    def cell(x, y, data, colour, label):
        draw.rectangle([x - 3, y - 3, x + THUMB_W + 2, y + THUMB_H + 2], fill=colour)
        canvas.paste(_thumb(data), (x, y))
        for i, line in enumerate(label.split("\n")):
            draw.text((x, y + THUMB_H + 3 + 11 * i), line, fill="black")

    for r, (q, data) in enumerate(zip(report, query_images)):
        y = PAD + r * (THUMB_H + LABEL_H + 2 * PAD)
        qpid = _pid(q["query"])
        cell(PAD, y, data, QUERY, f"query c{q['camera']}\nt {q['time_s']:.0f}s")
        for j, h in enumerate(q["hits"]):
            gp = _pid(h["name"])
            colour = UNKNOWN if qpid < 1 or gp == -2 else (MATCH if gp == qpid else WRONG)
            cell(PAD + (j + 1) * cell_w, y, g_img[h["name"]], colour,
                 f"{h['rank']} c{h['camera']}\n{h['fused']:.2f}")
    tmp = path + ".partial.png"
    canvas.save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
