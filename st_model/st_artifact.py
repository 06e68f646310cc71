"""The ST model artifact: histogram counts + a versioned JSON header, in one .npz.

Arrays (version 2): `visual` float64 [M, M, B] (summed neighbour weights per ordered
node pair and bin), `visual_sq` float64 [M, M, B] (summed squared clump weights: the
chance level's variance), `random` int64 [M, M, B] (all in-reach pairs; the diff
model is random − visual), `node_camera`, `node_sequence` int64 [M].
Header (JSON string array `header`): format version, mode, bin width and origin,
frame rate, bandwidth and how it was chosen, κ, pseudo-count, floors, how the
evidence is read (`evidence`), counts.
Version 1 artifacts (integer top-k counts, no `visual_sq`) load as hard top-k
evidence with unit weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

import numpy as np

from core.errors import InputError
from st_model.histograms import DeltaGrid
from st_model.nodes import NodeIndex

FORMAT = "tfusion-st-model"
VERSION = 2
READABLE_VERSIONS = (1, 2)
FILENAME = "st_model.npz"
PLOT_FILENAME = "st_model.png"   # its picture (st_model/plot.py)


@dataclass
class STModel:
    """Estimated ST histograms and the parameters that turn them into P_st / P_rand."""
    nodes: NodeIndex
    grid: DeltaGrid
    visual: np.ndarray   # float64 [M, M, B] summed neighbour weights
    random: np.ndarray   # int64 [M, M, B]
    params: Dict[str, Any] = field(default_factory=dict)
    visual_sq: Optional[np.ndarray] = None  # float64 [M, M, B]; None: unit weights

    def __post_init__(self):
        self.visual = np.asarray(self.visual, np.float64)
        if self.visual_sq is None:
            self.visual_sq = self.visual.copy()
        self.visual_sq = np.asarray(self.visual_sq, np.float64)

    @property
    def frame_rate(self) -> float:
        """Frames per second of the train split's frame numbers (25 when not recorded)."""
        return float(self.params.get("frame_rate", 25.0)) or 25.0

    @property
    def diff(self) -> np.ndarray:
        return self.random - self.visual

    def window_bins(self) -> int:
        """TFusion's ±window_frames box in bins of the grid."""
        return int(round(self.params["window_frames"] / self.grid.width))

    def header(self) -> Dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "mode": self.nodes.mode,
                "nodes": self.nodes.labels(), "bin_frames": self.grid.width,
                "bin_lo": self.grid.lo, "n_bins": self.grid.n_bins,
                "visual_weight": float(self.visual.sum()),
                "random_pairs": int(self.random.sum()), **self.params}

    def same_as(self, other: "STModel") -> bool:
        """Identical histograms, grid, nodes and parameters."""
        return (self.grid == other.grid and self.nodes.mode == other.nodes.mode
                and np.array_equal(self.nodes.cameras, other.nodes.cameras)
                and np.array_equal(self.nodes.sequences, other.nodes.sequences)
                and np.array_equal(self.visual, other.visual)
                and np.array_equal(self.visual_sq, other.visual_sq)
                and np.array_equal(self.random, other.random)
                and json.dumps(self.params, sort_keys=True)
                == json.dumps(other.params, sort_keys=True))


def artifact_path(path: str) -> str:
    """`path` itself for a file name ending in .npz, else FILENAME inside the folder."""
    from core.files import is_folder_path, join_path
    return join_path(path, FILENAME) if is_folder_path(path, ".npz") else path


def save_st_model(model: STModel, path: str) -> str:
    """Write the artifact (path may be a folder: then FILENAME inside it), local or
    on any Beam filesystem."""
    from core.files import write_with
    path = artifact_path(path)
    arrays = dict(visual=model.visual, visual_sq=model.visual_sq, random=model.random,
                  node_camera=model.nodes.cameras, node_sequence=model.nodes.sequences,
                  header=np.array(json.dumps(model.header(), sort_keys=True)))
    return write_with(path, lambda buf: np.savez_compressed(buf, **arrays))


def load_st_model(path: str) -> STModel:
    """Read an artifact written by save_st_model; errors name the file."""
    from core.files import open_file
    path = artifact_path(path)
    try:
        with open_file(path) as f, np.load(f, allow_pickle=False) as z:
            header = json.loads(str(z["header"]))
            arrays = {k: z[k] for k in ("visual", "random", "node_camera", "node_sequence")}
            arrays["visual_sq"] = z["visual_sq"] if "visual_sq" in z.files else None
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise InputError(f"{path}: not an ST model artifact ({e})") from None
    if header.get("format") != FORMAT or header.get("version") not in READABLE_VERSIONS:
        raise InputError(f"{path}: unsupported ST model format "
                         f"{header.get('format')!r} v{header.get('version')!r}; "
                         f"this code reads {FORMAT} v{', v'.join(map(str, READABLE_VERSIONS))}")
    nodes = NodeIndex(header["mode"], arrays["node_camera"], arrays["node_sequence"])
    grid = DeltaGrid(int(header["bin_frames"]), int(header["bin_lo"]), int(header["n_bins"]))
    skip = {"format", "version", "mode", "nodes", "bin_frames", "bin_lo", "n_bins",
            "visual_pairs", "visual_weight", "random_pairs"}
    params = {k: v for k, v in header.items() if k not in skip}
    params.setdefault("evidence", "visual")   # version 1: hard top-k counts
    return STModel(nodes, grid, arrays["visual"], arrays["random"], params,
                   arrays["visual_sq"])
