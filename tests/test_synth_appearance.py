"""SynthReID appearance: identities, clothing clusters, viewpoints, learnability."""
from dataclasses import replace

import numpy as np
from PIL import Image

from synth.baseline import colour_histogram
from synth.domain import Domain
from synth.identities import Identity, clustered_identity, sample_prototypes
from synth.render import BACK, FRONT, LEFT, RIGHT, draw_person
from synth.styles import STYLES


def _person(ident: Identity, view: int) -> np.ndarray:
    img = Image.new("RGB", (64, 128), (0, 0, 0))
    draw_person(img, ident, view, 32, 8, 115, 1.0, np.random.default_rng(0))
    return np.asarray(img)


def _has(a: np.ndarray, colour) -> int:
    return int(np.all(a == np.array(colour), axis=-1).sum())


def _base(rng_seed=0) -> Identity:
    protos = sample_prototypes(STYLES["street"], 1, np.random.default_rng(rng_seed))
    return replace(protos[0], upper=(200, 10, 10), upper2=(10, 200, 10),
                   bag_color=(10, 10, 200), hair_style="short")


def test_logo_only_seen_from_the_front():
    ident = replace(_base(), upper_pattern="logo")
    assert _has(_person(ident, FRONT), ident.upper2) > 10
    for view in (BACK, LEFT, RIGHT):
        assert _has(_person(ident, view), ident.upper2) == 0


def test_backpack_from_behind_shoulder_bag_from_its_side():
    backpack = replace(_base(), bag="backpack")
    assert _has(_person(backpack, BACK), backpack.bag_color) > \
        3 * _has(_person(backpack, FRONT), backpack.bag_color)
    bag = replace(_base(), bag="shoulder", bag_side=-1)   # on the person's left
    assert _has(_person(bag, LEFT), bag.bag_color) > 10
    assert _has(_person(bag, RIGHT), bag.bag_color) == 0


def test_clusters_share_outfits():
    style = STYLES["mall"]
    rng = np.random.default_rng(0)
    protos = sample_prototypes(style, 3, rng)
    uppers = {p.upper for p in protos}
    shared = [clustered_identity(style, protos, 1.0, rng, colour_jitter=0.0)
              for _ in range(30)]
    assert all(i.upper in uppers for i in shared)
    fresh = [clustered_identity(style, protos, 0.0, rng) for _ in range(30)]
    assert sum(i.upper in uppers for i in fresh) < 5


def test_identity_is_visible_across_cameras():
    """Same person in two cameras is closer (colour histograms) than two people."""
    dom = Domain("target", "mall", seed=0)
    feats = {(pid, cam): np.mean([colour_histogram(dom.render(f"{pid}/{cam}/{k}", pid, cam))
                                  for k in range(3)], axis=0)
             for pid in range(1, 31) for cam in (1, 2)}

    def cos(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    same = np.mean([cos(feats[(p, 1)], feats[(p, 2)]) for p in range(1, 31)])
    diff = np.mean([cos(feats[(p, 1)], feats[(q, 2)])
                    for p in range(1, 31) for q in range(1, 31) if p != q])
    assert same > diff + 0.02


def test_cameras_and_domains_look_different():
    src, tgt = Domain("source", "street", 0), Domain("target", "mall", 0)
    looks = [tgt.look(c) for c in (1, 2, 3)]
    assert len({l.gains for l in looks}) == 3 and len({l.walls for l in looks}) == 3
    # The target's light is warmer (red over blue gain) than the source's.
    warm = np.mean([l.gains[0] / l.gains[2] for l in looks])
    cool = np.mean([src.look(c).gains[0] / src.look(c).gains[2] for c in (1, 2, 3)])
    assert warm > cool


def test_every_style_renders_people_distractors_and_junk():
    for style in STYLES:
        dom = Domain(f"d_{style}", style, seed=1, size=(96, 48))
        for pid in (5, 0, -1):
            a = np.asarray(dom.render(f"x/{pid}", pid, camera=2))
            assert a.shape == (96, 48, 3) and a.std() > 5
        assert (np.asarray(dom.render("x/a", 5, 2)) != np.asarray(dom.render("x/b", 5, 2))).any()
