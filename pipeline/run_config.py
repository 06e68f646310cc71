"""What one `tfusion run` trains on and how: data, rounds, steps, gates, runner.

A JSON file (`--config FILE`) holds any of the fields below; unknown keys are an error.
Data come either from dataset folders (`source_dir`, `target_dir`, any layout that
`tfusion ingest` reads) or from a SynthReID preset rendered into OUTPUT/data
(`preset`, `seed`). Presets `tiny` (a smoke run, ~3 min) and `demo` set steps and gates.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from core.errors import InputError, read_json_object

RUNNERS = ("local", "dataflow")


class RunConfigError(InputError):
    """A run configuration that cannot be used (names the file and the field)."""


@dataclass
class RunConfig:
    name: str = "tfusion"
    # data: dataset folders, or a SynthReID preset rendered into OUTPUT/data
    source_dir: str = ""
    target_dir: str = ""
    preset: str = "demo"
    seed: int = 0
    # training
    rounds: int = 1                       # RankNet rounds after source pretraining
    pretrain_steps: int = 400
    transfer_steps: int = 300
    backbone: str = "small"
    pretrain: Dict[str, Any] = field(default_factory=dict)   # more PretrainConfig fields
    ranknet: Dict[str, Any] = field(default_factory=dict)    # more RankNetConfig fields
    fusion: Dict[str, Any] = field(default_factory=dict)     # FusionConfig fields
    ranknet_module_file: str = ""         # another Trainer module for RankNet rounds
    # gates on the last round (percent): absolute bound, and the largest drop of fused
    # rank-1 against the latest blessed model
    min_fused_rank1: float = 5.0
    max_fused_rank1_drop: float = 2.0
    # runner
    runner: str = "local"
    project: str = ""
    region: str = ""
    temp_location: str = ""
    beam_args: List[str] = field(default_factory=list)
    enable_cache: bool = True

    @classmethod
    def from_dict(cls, values: Dict[str, Any], where: str = "run config") -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise RunConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**values).validate(where)

    @classmethod
    def load(cls, path: str, **overrides: Any) -> "RunConfig":
        values = read_json_object(path, "run config", RunConfigError)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(values, path)

    def validate(self, where: str = "run config") -> "RunConfig":
        if bool(self.source_dir) != bool(self.target_dir):
            raise RunConfigError(f"{where}: give both source_dir and target_dir, or neither "
                                 "(then the SynthReID preset is rendered)")
        if self.rounds < 0 or self.pretrain_steps < 1 or self.transfer_steps < 1:
            raise RunConfigError(f"{where}: rounds must be >= 0 and steps >= 1")
        if self.runner not in RUNNERS:
            raise RunConfigError(f"{where}: runner {self.runner!r} is not one of {RUNNERS}")
        if self.runner == "dataflow":
            missing = [k for k in ("project", "region", "temp_location") if not getattr(self, k)]
            if missing:
                raise RunConfigError(f"{where}: the dataflow runner needs {missing}")
        if not 0 <= self.min_fused_rank1 <= 100 or self.max_fused_rank1_drop < 0:
            raise RunConfigError(f"{where}: min_fused_rank1 is a percentage and "
                                 "max_fused_rank1_drop >= 0")
        if self.beam_args:
            from pipeline.beam_options import check_options
            check_options(self.beam_args, f"{where}: beam_args")
        # the nested configs are checked by the classes that read them
        from st_model.config import FusionConfig
        try:
            FusionConfig.from_dict(self.fusion, f"{where}: fusion").validate()
        except ValueError as e:
            raise RunConfigError(str(e) if str(e).startswith(where) else
                                 f"{where}: fusion: {e}") from None
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": {"preset": "tiny", "pretrain_steps": 40, "transfer_steps": 20,
             "min_fused_rank1": 5.0, "max_fused_rank1_drop": 5.0},
    "demo": {"preset": "demo", "rounds": 2, "pretrain_steps": 400, "transfer_steps": 300,
             "min_fused_rank1": 30.0, "max_fused_rank1_drop": 2.0},
}


def preset_config(preset: str, **overrides: Any) -> RunConfig:
    if preset not in PRESETS:
        raise RunConfigError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    values = dict(PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return RunConfig.from_dict(values, f"preset {preset}")


def beam_pipeline_args(config: RunConfig) -> List[str]:
    """Beam options every Beam component of the run gets (pipeline.beam_options)."""
    from pipeline.beam_options import beam_args
    args = list(config.beam_args)
    if config.runner == "dataflow":
        args = [f"--runner=DataflowRunner", f"--project={config.project}",
                f"--region={config.region}", f"--temp_location={config.temp_location}"] + args
    return beam_args(args)
