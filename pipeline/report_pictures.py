"""The run report's pictures: images read from an Examples artifact, made browser-safe
data URIs, the CMC figure, and the ST model plot read back as PNG.

The frame colours are shared with the HTML page (pipeline/report_html.py) and the
search picture. matplotlib, PIL and TensorFlow are imported only when used.
"""
from __future__ import annotations

import base64
import io
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

MATCH_COLOUR = "#1a9e3f"      # frame of a true match
WRONG_COLOUR = "#d62728"      # frame of any other gallery image
QUERY_COLOUR = "#1f4e99"      # frame of the query image
THUMB_HEIGHT = 128            # px on the page; larger images are downscaled once
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif",
                   "WEBP": "image/webp", "BMP": "image/bmp"}


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


def data_uri(data: bytes, mime: str) -> str:
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
                return data_uri(data, BROWSER_FORMATS[fmt])
            img.load()
            small = img.convert("RGB")
            small.thumbnail((4 * THUMB_HEIGHT, THUMB_HEIGHT))
            buf = io.BytesIO()
            small.save(buf, format="PNG")
            return data_uri(buf.getvalue(), "image/png")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def cmc_png(vision_cmc: Sequence[float], fused_cmc: Sequence[float], title: str,
            reranked_cmc: Sequence[float] = ()) -> bytes:
    """PNG of the CMC curves (percent at rank 1..K) of vision, fusion and (when given)
    the re-ranked fusion."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for cmc, label, style in ((vision_cmc, "vision", "--"), (fused_cmc, "fused", "-"),
                              (reranked_cmc, "fused + re-ranked", ":")):
        if len(cmc):
            ax.plot(np.arange(1, len(cmc) + 1), cmc, style, lw=1.6, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(1, max(len(vision_cmc), len(fused_cmc), len(reranked_cmc), 2))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"CMC, {title}", fontsize=10)
    fig.tight_layout()
    return _figure_png(fig)


def st_plot_png(path: str, round_name: str) -> bytes:
    """The bytes of a round's ST model plot (st_model/plot.py) at `path`, any Beam
    filesystem; raises naming the round when it is missing or not a PNG file."""
    from core.files import exists, open_file
    if not exists(path):
        raise FileNotFoundError(f"{round_name}: ST model plot {path} does not exist")
    with open_file(path) as f:
        data = f.read()
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(f"{round_name}: ST model plot {path} is not a PNG file")
    return data
