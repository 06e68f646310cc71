"""Drawing one SynthReID image: a pedestrian on a camera's background, then the
camera's optics (resolution, blur), light (cast, contrast, gamma) and noise.

Everything random about one image comes from the generator it is given, so an image
depends only on (seed, domain, name) and never on which worker renders it.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from PIL import Image, ImageDraw

from synth.identities import Identity, sample_identity
from synth.styles import RGB, CameraLook, DomainStyle, hsv

FRONT, BACK, LEFT, RIGHT = 0, 1, 2, 3
VIEW_NAMES = ("front", "back", "left", "right")


# ---------------------------------------------------------------------------
# Background

def draw_scene(style: DomainStyle, look: CameraLook, size: Tuple[int, int],
               rng: np.random.Generator) -> Image.Image:
    """A camera's fixed scene, twice as wide as a crop (crops pan across it)."""
    h, w = size
    W = 2 * w
    img = Image.new("RGB", (W, h), look.walls[0])
    d = ImageDraw.Draw(img)
    hz = int(look.horizon * h)
    top, mid, floor = look.walls
    if style.background == "street":
        sky = int(rng.uniform(0.15, 0.35) * h)
        x = 0
        while x < W:  # facades of varying height and shade, with windows
            bw = int(rng.uniform(0.3, 0.8) * w)
            shade = tuple(int(np.clip(c * rng.uniform(0.75, 1.2), 0, 255)) for c in mid)
            y_top = sky + int(rng.uniform(-0.1, 0.1) * h)
            d.rectangle([x, y_top, x + bw, hz], fill=shade)
            win = tuple(int(c * 0.55) for c in shade)
            step = max(3, int(0.09 * h))
            for wy in range(y_top + step // 2, hz - step // 2, step):
                for wx in range(x + 2, x + bw - 3, max(3, int(0.18 * w))):
                    d.rectangle([wx, wy, wx + max(1, int(0.06 * w)), wy + step // 2],
                                fill=win)
            x += bw
        d.rectangle([0, hz, W, h], fill=floor)
        kerb = tuple(int(c * 0.7) for c in floor)
        d.line([0, hz + 1, W, hz + 1], fill=kerb, width=max(1, h // 64))
    else:
        d.rectangle([0, 0, W, hz], fill=top)
        x = int(rng.uniform(0, 0.3) * w)
        while x < W:  # shop fronts: coloured panels with a window
            bw = int(rng.uniform(0.35, 0.9) * w)
            panel = tuple(int(np.clip(c * rng.uniform(0.6, 1.25), 0, 255)) for c in mid)
            py = int(rng.uniform(0.08, 0.3) * h)
            d.rectangle([x, py, x + bw, hz], fill=panel)
            glass = tuple(int(np.clip(0.5 * c + 0.5 * t, 0, 255)) for c, t in zip(top, panel))
            d.rectangle([x + 2, py + int(0.08 * h), x + bw - 3, hz - 2], fill=glass)
            x += bw + int(rng.uniform(0.1, 0.4) * w)
        d.rectangle([0, hz, W, h], fill=floor)
        line = tuple(int(c * 0.85) for c in floor)
        for y in range(hz, h, max(3, h // 14)):
            d.line([0, y, W, y], fill=line)
        for xx in range(0, W, max(4, w // 4)):
            d.line([xx, hz, xx + (xx - W // 2) // 3, h], fill=line)
    return img


def background_crop(scene: Image.Image, look: CameraLook, size: Tuple[int, int],
                    rng: np.random.Generator) -> Image.Image:
    """A crop of the camera's scene with some passing clutter."""
    h, w = size
    x0 = int(rng.integers(0, max(1, scene.width - w)))
    img = scene.crop((x0, 0, x0 + w, h))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.poisson(look.clutter))):
        cw, ch = rng.uniform(0.06, 0.3) * w, rng.uniform(0.04, 0.25) * h
        cx, cy = rng.uniform(0, w), rng.uniform(0.2, 1.0) * h
        col = hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.5), rng.uniform(0.2, 0.9))
        if rng.random() < 0.5:
            d.rectangle([cx - cw / 2, cy - ch, cx + cw / 2, cy], fill=col)
        else:
            d.ellipse([cx - cw / 2, cy - ch, cx + cw / 2, cy], fill=col)
    return img


# ---------------------------------------------------------------------------
# The pedestrian

def _quad(d: ImageDraw.ImageDraw, x0: float, y0: float, x1: float, y1: float,
          w0: float, w1: float, fill: RGB) -> None:
    """A limb: a quadrilateral from (x0, y0) to (x1, y1), half-widths w0 -> w1."""
    d.polygon([(x0 - w0, y0), (x0 + w0, y0), (x1 + w1, y1), (x1 - w1, y1)], fill=fill)


def draw_person(img: Image.Image, ident: Identity, view: int, cx: float, top: float,
                u: float, body_width: float, rng: np.random.Generator) -> None:
    """Draw `ident` seen from `view`, `u` pixels tall, head top at (cx, top)."""
    d = ImageDraw.Draw(img)
    y = lambda f: top + f * u  # noqa: E731  (share of body height -> pixel row)
    ws = ident.width * body_width
    side = view in (LEFT, RIGHT)
    face = -1 if view == LEFT else 1          # image direction the person walks to
    tw = (0.075 if side else 0.115) * u * ws   # torso half-width
    phase = rng.uniform(-1, 1)                # walking phase
    sleeve = ident.upper if ident.long_sleeves else ident.skin
    # Which side of the image the person's own left/right is on (front: mirrored).
    bag_x_sign = {FRONT: -ident.bag_side, BACK: ident.bag_side}.get(view, 0)
    bag_visible = not side or (view == LEFT) == (ident.bag_side == -1)

    # Long hair and backpack behind the body (front / side views).
    if ident.hair_style == "long" and view != BACK:
        d.rectangle([cx - 0.07 * u, y(0.06), cx + 0.07 * u, y(0.22)], fill=ident.hair)
    if ident.bag == "backpack" and side:
        bx = cx - face * (tw + 0.05 * u)
        d.rectangle([bx - 0.05 * u, y(0.17), bx + 0.05 * u, y(0.42)], fill=ident.bag_color)

    # Legs and shoes.
    knee = 0.72
    leg_top = 0.49
    lw = 0.055 * u * ws
    if side:
        stride = 0.13 * u * phase
        feet = [(cx + stride, 0.95), (cx - stride, 0.95)]
        hips = [cx, cx]
    else:
        spread = 0.02 * u * abs(phase)
        hips = [cx - 0.06 * u * ws, cx + 0.06 * u * ws]
        feet = [(hips[0] - spread, 0.95), (hips[1] + spread, 0.95)]
    for hx, (fx, fy) in zip(hips, feet):
        kx = hx + (fx - hx) * (knee - leg_top) / (fy - leg_top)
        lower_leg = ident.skin if ident.lower_type != "trousers" else ident.lower
        _quad(d, hx, y(leg_top), kx, y(knee), lw, lw * 0.9, ident.lower)
        _quad(d, kx, y(knee), fx, y(fy), lw * 0.9, lw * 0.75, lower_leg)
        sx = fx + (face * 0.03 * u if side else 0)
        d.ellipse([sx - lw * 1.2, y(0.935), sx + lw * 1.2, y(1.0)], fill=ident.shoes)
    if ident.lower_type == "skirt":
        d.polygon([(cx - tw * 0.95, y(0.47)), (cx + tw * 0.95, y(0.47)),
                   (cx + tw * 1.35, y(knee)), (cx - tw * 1.35, y(knee))], fill=ident.lower)
    else:  # hips / seat of the trousers or shorts
        d.rectangle([cx - tw * 0.95, y(0.46), cx + tw * 0.95, y(0.56)], fill=ident.lower)

    # Arms behind the torso (front / back: both at the sides).
    aw = 0.04 * u * ws
    swing = 0.08 * u * phase
    if not side:
        for s in (-1, 1):
            ax = cx + s * (tw + aw * 0.6)
            _quad(d, ax, y(0.16), ax + s * 0.015 * u, y(0.46), aw, aw * 0.85, sleeve)
            _quad(d, ax, y(0.16), ax + s * 0.01 * u, y(0.27), aw * 1.05, aw, ident.upper)
            d.ellipse([ax - aw, y(0.45), ax + aw + s * 0.015 * u, y(0.5)], fill=ident.skin)

    # Torso with its pattern.
    t0, t1 = y(0.15), y(0.50)
    d.rounded_rectangle([cx - tw, t0, cx + tw, t1], radius=max(1, int(0.03 * u)),
                        fill=ident.upper)
    period = max(2.0, ident.pattern_period * (t1 - t0))
    if ident.upper_pattern == "stripes":
        yy = t0 + period * 0.5
        while yy < t1 - 1:
            d.rectangle([cx - tw, yy, cx + tw, yy + period * 0.45], fill=ident.upper2)
            yy += period
    elif ident.upper_pattern == "checks":
        yy, row = t0, 0
        while yy < t1 - 1:
            xx = cx - tw + (row % 2) * period
            while xx < cx + tw - 1:
                d.rectangle([xx, yy, min(xx + period, cx + tw), min(yy + period, t1)],
                            fill=ident.upper2)
                xx += 2 * period
            yy += period
            row += 1
    elif ident.upper_pattern == "logo" and view == FRONT:
        r = 0.055 * u
        ly = y(0.27)
        if ident.logo_shape == "circle":
            d.ellipse([cx - r, ly - r, cx + r, ly + r], fill=ident.upper2)
        elif ident.logo_shape == "square":
            d.rectangle([cx - r, ly - r, cx + r, ly + r], fill=ident.upper2)
        else:
            d.polygon([(cx, ly - r * 1.2), (cx + r * 1.2, ly + r), (cx - r * 1.2, ly + r)],
                      fill=ident.upper2)

    # Bags in front of / on the torso.
    if ident.bag == "backpack":
        if view == BACK:
            d.rounded_rectangle([cx - tw * 0.8, y(0.17), cx + tw * 0.8, y(0.44)],
                                radius=max(1, int(0.03 * u)), fill=ident.bag_color)
        elif view == FRONT:
            for s in (-1, 1):
                d.line([cx + s * tw * 0.6, t0, cx + s * tw * 0.6, y(0.38)],
                       fill=ident.bag_color, width=max(1, int(0.02 * u)))
    elif ident.bag in ("shoulder", "handbag") and bag_visible:
        if side:
            bx = cx + face * 0.02 * u
        else:
            bx = cx + bag_x_sign * (tw + 0.06 * u)
        top_f = 0.40 if ident.bag == "shoulder" else 0.47
        size = 0.075 if ident.bag == "shoulder" else 0.055
        if ident.bag == "shoulder" and not side:
            d.line([cx - bag_x_sign * tw * 0.8, t0, bx, y(top_f)], fill=ident.bag_color,
                   width=max(1, int(0.015 * u)))
        d.rectangle([bx - size * u, y(top_f), bx + size * u, y(top_f + 1.6 * size)],
                    fill=ident.bag_color)

    # Side view: the near arm swings over the torso.
    if side:
        ax = cx
        _quad(d, ax, y(0.16), ax + swing, y(0.46), aw, aw * 0.85, sleeve)
        _quad(d, ax, y(0.16), ax + swing * 0.35, y(0.27), aw * 1.05, aw, ident.upper)
        d.ellipse([ax + swing - aw, y(0.44), ax + swing + aw, y(0.5)], fill=ident.skin)

    # Neck, head, hair.
    d.rectangle([cx - 0.025 * u, y(0.12), cx + 0.025 * u, y(0.16)], fill=ident.skin)
    hx = cx + (face * 0.01 * u if side else 0)
    hr, vr = 0.052 * u, 0.068 * u
    head = [hx - hr, y(0.075) - vr, hx + hr, y(0.075) + vr]
    if view == BACK and ident.hair_style != "bald":
        d.ellipse(head, fill=ident.hair)
        if ident.hair_style == "long":
            d.rectangle([hx - hr, y(0.075), hx + hr, y(0.22)], fill=ident.hair)
    else:
        d.ellipse(head, fill=ident.skin)
        if ident.hair_style in ("short", "long"):
            d.chord([hx - hr, head[1] - 0.01 * u, hx + hr, y(0.11)], 180, 360,
                    fill=ident.hair)
            if side:  # hair over the back of the head
                d.pieslice(head, 90 if face > 0 else -90, 270 if face > 0 else 90,
                           fill=ident.hair)
    if ident.hair_style == "cap":
        d.chord([hx - hr * 1.05, head[1] - 0.01 * u, hx + hr * 1.05, y(0.09)], 180, 360,
                fill=ident.hat)
        if view != BACK:
            bx0 = hx if side else hx - hr
            bx1 = hx + face * hr * 1.6 if side else hx + hr
            d.rectangle([min(bx0, bx1), y(0.075), max(bx0, bx1), y(0.09)], fill=ident.hat)


def draw_occluder(img: Image.Image, rng: np.random.Generator) -> None:
    """A partial occluder: a railing / bench / car at the bottom, a pole, or the
    edge of a passer-by."""
    w, h = img.size
    d = ImageDraw.Draw(img)
    kind = rng.integers(3)
    col = tuple(int(x) for x in rng.integers(0, 256, 3))
    if kind == 0:
        top = rng.uniform(0.6, 0.85) * h
        d.rectangle([0, top, w, h], fill=col)
    elif kind == 1:
        x = rng.uniform(0.15, 0.85) * w
        pw = rng.uniform(0.06, 0.18) * w
        d.rectangle([x - pw, 0, x + pw, h], fill=col)
    else:
        other = sample_identity_colours(rng)
        ex = rng.choice([-0.3, 1.3]) * w
        d.ellipse([ex - 0.4 * w, 0.2 * h, ex + 0.4 * w, 1.1 * h], fill=other[0])
        d.ellipse([ex - 0.15 * w, 0.05 * h, ex + 0.15 * w, 0.2 * h], fill=other[1])


def sample_identity_colours(rng: np.random.Generator) -> Tuple[RGB, RGB]:
    c = rng.integers(0, 256, (2, 3))
    return tuple(int(x) for x in c[0]), tuple(int(x) for x in c[1])  # type: ignore


# ---------------------------------------------------------------------------
# The camera

def effective_resolution(look: CameraLook) -> float:
    """The downscale factor that renders both the camera's resolution and its
    optical blur: bilinear down- and up-sampling by r low-passes like a Gaussian of
    sigma ~ 0.5 / r pixels, so blur sigma s is rendered as r <= 1 / sqrt(1 + (2s)^2)."""
    return min(look.resolution, 1.0 / float(np.sqrt(1.0 + (2.0 * look.blur) ** 2)))


_CHANNEL_OFFSET = np.array([0, 256, 512], dtype=np.int16)


def tone_curve(gains: np.ndarray, look: CameraLook) -> np.ndarray:
    """Per-channel [3, 256] lookup table of the camera's light:
    v -> 255 * (clip((v * gain - 110) * contrast + 110 + brightness) / 255) ** gamma."""
    x = np.arange(256, dtype=np.float64)[None, :] * gains[:, None]
    x = np.clip((x - 110.0) * look.contrast + 110.0 + look.brightness, 0, 255)
    return (255.0 * (x / 255.0) ** look.gamma).astype(np.float32)


def noise_bank(look: CameraLook, size: Tuple[int, int],
               rng: np.random.Generator) -> np.ndarray:
    """A camera's sensor noise, twice the crop height: each image takes a random
    window of it (float32, 0-255 units)."""
    h, w = size
    return (rng.standard_normal((2 * h, w, 3)) * look.noise).astype(np.float32)


def apply_camera(img: Image.Image, look: CameraLook, rng: np.random.Generator,
                 size: Tuple[int, int], noise: Optional[np.ndarray] = None) -> Image.Image:
    """Camera optics and light: down- and up-sampling (resolution and blur), the
    tone curve (colour cast x per-image illumination, contrast, gamma), then a
    window of the camera's sensor noise."""
    h, w = size
    r = effective_resolution(look)
    if r < 0.98:
        small = (max(8, int(round(w * r))), max(16, int(round(h * r))))
        img = img.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    gains = np.asarray(look.gains) * rng.uniform(0.88, 1.12) * (1 + rng.normal(0, 0.03, 3))
    lut = tone_curve(gains, look).ravel()
    a = lut[np.asarray(img).astype(np.int16) + _CHANNEL_OFFSET]
    if noise is not None and look.noise > 0:
        off = int(rng.integers(0, noise.shape[0] - h + 1))
        window = noise[off:off + h]
        a = a + (window[:, ::-1] if rng.random() < 0.5 else window)
    np.clip(a, 0, 255, out=a)
    return Image.fromarray((a + 0.5).astype(np.uint8), "RGB")


def choose_view(look: CameraLook, rng: np.random.Generator) -> int:
    return int(rng.choice(4, p=np.asarray(look.views) / np.sum(look.views)))


def render_image(style: DomainStyle, look: CameraLook, scene: Image.Image,
                 ident: Optional[Identity], kind: str, size: Tuple[int, int],
                 rng: np.random.Generator, noise: Optional[np.ndarray] = None
                 ) -> Image.Image:
    """One crop of camera `look`: 'person' (ident), 'distractor' (a stranger in a
    badly framed crop) or 'junk' (mostly background, a sliver of someone)."""
    h, w = size
    img = background_crop(scene, look, size, rng)
    if kind == "person":
        u = h * rng.uniform(*look.person_height) * ident.height
        top = h * rng.uniform(0.0, 0.04) + (h - u) * rng.uniform(0.3, 0.9) - h * 0.02
        cx = w * (0.5 + rng.normal(0, 0.05))
        draw_person(img, ident, choose_view(look, rng), cx, top, u, style.body_width, rng)
        if rng.random() < look.occlusion:
            draw_occluder(img, rng)
    elif kind == "distractor":
        stranger = sample_identity(style, rng)
        u = h * rng.uniform(0.6, 1.4)
        draw_person(img, stranger, choose_view(look, rng), w * rng.uniform(0.2, 0.8),
                    h * rng.uniform(-0.4, 0.3), u, style.body_width, rng)
    elif kind == "junk":
        if rng.random() < 0.6:
            stranger = sample_identity(style, rng)
            u = h * rng.uniform(0.8, 1.6)
            draw_person(img, stranger, choose_view(look, rng),
                        w * rng.choice([-0.25, 1.25]) + rng.normal(0, 0.1 * w),
                        h * rng.uniform(-0.6, 0.5), u, style.body_width, rng)
    else:
        raise ValueError(f"unknown image kind {kind!r}")
    return apply_camera(img, look, rng, size, noise)
