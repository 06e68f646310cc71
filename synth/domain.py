"""One SynthReID domain: its style, its cameras' looks, its identities, and the
per-image random generators, all derived from (seed, domain name) so that any worker
process renders the same image for the same name.
"""
from __future__ import annotations

import zlib
from typing import Dict, Optional, Tuple

import numpy as np
from PIL import Image

from synth.identities import Identity, clustered_identity, sample_prototypes
from synth.render import draw_scene, noise_bank, render_image
from synth.styles import STYLES, CameraLook, DomainStyle, camera_look

# Stream tags keep the random streams of one domain apart.
_PROTOTYPES, _CAMERA, _SCENE, _IDENTITY, _IMAGE, _NOISE = 1, 2, 3, 4, 5, 6


def stable_key(text: str) -> int:
    """A 32-bit key of a string that is the same in every process and Python run."""
    return zlib.crc32(text.encode("utf-8"))


class Domain:
    """Deterministic appearance model of one domain."""

    def __init__(self, name: str, style: str, seed: int, clusters: int = 40,
                 cluster_share: float = 0.6, colour_jitter: float = 0.08,
                 difficulty: float = 1.0, size: Tuple[int, int] = (128, 64)) -> None:
        if style not in STYLES:
            raise ValueError(f"unknown domain style {style!r}; known: {', '.join(STYLES)}")
        self.name = name
        self.style: DomainStyle = STYLES[style]
        self.seed = int(seed)
        self.key = stable_key(name)
        self.cluster_share = float(cluster_share)
        self.colour_jitter = float(colour_jitter)
        self.difficulty = float(difficulty)
        self.size = (int(size[0]), int(size[1]))
        self.prototypes = sample_prototypes(self.style, clusters, self.rng(_PROTOTYPES))
        self._looks: Dict[int, CameraLook] = {}
        self._scenes: Dict[int, Image.Image] = {}
        self._identities: Dict[int, Identity] = {}
        self._noise: Dict[int, np.ndarray] = {}

    def rng(self, *tags: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, self.key, *tags]))

    def look(self, camera: int) -> CameraLook:
        if camera not in self._looks:
            self._looks[camera] = camera_look(self.style, camera, self.rng(_CAMERA, camera),
                                              self.difficulty)
        return self._looks[camera]

    def scene(self, camera: int) -> Image.Image:
        if camera not in self._scenes:
            self._scenes[camera] = draw_scene(self.style, self.look(camera), self.size,
                                              self.rng(_SCENE, camera))
        return self._scenes[camera]

    def noise(self, camera: int) -> np.ndarray:
        if camera not in self._noise:
            self._noise[camera] = noise_bank(self.look(camera), self.size,
                                             self.rng(_NOISE, camera))
        return self._noise[camera]

    def identity(self, pid: int) -> Identity:
        """The persistent appearance of person `pid` (> 0)."""
        if pid not in self._identities:
            self._identities[pid] = clustered_identity(
                self.style, self.prototypes, self.cluster_share,
                self.rng(_IDENTITY, pid), self.colour_jitter)
        return self._identities[pid]

    def render(self, key: str, pid: int, camera: int,
               rng: Optional[np.random.Generator] = None) -> Image.Image:
        """The image with key `key` (e.g. 'train/0002_c1s1_000451_03.jpg'): pid > 0
        a person, 0 a distractor, -1 junk. Its randomness comes from (seed, domain,
        key) only."""
        rng = rng or self.rng(_IMAGE, stable_key(key))
        kind = "person" if pid > 0 else ("distractor" if pid == 0 else "junk")
        ident = self.identity(pid) if pid > 0 else None
        return render_image(self.style, self.look(camera), self.scene(camera), ident,
                            kind, self.size, rng, self.noise(camera))
