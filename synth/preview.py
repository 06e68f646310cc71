"""OUT/preview.png: a contact sheet of several identities (rows) across cameras
(columns), one block per domain, read back from the written JPEGs."""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from PIL import Image, ImageDraw

from synth.plan import DatasetPlan, ImageJob

LABEL_W, HEADER_H, TITLE_H = 44, 14, 16
BLANK = (60, 60, 60)


def pick_rows(jobs: List[ImageJob], rows: int) -> List[Tuple[int, Dict[int, ImageJob]]]:
    """The `rows` train identities seen in the most cameras, with one image per
    camera (the first by name)."""
    by_pid: Dict[int, Dict[int, ImageJob]] = {}
    for j in sorted(jobs, key=lambda j: j.name):
        if j.pid > 0 and j.split == "train":
            by_pid.setdefault(j.pid, {}).setdefault(j.camera, j)
    ranked = sorted(by_pid.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return ranked[:rows]


def contact_sheet(plan: DatasetPlan, out_dirs: Dict[str, str], size: Tuple[int, int],
                  path: str, rows: int = 6) -> str:
    """Write the contact sheet to `path` and return it."""
    h, w = size
    blocks = []
    for name, dplan in plan.domains.items():
        cams = sorted({j.camera for j in dplan.jobs})
        blocks.append((name, cams, pick_rows(dplan.jobs, rows)))
    width = LABEL_W + w * max(len(c) for _, c, _ in blocks)
    height = sum(TITLE_H + HEADER_H + h * max(len(r), 1) for _, _, r in blocks)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    d = ImageDraw.Draw(sheet)
    y = 0
    for name, cams, picked in blocks:
        d.text((4, y + 2), f"domain: {name} (rows: identities, columns: cameras)",
               fill=(255, 255, 255))
        y += TITLE_H
        for ci, c in enumerate(cams):
            d.text((LABEL_W + ci * w + 4, y + 1), f"c{c}", fill=(220, 220, 220))
        y += HEADER_H
        for pid, per_cam in picked:
            d.text((4, y + h // 2 - 5), f"{pid:04d}", fill=(220, 220, 220))
            for ci, c in enumerate(cams):
                x = LABEL_W + ci * w
                job = per_cam.get(c)
                if job is None:
                    d.rectangle([x, y, x + w - 1, y + h - 1], fill=BLANK)
                    continue
                with Image.open(os.path.join(out_dirs[name], job.relpath())) as im:
                    sheet.paste(im.convert("RGB"), (x, y))
            y += h
        if not picked:
            y += h
    sheet.save(path)
    return path
