"""``sequoia tune``: choose hyperparameters by a protocol that never scores the evaluation's test items.

    sequoia tune --setting NAME --method NAME [--GROUP.OPTION V ...] --space OPTION=KIND:ARGS [--space ...]
                 --protocol first_tasks|validation [--tuning-tasks K] [--objective METRIC] [--direction D]
                 [--trials N] [--seeds 0] [--sampler tpe|random] [--sampler-seed N] [--storage URL]
                 [--workers N] [--threads N] [--launcher local|slurm|submitit_local] [--slurm.OPTION V ...]
                 [--output DIR | --directory DIR] [--quiet]
    sequoia tune --resume TUNING_DIR [--trials N] [--workers N] [--threads N] [--launcher ...] [--quiet]

``--space`` takes a YAML space file too (a mapping of options to KIND:ARGS). See
:mod:`sequoia.experiments.tune` for what the tuning directory holds, and docs/tuning.md.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sequoia.errors import IncompleteSweepError, SequoiaError
from sequoia.experiments.commands import (add_launch_arguments, check_runs, comma_options, launch_overrides,
                                          option_pairs)
from sequoia.experiments.objective import Objective
from sequoia.experiments.protocols import Protocol
from sequoia.experiments.space import Dimension, parse_space, space_from_file
from sequoia.experiments.spec import RunSpec, SweepSpec, parse_seeds
from sequoia.experiments.sweep import LaunchOptions
from sequoia.experiments.tune import Tuning, TuneSpec
from sequoia.options import ArgumentParser

USAGE = __doc__.split("\n\n")[1].strip()


def _parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sequoia tune", usage=USAGE)
    parser.add_argument("--space", action="append", default=[], metavar="OPTION=KIND:ARGS",
                        help="a tuned option and its range (repeat it), or a YAML space file")
    parser.add_argument("--protocol", metavar="NAME", help="first_tasks or validation (docs/tuning.md)")
    parser.add_argument("--tuning-tasks", type=int, default=1, metavar="K",
                        help="first_tasks: the first K tasks are for tuning, the rest for evaluation (1)")
    parser.add_argument("--objective", default="average_final", metavar="METRIC",
                        help="a metric of results.json, or a weighted sum ('average_final - 0.5*forgetting')")
    parser.add_argument("--direction", metavar="D",
                        help="maximize or minimize (default: what the objective's metrics say is better)")
    parser.add_argument("--trials", type=int, metavar="N", help="trials in the study at the end (20)")
    parser.add_argument("--seeds", metavar="SEEDS", help="seeds of every trial; its value is their mean (0)")
    parser.add_argument("--sampler", default="tpe", metavar="NAME", help="tpe (default) or random")
    parser.add_argument("--sampler-seed", type=int, default=0, metavar="N", help="the sampler's seed (0)")
    parser.add_argument("--storage", metavar="URL",
                        help="an Optuna storage: sqlite:///FILE, an RDB URL, or journal:FILE (optuna.db in the "
                             "tuning directory)")
    add_launch_arguments(parser, "tuning", "trials at once (1)")
    parser.add_argument("--quiet", action="store_true", help="no line per finished trial")
    parser.add_argument("-h", "--help", action="store_true")
    return parser


def read_space(entries: list[str]) -> dict[str, Dimension]:
    """``--space`` values: ``OPTION=KIND:ARGS`` entries, or YAML space files (a value without ``=``)."""
    from sequoia.yaml_file import read_yaml

    space: dict[str, Dimension] = {}
    for entry in entries:
        part = (space_from_file(read_yaml(entry, "space file"), f"space file {entry}") if "=" not in entry
                else parse_space([entry]))
        repeated = sorted(set(space) & set(part))
        if repeated:
            raise SequoiaError(f"--space: {repeated[0]} is given twice")
        space |= part
    return space


def new_spec(options: Any, pairs: dict[str, str]) -> TuneSpec:
    """The tuning the command line describes, checked whole (every configuration it can draw parses)."""
    if options.protocol is None:
        raise SequoiaError("sequoia tune needs --protocol first_tasks or validation (docs/tuning.md says which "
                           "keeps what away from the trials)")
    fixed = SweepSpec.from_options(pairs, "0", comma_options())
    if fixed.axes:
        name = next(iter(fixed.axes))
        raise SequoiaError(f"--{name} {','.join(fixed.axes[name])}: sequoia tune tunes one configuration; tune each "
                           "value on its own, or put the option in the space (--space {name}=choice:A|B)")
    spec = TuneSpec(fixed.base, read_space(options.space), Protocol(options.protocol, options.tuning_tasks),
                    Objective.parse(options.objective, options.direction or "maximize"),
                    20 if options.trials is None else options.trials,
                    parse_seeds(options.seeds if options.seeds is not None else "0", "--seeds"),
                    options.sampler, options.sampler_seed, options.storage)
    spec.check()
    setting = check_configurations(spec)
    if options.direction is None:
        spec.objective = dataclasses.replace(spec.objective, direction=implied_direction(spec.objective, setting))
    return spec


def implied_direction(objective: Objective, setting: Any) -> str:
    """``maximize`` or ``minimize``: what the setting's metric specs say improves every term of the objective.

    ``average_final`` of accuracy is maximised, ``average_forgetting`` minimised, and
    ``average_final - 0.5*alignment_tax_text_nll`` maximised (both terms agree).

    Raises:
        SequoiaError: a term whose direction the setting does not declare, or terms that disagree.
    """
    from sequoia.metric_spec import describe_summaries

    specs = {spec.name: spec for spec in setting.metric_specs()}
    described = describe_summaries(specs, setting.metric_name)
    votes = set()
    for name, weight in objective.terms:
        higher = (described.get(name) or {}).get("higher_is_better")
        if higher is None or weight == 0:
            raise SequoiaError(f"--objective {objective.text!r}: {setting.qualified_name()} does not say whether "
                               f"{name} is better higher or lower; give --direction maximize or minimize")
        votes.add((weight > 0) == higher)
    if len(votes) > 1:
        raise SequoiaError(f"--objective {objective.text!r}: its terms improve in opposite directions; give "
                           "--direction maximize or minimize")
    return "maximize" if votes.pop() else "minimize"


def check_configurations(spec: TuneSpec) -> Any:
    """Build a trial's setting and method, and the evaluation's, now: a bad option fails before any trial.
    Returns the evaluation's setting (built, not prepared).

    Numeric options are tried at both ends of their range (a range an option refuses in part
    fails here, not in a trial), and every choice of a ``choice`` option.
    """
    choices = {name: list(dim.choices) for name, dim in spec.space.items() if dim.kind == "choice"}
    for end in ("low", "high"):
        values = {name: _end(dim, end) for name, dim in spec.space.items() if dim.kind != "choice"}
        for what, options in (("a trial", spec.trial_options(values)),
                              ("the evaluation", spec.evaluation_options(values))):
            sweep = SweepSpec({key: value for key, value in options.items() if key not in choices}, choices, [0])
            sweep.check("sequoia tune")
            check_runs(sweep, f"sequoia tune, the options of {what} at the {end} end of the space")
    return _check_tasks_left(spec, sweep.runs()[0])


def _end(dimension: Dimension, end: str) -> float | int:
    """One end of a numeric dimension, as the option takes it."""
    value = dimension.low if end == "low" else dimension.high
    return value if dimension.kind in ("loguniform", "uniform") else int(value)


def _check_tasks_left(spec: TuneSpec, run: RunSpec) -> Any:
    """``first_tasks`` must leave the evaluation a task, where the options tell how many the sequence has.
    Returns the setting ``run`` builds."""
    from sequoia.experiment import build

    setting, _ = build(run.config())
    if spec.protocol.name != "first_tasks":
        return setting
    length = setting.sequence_length()
    if length is not None and spec.protocol.tuning_tasks >= length:
        raise SequoiaError(f"--tuning-tasks {spec.protocol.tuning_tasks}: the sequence has {length} tasks, and "
                           "first_tasks keeps the first K for tuning and evaluates on the rest; lower K or "
                           "lengthen the sequence")
    return setting


def tune_command(argv: list[str]) -> int:
    """``sequoia tune``: run a tuning (or resume one), then write its table, best configuration and plots."""
    options, rest = _parser().parse_known_args(argv)
    if options.help:
        print(_parser().format_help())
        return 0
    pairs = option_pairs(rest)
    tuning = _resumed(options, pairs) if options.resume else _created(options, pairs)
    try:
        return _execute(tuning, options.quiet)
    finally:
        tuning.close()


def _created(options: Any, pairs: dict[str, str]) -> Tuning:
    spec = new_spec(options, pairs)
    launch = LaunchOptions(**launch_overrides(options))
    launch.check("sequoia tune")
    if options.directory and options.output:
        raise SequoiaError("give --output (where tuning directories go) or --directory (the tuning directory), "
                           "not both")
    directory = Path(options.directory or Path(options.output or "tunings") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return Tuning.create(directory, spec, launch)


def _resumed(options: Any, pairs: dict[str, str]) -> Tuning:
    """The tuning ``--resume`` names; it takes launch options and a new trial count only."""
    defaults = _parser().parse_args([])
    changed = [name for name in ("space", "protocol", "tuning_tasks", "objective", "direction", "seeds", "sampler",
                                 "sampler_seed", "storage", "output", "directory")
               if getattr(options, name) != getattr(defaults, name)]
    if pairs or changed:
        what = f"--{next(iter(pairs))}" if pairs else f"--{changed[0].replace('_', '-')}"
        raise SequoiaError(f"--resume continues a tuning as it was defined; it takes no {what}")
    return Tuning.open(Path(options.resume), launch_overrides(options), options.trials)


def _execute(tuning: Tuning, quiet: bool) -> int:
    spec = tuning.spec
    print(f"tuning {tuning.directory}: {spec.trials} trials of {len(spec.seeds)} seed(s), protocol "
          f"{spec.protocol.name}, {spec.objective.direction} {spec.objective.text}; launcher "
          f"{tuning.launch.launcher}", file=sys.stderr)
    try:
        tuning.execute(progress=not quiet)
    except KeyboardInterrupt as error:
        error.recovery_hint = f"; `sequoia tune --resume {tuning.directory}` continues the tuning"
        raise
    written = tuning.write_outputs()
    best = tuning.best()
    if best is None:
        raise IncompleteSweepError(f"no trial of {tuning.directory} finished (trials.csv and logs/ say why)")
    shown = " ".join(f"--{key} {value}" for key, value in best.params.items())
    print(f"best: trial {best.number}, {spec.objective.text} = {best.value:.4g}: {shown}")
    print(f"written: {', '.join(str(path) for path in written)}")
    return 0
