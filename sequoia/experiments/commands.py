"""``sequoia sweep`` and ``sequoia compare``.

    sequoia sweep [SWEEP_FILE] [--setting NAME] [--method A,B] [--GROUP.OPTION V1,V2 ...] [--seeds 0-4]
                  [--workers N] [--threads N] [--launcher local|slurm|submitit_local] [--slurm.OPTION V ...]
                  [--output DIR | --directory DIR] [--baseline METHOD] [--quiet]
    sequoia sweep --resume SWEEP_DIR [--workers N] [--threads N] [--launcher ...] [--quiet]
    sequoia compare DIR... [--baseline METHOD_OR_LABEL] [--metrics A,B] [--output DIR]

Input errors are one line and exit code 2, as for a run; a sweep whose runs did
not all finish exits with code 1 after its summary of those that did.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sequoia.errors import IncompleteSweepError, SequoiaError
from sequoia.experiments import report
from sequoia.experiments.spec import SweepSpec, parse_seeds
from sequoia.experiments.summary import Configuration, collect, find_baseline, group_runs, paired_tests, unpaired
from sequoia.experiments.sweep import SLURM_PARAMETERS, LaunchOptions, Sweep, read_definition
from sequoia.options import ArgumentParser, is_comma_list
from sequoia.paths import path_option
from sequoia.runs.run import check_output_root
from sequoia.yaml_file import read_yaml

SWEEP_USAGE = __doc__.split("\n\n")[1].split("    sequoia compare")[0].strip()
COMPARE_USAGE = "sequoia compare DIR... [--baseline METHOD_OR_LABEL] [--metrics A,B] [--output DIR]"


def _sweep_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="sequoia sweep", usage=SWEEP_USAGE)
    parser.add_argument("--seeds", metavar="SEEDS", help="seeds of every configuration: 0-4, 0,2,5 or 0-2,7 (0)")
    add_launch_arguments(parser, "sweep", "runs at once on this machine (1)")
    parser.add_argument("--baseline", metavar="METHOD", help="the method the paired tests compare with (naive)")
    parser.add_argument("--quiet", action="store_true", help="no line per finished run")
    parser.add_argument("-h", "--help", action="store_true")
    return parser


def add_launch_arguments(parser: ArgumentParser, noun: str, workers_help: str) -> None:
    """The options a sweep and a tuning share: how their runs launch, and where their ``noun`` directory is."""
    parser.add_argument("--workers", metavar="N", type=int, help=workers_help)
    parser.add_argument("--threads", metavar="N", type=int, help="torch threads per run (the thread policy if unset)")
    parser.add_argument("--launcher", metavar="NAME", help="local (default), slurm, or submitit_local")
    for key in SLURM_PARAMETERS:
        parser.add_argument(f"--slurm.{key}", dest=f"slurm_{key}", metavar="V",
                            type=str if key in ("partition", "account") else int)
    parser.add_argument("--output", type=path_option("--output"), metavar="DIR",
                        help=f"where {noun} directories go (`{noun}s`)")
    parser.add_argument("--directory", type=path_option("--directory"), metavar="DIR",
                        help=f"the {noun} directory itself, made new")
    parser.add_argument("--resume", type=path_option("--resume"), metavar=f"{noun.upper()}_DIR",
                        help=f"continue the {noun} in {noun.upper()}_DIR")
    add_verbose_argument(parser)


def add_verbose_argument(parser: ArgumentParser) -> None:
    """``--verbose``: read by ``sequoia.cli.main`` before any command (sequoia.library_output); here for --help."""
    parser.add_argument("--verbose", action="store_true",
                        help="let the libraries sequoia drives print their warnings (the runs too)")


def option_pairs(tokens: list[str]) -> dict[str, str]:
    """``--key value`` and ``--key=value`` tokens as a mapping, in order; anything else is refused.

    Example:
        >>> option_pairs(["--method", "naive,replay", "--learner.lr=0.1"])
        {'method': 'naive,replay', 'learner.lr': '0.1'}
    """
    pairs: dict[str, str] = {}
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("--") or len(token) == 2:
            raise SequoiaError(f"unrecognized argument {token!r} (options take the form --name value)")
        key, equals, value = token[2:].partition("=")
        if not equals:
            if index + 1 >= len(tokens) or tokens[index + 1].startswith("--"):
                raise SequoiaError(f"--{key} needs a value")
            value, index = tokens[index + 1], index + 1
        if key in pairs:
            raise SequoiaError(f"--{key} is given twice")
        pairs[key], index = value, index + 1
    return pairs


def comma_options() -> set[str]:
    """Options whose own value is a comma list (never an axis on the command line): those every registered class
    marks so by its type (:class:`sequoia.options.CommaList`), and ``loggers``."""
    from sequoia import registry

    found = {"loggers"}
    setting_groups = [(group, {cls.__name__: cls}) for setting in registry.settings().values()
                      for group, cls in setting.option_groups().items()]
    for group, classes in (("setting", registry.settings()), ("method", registry.methods()),
                           ("learner", registry.learners()), *setting_groups):
        for cls in classes.values():
            found |= {f"{group}.{name}" for name in getattr(cls, "__dataclass_fields__", {})
                      if is_comma_list(cls, name)}
    return found


def launch_overrides(options: Any) -> dict[str, Any]:
    """The launch options the command line gives (launcher, workers, threads, slurm.*), for a sweep or a tuning."""
    overrides: dict[str, Any] = {key: getattr(options, key) for key in ("launcher", "workers", "threads")
                                 if getattr(options, key) is not None}
    slurm = {key: getattr(options, f"slurm_{key}") for key in SLURM_PARAMETERS
             if getattr(options, f"slurm_{key}") is not None}
    if slurm:
        overrides["slurm"] = slurm
    return overrides


def _new_sweep(options: Any, pairs: dict[str, str], sweep_file: str | None) -> Sweep:
    """The spec from a sweep file and the command line, checked run by run, in a new directory."""
    if sweep_file is not None:
        spec, launch = read_definition(read_yaml(sweep_file, "sweep file"), f"sweep file {sweep_file}")
        cli_spec = SweepSpec.from_options(pairs, options.seeds, comma_options(), complete=False) if pairs else None
        spec = _merge(spec, cli_spec, options.seeds)
    else:
        spec, launch = SweepSpec.from_options(pairs, options.seeds, comma_options()), LaunchOptions()
    overrides = launch_overrides(options)
    launch = LaunchOptions(**{**launch.__dict__, **overrides,
                              "slurm": {**launch.slurm, **overrides.get("slurm", {})}})
    launch.check("sequoia sweep")
    check_runs(spec)
    if options.directory and options.output:
        raise SequoiaError("give --output (where sweep directories go) or --directory (the sweep directory), not both")
    directory = Path(options.directory or Path(options.output or "sweeps") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    return Sweep.create(directory, spec, launch)


def _merge(spec: SweepSpec, cli_spec: SweepSpec | None, seeds: str | None) -> SweepSpec:
    """A sweep file's spec with the command line's options on top (an option given there replaces the file's)."""
    if cli_spec is None:  # only --seeds, if anything, on top of the file
        return SweepSpec(spec.base, spec.axes, parse_seeds(seeds, "--seeds")) if seeds is not None else spec
    base = {k: v for k, v in spec.base.items() if k not in cli_spec.axes} | cli_spec.base
    axes = {k: v for k, v in spec.axes.items() if k not in cli_spec.base} | cli_spec.axes
    merged = SweepSpec(base, axes, cli_spec.seeds if seeds is not None else spec.seeds)
    merged.check()
    return merged


def check_runs(spec: SweepSpec, where: str = "sweep run {name}") -> None:
    """Build the setting and method of every configuration now: a typo fails in a second, not in run 17.

    ``where`` starts each error (``{name}``: the run's name)."""
    from sequoia.experiment import build

    seen: set[str] = set()
    for run in spec.runs():
        key = json.dumps(run.values, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            build(run.config())
        except SequoiaError as error:
            raise SequoiaError(f"{where.format(name=run.name)}: {error}") from None


def sweep_command(argv: list[str]) -> int:
    """``sequoia sweep``: run a sweep (or resume one), then print and write its summary."""
    sweep_file = argv[0] if argv and not argv[0].startswith("-") else None
    options, rest = _sweep_parser().parse_known_args(argv[1:] if sweep_file else argv)
    if options.help:
        print(_sweep_parser().format_help())
        return 0
    pairs = option_pairs(rest)
    sweep = _resumed_sweep(options, pairs, sweep_file) if options.resume else _new_sweep(options, pairs, sweep_file)
    try:
        return _execute(sweep, options)
    finally:
        sweep.close()


def _resumed_sweep(options: Any, pairs: dict[str, str], sweep_file: str | None) -> Sweep:
    """The sweep ``--resume`` names; it takes launch options only (what runs is as defined)."""
    given = [key for key in ("seeds", "output", "directory") if getattr(options, key) is not None]
    if pairs or sweep_file or given:
        what = sweep_file or (f"--{given[0]}" if given else f"--{next(iter(pairs))}")
        raise SequoiaError(f"--resume continues a sweep as it was defined; it takes no {what}")
    return Sweep.open(Path(options.resume), launch_overrides(options))


def _execute(sweep: Sweep, options: Any) -> int:
    launch = sweep.launch
    print(f"sweep {sweep.directory}: {len(sweep.runs)} runs ({sweep.spec.count() // len(sweep.spec.seeds)} "
          f"configurations x {len(sweep.spec.seeds)} seeds), launcher {launch.launcher}"
          + (f", {launch.workers} workers" if launch.launcher == "local" else ""), file=sys.stderr)
    try:
        unfinished = sweep.execute(progress=not options.quiet)
    except KeyboardInterrupt as error:
        error.recovery_hint = f"; `sequoia sweep --resume {sweep.directory}` continues the sweep"
        raise
    runs = list(_finished_runs(sweep))
    if runs:
        configurations = group_runs(runs)
        baseline = find_baseline(configurations, options.baseline)
        tests = paired_tests(configurations, baseline)
        say_unpaired(configurations, baseline)
        report.write(configurations, tests, sweep.directory, "summary", baseline)
        print(report.printed(configurations, tests))
    print(f"\nsweep directory: {sweep.directory}")
    if unfinished:
        names = ", ".join(entry["name"] for entry in unfinished[:3]) + (", ..." if len(unfinished) > 3 else "")
        raise IncompleteSweepError(f"{len(unfinished)} of {len(sweep.runs)} runs did not finish ({names}; index.json "
                                   f"and logs/ say why); `sequoia sweep --resume {sweep.directory}` retries them")
    return 0


def _finished_runs(sweep: Sweep):
    from sequoia.experiments.summary import load_run

    for run in sweep.runs:
        directory = sweep.directory / "runs" / run.name
        if (directory / "results.json").is_file():
            yield load_run(directory)


def say_unpaired(configurations: list[Configuration], baseline: str | None) -> None:
    """One line on stderr where a baseline method found no partner for some configurations (tuned arms)."""
    missing = unpaired(configurations, baseline)
    if not missing:
        return
    example = next(c.label for c in configurations if c.method == baseline or c.label == baseline)
    print(f"sequoia: no paired test for {len(missing)} configuration(s) ({missing[0]}"
          f"{', ...' if len(missing) > 1 else ''}): their options outside `method` differ from every "
          f"`{baseline}` configuration's; name one configuration as the baseline by its label or part of it "
          f"(--baseline '{example}')", file=sys.stderr)


def compare_command(argv: list[str]) -> int:
    """``sequoia compare DIR...``: the table, paired tests and plots of the runs under the directories."""
    parser = ArgumentParser(prog="sequoia compare", usage=COMPARE_USAGE)
    parser.add_argument("directories", nargs="*", type=path_option("sequoia compare"))
    parser.add_argument("--baseline", metavar="METHOD_OR_LABEL")
    parser.add_argument("--metrics", metavar="A,B", help="the table's columns, in this order (every metric)")
    parser.add_argument("--output", type=path_option("--output"), metavar="DIR")
    add_verbose_argument(parser)
    parser.add_argument("-h", "--help", action="store_true")
    options = parser.parse_args(argv)
    if options.help or not options.directories:
        if not options.help:
            raise SequoiaError(f"sequoia compare needs run or sweep directories; usage: {COMPARE_USAGE}")
        print(parser.format_help())
        return 0
    output = Path(options.output or Path("comparisons") / datetime.now().strftime("%Y%m%d-%H%M%S"))
    check_output_root(output)  # a file or a read-only place there is one line before anything is read
    configurations = group_runs(collect(options.directories))
    chosen = [name.strip() for name in options.metrics.split(",") if name.strip()] if options.metrics else None
    report.metric_columns(configurations, chosen)  # a misspelt metric fails before anything is written
    baseline = find_baseline(configurations, options.baseline)
    tests = paired_tests(configurations, baseline)
    say_unpaired(configurations, baseline)
    written = report.write(configurations, tests, output, "comparison", baseline, chosen)
    print(report.printed(configurations, tests, chosen=chosen))
    print(f"\nwritten: {', '.join(str(path) for path in written)}")
    return 0


COMMANDS = {"sweep": sweep_command, "compare": compare_command}
