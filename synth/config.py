"""SynthReID presets, JSON overrides and their validation.

A configuration is a nested dict:

    {"height": 128, "width": 64, "jpeg_quality": 90,
     "domains": {"source": {...domain...}, "target": {...domain...}}}

A domain holds its rendering style and difficulty and where its ST structure comes
from: `"st": "network"` simulates a camera network (`identities`, `network`, ...);
`"st": "lists"` renders one image for every name of the real lists in the --lists
folder (train.txt, query.txt, gallery.txt). `--config FILE` is a JSON dict merged
over the preset; every key must be one the preset knows (a new domain name starts
from `DOMAIN_DEFAULTS`). Bad values stop with a `ConfigError` naming the key.
"""
from __future__ import annotations

import copy
import os
from dataclasses import fields
from typing import Any, Dict, Optional

from core.errors import InputError, read_json_object
from synth.network import NetworkParams
from synth.styles import STYLES


class ConfigError(InputError):
    """A SynthReID configuration that cannot be used."""


NETWORK_DEFAULTS: Dict[str, Any] = {
    f.name: (list(f.default) if isinstance(f.default, tuple) else f.default)
    for f in fields(NetworkParams)}

DOMAIN_DEFAULTS: Dict[str, Any] = {
    "style": "street",
    "st": "network",            # 'network' (simulated) or 'lists' (real names)
    "identities": 150,          # simulated people (network only)
    "test_fraction": 0.5,       # share of identities in query/gallery (network only)
    "distractors": 0,           # pid 0 gallery images (network only)
    "junk": 0,                  # pid -1 gallery images (network only)
    "clusters": 40,             # clothing prototypes shared by identities
    "cluster_share": 0.6,       # P(an attribute group is copied from the prototype)
    "colour_jitter": 0.08,      # shade variation of copied garments
    "difficulty": 1.0,          # scales camera departures from neutral
    "network": NETWORK_DEFAULTS,
}

TOP_DEFAULTS: Dict[str, Any] = {"height": 128, "width": 64, "jpeg_quality": 90,
                                "domains": {}}


def _domain(**over: Any) -> Dict[str, Any]:
    d = copy.deepcopy(DOMAIN_DEFAULTS)
    net = over.pop("network", {})
    d.update(over)
    d["network"].update(net)
    return d


PRESETS: Dict[str, Dict[str, Any]] = {
    # Seconds to render; a few ids with several images over >= 2 cameras per domain.
    "tiny": {"domains": {
        "source": _domain(style="street", identities=16, test_fraction=0.25,
                          distractors=4, junk=2, clusters=6,
                          network={"cameras": 3, "sessions": 2, "duration_s": 300.0,
                                   "transit_s": [5.0, 20.0], "exit_prob": 0.2,
                                   "min_visits": 3, "images_per_visit": [2, 3],
                                   "detect_prob": 1.0, "gap_s": 5.0}),
        "target": _domain(style="mall", identities=24, test_fraction=0.5,
                          distractors=6, junk=3, clusters=8,
                          network={"cameras": 3, "sessions": 2, "duration_s": 300.0,
                                   "transit_s": [5.0, 20.0], "exit_prob": 0.2,
                                   "min_visits": 3, "images_per_visit": [2, 3],
                                   "detect_prob": 1.0, "gap_s": 5.0}),
    }},
    # The default of `make demo`. Source: a labeled domain shaped like the small real
    # sources (CUHK01, VIPeR: many identities, a few images each): ~600 train ids of
    # ~4.8 images over ~2 cameras, so that 400 pretraining steps of 16 ids x 4 images
    # draw every identity ~10 times. Target: 6 cameras whose recording sessions
    # follow nearly independent schedules (as Market-1501's, which cut 3-6 sequences
    # of different lengths), people walking 3-12 visits; ~160 train ids, ~3,000
    # train and ~3,300 query + gallery images, with Market-1501's per-identity
    # statistics (synth/README.md, benchmarks/bench_synth_stats.py).
    "demo": {"domains": {
        "source": _domain(style="street", identities=670, test_fraction=0.1,
                          distractors=20, junk=10, clusters=40,
                          network={"cameras": 6, "sessions": 2, "duration_s": 1800.0,
                                   "min_visits": 2, "max_visits": 3, "exit_prob": 0.5,
                                   "images_per_visit": [1, 3], "detect_prob": 1.0}),
        "target": _domain(style="mall", identities=290, test_fraction=0.5,
                          distractors=200, junk=100, clusters=40,
                          network={"cameras": 6, "sessions": 3, "duration_s": 7200.0,
                                   "session_jitter_s": 2400.0, "renumber_prob": 0.0,
                                   "one_way": 0.5, "extra_links": 3,
                                   "revisit_prob": 0.05, "min_visits": 3,
                                   "max_visits": 8, "exit_prob": 0.1,
                                   "images_per_visit": [2, 5]}),
    }},
    # One image per real Market-1501 name (36,036 with the full lists).
    "market": {"domains": {"market": _domain(style="street", st="lists", clusters=120)}},
}


# The demo's source and camera network with a larger target: ~700 identities (~11,000
# train images, ~16 true cross-camera matches per image), for measuring what a RankNet
# round learns on a dense target (benchmarks/bench_ranknet.py --preset dense).
PRESETS["dense"] = copy.deepcopy(PRESETS["demo"])
PRESETS["dense"]["domains"]["target"].update(identities=700, test_fraction=0.25)

# What `tfusion run --preset NAME` trains on each preset with (pipeline/run_config.py
# RunConfig fields; the rest keep their defaults): steps, rounds and the gates on
# fused rank-1. `tiny` is a smoke run (~3 min); `demo` is what `make demo` runs.
RUN_PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": {"pretrain": {"steps": 40}, "ranknet": {"steps": 20},
             "min_fused_rank1": 5.0, "max_fused_rank1_drop": 5.0},
    "demo": {"rounds": 2, "pretrain": {"steps": 400}, "ranknet": {"steps": 300},
             "min_fused_rank1": 30.0, "max_fused_rank1_drop": 2.0},
}


def _merge(base: Dict[str, Any], over: Dict[str, Any], where: str) -> None:
    """Merge `over` into `base` in place; unknown keys and wrong types are errors."""
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if where == "domains" and key not in base:
            base[key] = copy.deepcopy(DOMAIN_DEFAULTS)   # a new domain
        if key not in base:
            raise ConfigError(f"unknown key {path!r}; known here: "
                              f"{', '.join(sorted(base)) or '(none)'}")
        cur = base[key]
        if isinstance(cur, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: expected an object, got {value!r}")
            _merge(cur, value, path)
        elif isinstance(cur, list):
            if not (isinstance(value, list) and len(value) == len(cur)
                    and all(_is_number(v) for v in value)):
                raise ConfigError(f"{path}: expected a list of {len(cur)} numbers, "
                                  f"got {value!r}")
            base[key] = list(value)
        elif isinstance(cur, bool) or isinstance(cur, str):
            if type(value) is not type(cur):
                raise ConfigError(f"{path}: expected a {type(cur).__name__}, got {value!r}")
            base[key] = value
        elif isinstance(cur, int):
            if not (isinstance(value, int) and not isinstance(value, bool)):
                raise ConfigError(f"{path}: expected an integer, got {value!r}")
            base[key] = value
        elif isinstance(cur, float):
            if not _is_number(value):
                raise ConfigError(f"{path}: expected a number, got {value!r}")
            base[key] = float(value)
        else:  # pragma: no cover - templates only hold the types above
            raise ConfigError(f"{path}: cannot override")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{key}: {msg}")


def validate(cfg: Dict[str, Any]) -> None:
    """Range checks of a merged configuration (types were checked by the merge)."""
    _check(cfg["height"] >= 16 and cfg["width"] >= 8, "height/width",
           f"image size must be at least 16x8 pixels, got {cfg['height']}x{cfg['width']}")
    _check(1 <= cfg["jpeg_quality"] <= 95, "jpeg_quality", "must be in 1..95")
    _check(bool(cfg["domains"]), "domains", "at least one domain is needed")
    for name, d in cfg["domains"].items():
        k = f"domains.{name}"
        _check(name.isidentifier(), k, "domain names must be simple words (a folder name)")
        _check(d["style"] in STYLES, f"{k}.style",
               f"unknown style {d['style']!r}; known: {', '.join(STYLES)}")
        _check(d["st"] in ("network", "lists"), f"{k}.st", "must be 'network' or 'lists'")
        _check(d["identities"] >= 2, f"{k}.identities", "must be >= 2")
        _check(0.0 <= d["test_fraction"] < 1.0, f"{k}.test_fraction", "must be in [0, 1)")
        for key in ("distractors", "junk"):
            _check(d[key] >= 0, f"{k}.{key}", "must be >= 0")
        _check(d["clusters"] >= 1, f"{k}.clusters", "must be >= 1")
        _check(0.0 <= d["cluster_share"] <= 1.0, f"{k}.cluster_share", "must be in [0, 1]")
        _check(d["colour_jitter"] >= 0, f"{k}.colour_jitter", "must be >= 0")
        _check(d["difficulty"] >= 0, f"{k}.difficulty", "must be >= 0")
        n = d["network"]
        kn = f"{k}.network"
        _check(n["cameras"] >= 2, f"{kn}.cameras", "must be >= 2")
        _check(n["sessions"] >= 1, f"{kn}.sessions", "must be >= 1")
        for key in ("duration_s", "fps"):
            _check(n[key] > 0, f"{kn}.{key}", "must be > 0")
        for key in ("gap_s", "transit_cv", "extra_links", "session_jitter_s"):
            _check(n[key] >= 0, f"{kn}.{key}", "must be >= 0")
        _check(n["renumber_max"] >= 0, f"{kn}.renumber_max", "must be >= 0")
        for key in ("one_way", "exit_prob", "revisit_prob", "renumber_prob"):
            _check(0.0 <= n[key] <= 1.0, f"{kn}.{key}", "must be in [0, 1]")
        _check(0.0 < n["detect_prob"] <= 1.0, f"{kn}.detect_prob", "must be in (0, 1]")
        for key in ("transit_s", "revisit_s", "dwell_s", "images_per_visit"):
            lo, hi = n[key]
            _check(0 < lo <= hi, f"{kn}.{key}", f"must be [low, high] with 0 < low <= "
                                                f"high, got {n[key]}")
        _check(all(float(v).is_integer() for v in n["images_per_visit"]),
               f"{kn}.images_per_visit", "must be whole numbers")
        _check(1 <= n["min_visits"] <= n["max_visits"], f"{kn}.min_visits/max_visits",
               "must satisfy 1 <= min_visits <= max_visits")
        _check(n["gap_s"] * n["sessions"] < n["duration_s"], f"{kn}.gap_s",
               "session gaps leave no recording time")


def load_config(preset: str, config_path: Optional[str] = None,
                overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The preset, with the JSON file `config_path` and then `overrides` merged over
    it, validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    cfg = copy.deepcopy(TOP_DEFAULTS)
    cfg.update(copy.deepcopy(PRESETS[preset]))
    if config_path:
        over = read_json_object(config_path, "SynthReID config", ConfigError)
        try:
            _merge(cfg, over, "")
        except ConfigError as e:
            raise ConfigError(f"{config_path}: {e}") from None
    if overrides:
        _merge(cfg, overrides, "")
    try:
        validate(cfg)
    except ConfigError as e:
        raise ConfigError(f"{config_path}: {e}" if config_path else str(e)) from None
    return cfg


def network_params(domain_cfg: Dict[str, Any]) -> NetworkParams:
    n = dict(domain_cfg["network"])
    for key in ("transit_s", "revisit_s", "dwell_s"):
        n[key] = tuple(float(v) for v in n[key])
    n["images_per_visit"] = tuple(int(v) for v in n["images_per_visit"])
    return NetworkParams(**n)


def default_lists_dir() -> str:
    """../shared/data/market relative to the repository root."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.normpath(os.path.join(repo, "..", "shared", "data", "market"))
