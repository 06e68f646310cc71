"""Domain styles and per-camera rendering conditions of SynthReID.

A *domain* is a rendering style: the clothing palette people wear there, the lighting
model, the background family and the framing (aspect) of the detector's crops. Two
domains with different styles give the cross-dataset gap that TFusion closes.
Inside a domain every camera gets its own `CameraLook` (colour cast, contrast, blur,
resolution, viewpoint mix, background, occlusion), drawn once from the domain seed.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

RGB = Tuple[int, int, int]


@dataclass(frozen=True)
class DomainStyle:
    """What all cameras of one domain have in common."""
    name: str
    # Clothing palette: anchor hues (degrees) with weights, saturation and value ranges.
    hues: Tuple[float, ...]
    hue_weights: Tuple[float, ...]
    saturation: Tuple[float, float]
    value: Tuple[float, float]
    neutral_rate: float          # share of black / grey / white garments
    # Lighting model: mean per-channel gain, spread of each camera's cast around it,
    # contrast and gamma ranges, sensor noise range (in 0-255 units).
    light: Tuple[float, float, float]
    cast_spread: float
    illumination: Tuple[float, float]    # range of a camera's overall light level
    brightness: float                    # range (+-) of a camera's black-level offset
    contrast: Tuple[float, float]
    gamma: Tuple[float, float]
    noise: Tuple[float, float]
    blur: Tuple[float, float]            # Gaussian sigma, pixels at 128 px height
    resolution: Tuple[float, float]      # downscale factor before upsampling back
    # Background family: 'street' (sky, facades, asphalt) or 'indoor' (walls, shop
    # fronts, tiled floor); base colours are drawn around these HSV anchors.
    background: str
    background_hues: Tuple[float, ...]
    clutter: Tuple[float, float]         # objects per image
    # Framing: person height as a share of the crop, and body width scale.
    person_height: Tuple[float, float]
    body_width: float
    occlusion: float                     # probability of a partial occluder per image


STYLES: Dict[str, DomainStyle] = {
    # Daylight street scenes: saturated primary clothing, cool light, crisp cameras.
    "street": DomainStyle(
        name="street",
        hues=(0, 30, 55, 120, 200, 230, 280, 330),
        hue_weights=(1.2, 0.6, 0.8, 1.0, 1.0, 1.2, 0.6, 0.6),
        saturation=(0.55, 0.95), value=(0.45, 0.95), neutral_rate=0.30,
        light=(0.97, 1.0, 1.05), cast_spread=0.08, illumination=(0.75, 1.2),
        brightness=18.0,
        contrast=(0.95, 1.15), gamma=(0.9, 1.1), noise=(2.0, 5.0),
        blur=(0.0, 0.6), resolution=(0.75, 1.0),
        background="street", background_hues=(210, 100, 30, 0),
        clutter=(1.0, 3.0), person_height=(0.84, 0.94), body_width=1.0,
        occlusion=0.12),
    # Indoor mall: muted, warmer palette, warm and uneven artificial light per camera,
    # lower contrast, blurrier low-resolution cameras, busy shop-front backgrounds.
    "mall": DomainStyle(
        name="mall",
        hues=(10, 25, 40, 90, 170, 210, 260, 340),
        hue_weights=(1.0, 1.0, 0.8, 0.6, 0.7, 1.0, 0.7, 0.8),
        saturation=(0.38, 0.82), value=(0.32, 0.90), neutral_rate=0.33,
        light=(1.07, 1.0, 0.86), cast_spread=0.045, illumination=(0.88, 1.12),
        brightness=10.0,
        contrast=(0.70, 0.95), gamma=(0.85, 1.25), noise=(3.0, 8.0),
        blur=(0.2, 0.9), resolution=(0.55, 0.9),
        background="indoor", background_hues=(40, 20, 190, 300),
        clutter=(2.0, 5.0), person_height=(0.88, 0.98), body_width=1.12,
        occlusion=0.22),
    # Campus at dusk: cold blue light, dark clothing, strong noise.
    "campus": DomainStyle(
        name="campus",
        hues=(0, 60, 120, 180, 220, 250, 300),
        hue_weights=(0.8, 0.6, 0.8, 0.7, 1.2, 1.0, 0.5),
        saturation=(0.35, 0.85), value=(0.25, 0.75), neutral_rate=0.45,
        light=(0.88, 0.95, 1.12), cast_spread=0.05, illumination=(0.85, 1.15),
        brightness=12.0,
        contrast=(0.8, 1.05), gamma=(1.0, 1.3), noise=(4.0, 9.0),
        blur=(0.2, 0.9), resolution=(0.5, 0.9),
        background="street", background_hues=(230, 130, 260, 30),
        clutter=(1.0, 4.0), person_height=(0.80, 0.92), body_width=0.95,
        occlusion=0.18),
}


def hsv(h_deg: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb((h_deg % 360) / 360.0, min(max(s, 0), 1),
                                  min(max(v, 0), 1))
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass(frozen=True)
class CameraLook:
    """Rendering conditions of one camera (fixed for all its images)."""
    camera: int
    gains: Tuple[float, float, float]    # per-channel colour cast x illumination
    brightness: float                    # additive offset, 0-255 units
    contrast: float
    gamma: float
    noise: float
    blur: float
    resolution: float
    views: Tuple[float, float, float, float]   # P(front), P(back), P(left), P(right)
    walls: Tuple[RGB, RGB, RGB]          # background base colours (top, middle, floor)
    clutter: float
    occlusion: float
    person_height: Tuple[float, float]
    horizon: float                       # where the floor starts (share of height)


def camera_look(style: DomainStyle, camera: int, rng: np.random.Generator,
                difficulty: float = 1.0) -> CameraLook:
    """Draw one camera's conditions from the domain style.

    `difficulty` scales how far cameras depart from neutral (cast, blur, noise,
    occlusion); 1.0 is the style's own range.
    """
    d = max(difficulty, 0.0)
    base = np.array(style.light)
    cast = base * (1.0 + d * style.cast_spread * rng.standard_normal(3))
    illum = 1.0 + d * (rng.uniform(*style.illumination) - 1.0)
    gains = tuple(float(x) for x in np.clip(cast * illum, 0.35, 1.8))
    lo, hi = style.contrast
    contrast = 1.0 + d * (rng.uniform(lo, hi) - 1.0)
    gamma = 1.0 + d * (rng.uniform(*style.gamma) - 1.0)
    # A camera looks along a walkway: mostly fronts or mostly backs, some sides.
    along = rng.dirichlet((2.0, 2.0, 0.7, 0.7))
    hue = rng.choice(style.background_hues)
    if style.background == "street":
        walls = (hsv(rng.uniform(195, 225), rng.uniform(0.1, 0.4), rng.uniform(0.7, 0.95)),
                 hsv(hue + rng.uniform(-20, 20), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.75)),
                 hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.12), rng.uniform(0.3, 0.6)))
    else:
        walls = (hsv(hue + rng.uniform(-15, 15), rng.uniform(0.08, 0.3), rng.uniform(0.55, 0.9)),
                 hsv(rng.uniform(0, 360), rng.uniform(0.15, 0.45), rng.uniform(0.4, 0.85)),
                 hsv(rng.uniform(20, 50), rng.uniform(0.05, 0.25), rng.uniform(0.55, 0.85)))
    ph_lo, ph_hi = style.person_height
    shrink = rng.uniform(-0.04, 0.02)
    return CameraLook(
        camera=camera, gains=gains, brightness=float(d * rng.uniform(-1, 1) * style.brightness),
        contrast=float(contrast), gamma=float(gamma),
        noise=float(d * rng.uniform(*style.noise)),
        blur=float(d * rng.uniform(*style.blur)),
        resolution=float(np.clip(1.0 - d * (1.0 - rng.uniform(*style.resolution)),
                                 0.25, 1.0)),
        views=tuple(float(x) for x in along),
        walls=walls, clutter=float(rng.uniform(*style.clutter)),
        occlusion=float(min(0.9, d * style.occlusion * rng.uniform(0.5, 1.5))),
        person_height=(ph_lo + shrink, min(0.99, ph_hi + shrink)),
        horizon=float(rng.uniform(0.55, 0.75)))
