"""Beam pipeline options shared by every Beam job of TFusion-TFX.

One contract for `tfusion ingest`, `tfusion fuse` and `tfusion run` (whose TFX
components get `pipeline.run_config.beam_pipeline_args`): Beam options come after a
literal `--`, e.g.

    tfusion ingest DIR --output gs://B/ex -- --runner=DataflowRunner --project=P \\
        --region=R --temp_location=gs://B/tmp

Everything before `--` is the command's own flags (an unknown one is an error), and
every option after it must be a Beam pipeline option (a misspelt one is an error
too, instead of being dropped by Beam with a warning).

Locally the DirectRunner in `in_memory` mode with one worker is the fastest choice
for re-ID-sized data (3.5x faster than multi_processing here: each extra process
pays ~15 s of imports). Options that name a runner replace these defaults; a runner
other than the DirectRunner gets `--setup_file` (this repository's setup.py) unless
the options ship the code another way.
"""
from __future__ import annotations

import logging
import os
from typing import List, Optional, Sequence

from core.errors import InputError

LOCAL_BEAM_ARGS: List[str] = ["--runner=DirectRunner",
                              "--direct_running_mode=in_memory",
                              "--direct_num_workers=1"]
LOCAL_RUNNERS = ("DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner")
SHIPS_CODE = ("--setup_file", "--extra_package", "--requirements_file", "--sdk_container_image")

REPO_SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                               "setup.py")

HELP = ("Beam pipeline options go after a literal `--`, e.g. `-- --runner=DataflowRunner "
        "--project=P --region=R --temp_location=gs://B/tmp`; the repository's setup.py is "
        "shipped to the workers of any runner but the DirectRunner.")


class BeamOptionsError(InputError):
    """Options that are not Beam pipeline options (names them)."""


def unknown_options(args: Sequence[str]) -> List[str]:
    """The options in `args` that no Beam PipelineOptions class defines."""
    from apache_beam.options.pipeline_options import PipelineOptions
    options = PipelineOptions(list(args))
    beam_log = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_log.level
    beam_log.setLevel(logging.ERROR)  # Beam warns about the very options we report
    try:
        known = set(options.get_all_options())
        given = set(options.get_all_options(retain_unknown_options=True))
    finally:
        beam_log.setLevel(level)
    flags = [a.split("=", 1)[0] for a in args if a.startswith("-")]
    return [f for f in flags if f.lstrip("-").replace("-", "_") in given - known]


def check_options(args: Sequence[str], where: str = "Beam options") -> List[str]:
    """`args` when each is a Beam pipeline option, else BeamOptionsError naming them."""
    stray = [a for a in args if not a.startswith("-")]
    unknown = unknown_options(args)
    if unknown:
        raise BeamOptionsError(f"{where}: not Beam pipeline option(s): "
                               f"{' '.join(unknown)}")
    if stray and not any(a.startswith("--") and "=" not in a for a in args):
        raise BeamOptionsError(f"{where}: stray value(s) {' '.join(stray)}; write "
                               "options as --name=value")
    return list(args)


def runner_of(args: Sequence[str]) -> Optional[str]:
    """The runner `args` name (`--runner=X` or `--runner X`), or None."""
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    return PipelineOptions(list(args)).view_as(StandardOptions).runner


def beam_args(user_args: Optional[Sequence[str]] = None) -> List[str]:
    """The user's Beam args, or the local defaults when no runner is named.

    A remote runner needs the project's code on its workers: `--setup_file` pointing
    at this repository's setup.py is added unless the user ships code another way.
    """
    args = list(user_args or [])
    runner = runner_of(args)
    if runner is None:
        given = {a.split("=", 1)[0] for a in args}
        return [a for a in LOCAL_BEAM_ARGS if a.split("=", 1)[0] not in given] + args
    ships_code = any(a.startswith(SHIPS_CODE) for a in args)
    if not ships_code and runner.rsplit(".", 1)[-1] not in LOCAL_RUNNERS:
        args.append(f"--setup_file={REPO_SETUP_FILE}")
    return args


def make_pipeline(user_args: Optional[Sequence[str]] = None):
    """A beam.Pipeline built from `beam_args(user_args)`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    return beam.Pipeline(options=PipelineOptions(beam_args(user_args)))
