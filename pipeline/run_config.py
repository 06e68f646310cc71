"""What one `tfusion run` trains on and how: data, rounds, steps, gates, runner, and
the typed settings of TFusion (ST estimation, fusion rule) and of training.

A JSON file (`--config FILE`) holds any of the fields below; unknown keys are an error.
Data come either from dataset folders (`source_dir`, `target_dir`, any layout that
`tfusion ingest` reads) or from a SynthReID preset rendered into OUTPUT/data
(`preset`, `seed`). The run-level settings of the presets (`tiny`, a smoke run, and
`demo`) live beside the SynthReID presets (synth/config.py RUN_PRESETS).

Everything is resolved and validated once, in RunConfig.from_dict: `st` becomes an
st_model.config.STConfig and `fusion_rule` a FusionRule (mode presets applied),
`pretrain` a trainer.config.PretrainConfig and `ranknet` a RankNetConfig. Components get
JSON parameters written from these values (component_io.settings_json / to_dict).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping

from core.dataclass_dict import from_dict, to_dict
from core.errors import InputError, read_json_object
from st_model.config import RENAMED_ST_KEYS, FusionRule, STConfig, resolve_settings
from synth.config import RUN_PRESETS
from trainer.config import PretrainConfig, RankNetConfig

RUNNERS = ("local", "dataflow")
# keys of earlier versions, and what replaced them
RENAMED_KEYS = {"fusion": "split in two: 'st' (ST estimation: mode, top_k, sharpness, "
                          "max_bin_frames, bandwidth, kappa, ...) and 'fusion_rule' "
                          "(fusion, weight, alpha, beta, ranking_top_n, ...)",
                "pretrain_steps": "'pretrain.steps'", "transfer_steps": "'ranknet.steps'"}
# top-level settings shared by both trainers, copied into `pretrain` and `ranknet`
SHARED_KEYS = ("backbone", "seed")
# what a run trains with where PretrainConfig / RankNetConfig defaults differ
PRETRAIN_DEFAULTS: Dict[str, Any] = {"steps": 400, "verification": True}
RANKNET_DEFAULTS: Dict[str, Any] = {"steps": 300}
# nested settings: type, renamed keys, the run's defaults
NESTED = {"st": (STConfig, RENAMED_ST_KEYS, {}), "fusion_rule": (FusionRule, {}, {}),
          "pretrain": (PretrainConfig, {}, PRETRAIN_DEFAULTS),
          "ranknet": (RankNetConfig, {}, RANKNET_DEFAULTS)}


class RunConfigError(InputError):
    """A run configuration that cannot be used (names the file and the field)."""


@dataclass
class RunConfig:
    """One name per setting. Steps and every other training option live in the nested
    `pretrain` (PretrainConfig; the run's defaults: 400 steps, verification head on) and
    `ranknet` (RankNetConfig; 300 steps a round). `seed` and `backbone` are set once, at
    the top level, shared: from_dict copies them into both nested configs (the seed also
    renders the SynthReID preset), so giving them inside `pretrain` / `ranknet` is an
    error, and to_dict leaves the copies out. Build it with from_dict (or load)."""
    name: str = "tfusion"
    # data: dataset folders, or a SynthReID preset rendered into OUTPUT/data
    source_dir: str = ""
    target_dir: str = ""
    preset: str = "demo"
    seed: int = 0                         # shared: the rendered data and both trainers
    # training
    rounds: int = 1                       # RankNet rounds after source pretraining
    backbone: str = "small"               # shared: both trainers
    pretrain: PretrainConfig = field(
        default_factory=lambda: PretrainConfig(**PRETRAIN_DEFAULTS))
    ranknet: RankNetConfig = field(default_factory=lambda: RankNetConfig(**RANKNET_DEFAULTS))
    # TFusion: ST estimation and the fusion rule (resolved: the mode's presets applied)
    st: STConfig = field(default_factory=STConfig)
    fusion_rule: FusionRule = field(default_factory=FusionRule)
    ranknet_module_file: str = ""         # another Trainer module for RankNet rounds
    # gates on the last round (percent): absolute bound, and the largest drop of fused
    # rank-1 against the latest blessed model; the same on the re-ranked fused list
    # when fusion_rule.rerank is on
    min_fused_rank1: float = 5.0
    max_fused_rank1_drop: float = 2.0
    min_fused_reranked_rank1: float = 5.0
    max_fused_reranked_rank1_drop: float = 2.0
    # runner
    runner: str = "local"
    project: str = ""
    region: str = ""
    temp_location: str = ""
    beam_args: List[str] = field(default_factory=list)
    enable_cache: bool = True

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], where: str = "run config") -> "RunConfig":
        """The config of JSON-style values (nested settings as dicts), resolved and
        validated; errors name `where` and the key."""
        given = {k: to_dict(v) if dataclasses.is_dataclass(v) else v
                 for k, v in values.items() if k in NESTED}
        config = from_dict(cls, {k: v for k, v in values.items() if k not in NESTED},
                           where, RunConfigError, renamed=RENAMED_KEYS)
        shared = {k: getattr(config, k) for k in SHARED_KEYS}
        for key, (kind, renamed, defaults) in NESTED.items():
            if not isinstance(given.get(key) or {}, dict):
                raise RunConfigError(f"{where}: {key} must be a JSON object of "
                                     f"{kind.__name__} fields")
            nested = dict(given.get(key) or {})
            if defaults:                        # a trainer's: shared keys, None = default
                for k in set(SHARED_KEYS) & set(nested):
                    raise RunConfigError(f"{where}: {key}: {k!r} is set once, as the "
                                         f"top-level {k!r} (shared by both trainers)")
                nested = {**defaults, **{k: v for k, v in nested.items() if v is not None},
                          **shared}
            try:
                setattr(config, key, from_dict(kind, nested, f"{where}: {key}",
                                               RunConfigError, renamed=renamed))
            except RunConfigError:
                raise
            except InputError as e:
                raise RunConfigError(f"{where}: {key}: {e}") from None
        try:
            config.st, config.fusion_rule = resolve_settings(config.st, config.fusion_rule)
        except InputError as e:
            raise RunConfigError(f"{where}: {e}") from None
        return config.validate(where)

    @classmethod
    def load(cls, path: str, **overrides: Any) -> "RunConfig":
        values = read_json_object(path, "run config", RunConfigError)
        return cls.from_dict(merge_overrides(values, overrides), path)

    def validate(self, where: str = "run config") -> "RunConfig":
        if bool(self.source_dir) != bool(self.target_dir):
            raise RunConfigError(f"{where}: give both source_dir and target_dir, or neither "
                                 "(then the SynthReID preset is rendered)")
        if self.rounds < 0:
            raise RunConfigError(f"{where}: rounds must be >= 0")
        if self.runner not in RUNNERS:
            raise RunConfigError(f"{where}: runner {self.runner!r} is not one of {RUNNERS}")
        if self.runner == "dataflow":
            missing = [k for k in ("project", "region", "temp_location") if not getattr(self, k)]
            if missing:
                raise RunConfigError(f"{where}: the dataflow runner needs {missing}")
        for what in ("fused", "fused_reranked"):
            low, drop = (getattr(self, f"min_{what}_rank1"),
                         getattr(self, f"max_{what}_rank1_drop"))
            if not 0 <= low <= 100 or drop < 0:
                raise RunConfigError(f"{where}: min_{what}_rank1 is a percentage and "
                                     f"max_{what}_rank1_drop >= 0")
        if self.beam_args:
            from pipeline.beam_options import check_options
            check_options(self.beam_args, f"{where}: beam_args")
        return self

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able values that from_dict reads back (the shared keys only at the top)."""
        out = to_dict(self)
        for key in ("pretrain", "ranknet"):
            out[key] = {k: v for k, v in out[key].items() if k not in SHARED_KEYS}
        return out


def merge_overrides(values: Dict[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """`values` with the overrides that are not None; nested settings (NESTED: dicts)
    are merged key by key."""
    out = dict(values)
    for key, value in overrides.items():
        if value is None:
            continue
        if key in NESTED and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def preset_config(preset: str, **overrides: Any) -> RunConfig:
    """The run config of a preset (synth/config.py RUN_PRESETS), with overrides."""
    if preset not in RUN_PRESETS:
        raise RunConfigError(f"unknown preset {preset!r}; known: {sorted(RUN_PRESETS)}")
    values = {"preset": preset, **RUN_PRESETS[preset]}
    return RunConfig.from_dict(merge_overrides(values, overrides), f"preset {preset}")


def beam_pipeline_args(config: RunConfig) -> List[str]:
    """Beam options every Beam component of the run gets (pipeline.beam_options)."""
    from pipeline.beam_options import beam_args
    args = list(config.beam_args)
    if config.runner == "dataflow":
        args = [f"--runner=DataflowRunner", f"--project={config.project}",
                f"--region={config.region}", f"--temp_location={config.temp_location}"] + args
    return beam_args(args)
