"""Persistent appearance of SynthReID identities, with shared clothing clusters.

Every identity has fixed attributes (upper/lower garment colours and patterns, a bag
or none and its side, hair and skin tone, body height and width, shoes). Identities
are drawn around a few cluster prototypes ("everyone wears a navy coat and jeans"):
each attribute group is copied, slightly jittered, from the identity's prototype with
probability `share`, else drawn fresh, so identities of one cluster are hard
negatives of each other.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import List, Tuple

import numpy as np

from synth.styles import RGB, DomainStyle, hsv

UPPER_PATTERNS = ("solid", "stripes", "checks", "logo")
LOWER_TYPES = ("trousers", "shorts", "skirt")
BAGS = ("none", "backpack", "shoulder", "handbag")
HAIR_STYLES = ("short", "long", "cap", "bald")
LOGO_SHAPES = ("circle", "square", "triangle")

_SKIN = ((255, 224, 196), (241, 194, 160), (224, 172, 128), (198, 134, 96),
         (141, 85, 54), (96, 60, 40))
_HAIR = ((20, 16, 14), (60, 40, 25), (110, 75, 40), (180, 140, 80), (150, 150, 150),
         (230, 210, 150))


@dataclass(frozen=True)
class Identity:
    """Everything that stays the same for one person across cameras."""
    upper: RGB
    upper2: RGB                 # second colour of stripes / checks / logo
    upper_pattern: str
    pattern_period: float       # stripe / check period, share of torso height
    long_sleeves: bool
    logo_shape: str
    lower: RGB
    lower_type: str
    shoes: RGB
    skin: RGB
    hair: RGB
    hair_style: str
    hat: RGB
    bag: str
    bag_color: RGB
    bag_side: int               # -1 = person's left, +1 = right
    height: float               # relative body height, ~0.9-1.0
    width: float                # relative body width, ~0.85-1.2


def garment_colour(style: DomainStyle, rng: np.random.Generator) -> RGB:
    """A clothing colour from the domain palette (or a neutral)."""
    if rng.random() < style.neutral_rate:
        return hsv(rng.uniform(0, 360), rng.uniform(0.0, 0.12), rng.choice(
            [rng.uniform(0.08, 0.25), rng.uniform(0.35, 0.6), rng.uniform(0.8, 0.97)]))
    w = np.asarray(style.hue_weights, float)
    hue = style.hues[rng.choice(len(w), p=w / w.sum())] + rng.normal(0, 8)
    return hsv(hue, rng.uniform(*style.saturation), rng.uniform(*style.value))


def jitter(c: RGB, rng: np.random.Generator, amount: float) -> RGB:
    """A nearby colour (same garment bought in another shade)."""
    out = np.asarray(c, float) * (1 + rng.normal(0, amount * 0.5)) \
        + rng.normal(0, amount * 40, 3)
    return tuple(int(x) for x in np.clip(out, 0, 255))  # type: ignore[return-value]


def sample_identity(style: DomainStyle, rng: np.random.Generator) -> Identity:
    """A fresh identity, every attribute drawn independently."""
    pattern = UPPER_PATTERNS[rng.choice(4, p=[0.45, 0.22, 0.15, 0.18])]
    bag = BAGS[rng.choice(4, p=[0.4, 0.25, 0.2, 0.15])]
    return Identity(
        upper=garment_colour(style, rng), upper2=garment_colour(style, rng),
        upper_pattern=pattern, pattern_period=float(rng.uniform(0.12, 0.3)),
        long_sleeves=bool(rng.random() < 0.6),
        logo_shape=LOGO_SHAPES[rng.integers(3)],
        lower=garment_colour(style, rng),
        lower_type=LOWER_TYPES[rng.choice(3, p=[0.7, 0.18, 0.12])],
        shoes=garment_colour(style, rng),
        skin=_SKIN[rng.integers(len(_SKIN))],
        hair=_HAIR[rng.integers(len(_HAIR))],
        hair_style=HAIR_STYLES[rng.choice(4, p=[0.5, 0.3, 0.12, 0.08])],
        hat=garment_colour(style, rng),
        bag=bag, bag_color=garment_colour(style, rng),
        bag_side=int(rng.choice([-1, 1])),
        height=float(rng.uniform(0.88, 1.0)),
        width=float(rng.uniform(0.85, 1.2)))


def sample_prototypes(style: DomainStyle, n: int, rng: np.random.Generator) -> List[Identity]:
    """The clothing clusters of a domain: `n` prototype outfits."""
    return [sample_identity(style, rng) for _ in range(max(n, 1))]


# Attribute groups copied together from a prototype.
_GROUPS: Tuple[Tuple[str, ...], ...] = (
    ("upper", "upper2", "upper_pattern", "pattern_period", "long_sleeves", "logo_shape"),
    ("lower", "lower_type"),
    ("shoes",),
    ("hair", "hair_style", "hat"),
    ("bag", "bag_color", "bag_side"),
)
_COLOURS = {"upper", "upper2", "lower", "shoes", "hat", "bag_color"}


def clustered_identity(style: DomainStyle, prototypes: List[Identity], share: float,
                       rng: np.random.Generator, colour_jitter: float = 0.08) -> Identity:
    """An identity near one prototype: each attribute group is copied (and its
    colours jittered) with probability `share`, else drawn fresh."""
    fresh = sample_identity(style, rng)
    proto = prototypes[rng.integers(len(prototypes))]
    changes = {}
    for group in _GROUPS:
        if rng.random() < share:
            for attr in group:
                v = getattr(proto, attr)
                changes[attr] = jitter(v, rng, colour_jitter) if attr in _COLOURS else v
    return replace(fresh, **changes)
