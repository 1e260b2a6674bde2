"""The ``sequoia`` command line.

    sequoia --setting NAME --method NAME [--setting.X V] [--eval.X V] [--method.X V] [--learner.X V]
            [--seed N] [--output DIR | --directory DIR] [--config FILE] [--preset NAME]
            [--loggers NAMES] [--threads N] [--quiet]
    sequoia --resume RUN_DIR
    sequoia --setting NAME [--method NAME] --help
    sequoia sweep ...        (many runs: sequoia.experiments.commands)
    sequoia compare DIR...   (tables and plots over runs and sweeps)
    sequoia tune ...         (hyperparameters chosen by a protocol: sequoia.experiments.tune_command)
    sequoia list

Options of the setting, the method and their other groups (the base learner of
methods built on one, a PA setting's evaluation) come from their dataclass fields,
under the prefixes ``--setting.``, ``--method.``, ``--learner.`` and ``--eval.``. Values come in layers, each
overriding the one before: a preset (``--preset``), a config file (the
``config.yaml`` of a run directory), the command line. Every input error prints
one line on stderr and exits with code 2 (docs/errors.md lists them); a run that
fails in training (NaN loss, out of memory) prints one line and exits with code 1,
keeping its last checkpoint. Under ``torchrun`` every rank runs this same command;
only rank 0 prints and writes.

The steps: :func:`read_request` (run options and the config layer, as an
:class:`~sequoia.experiment.ExperimentConfig`), :func:`sequoia.experiment.build_parts`
(one option group after another, each read from the arguments once its class is known),
then :func:`sequoia.runner.execute` or :func:`help_text`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from sequoia import cache_directories, distributed
from sequoia.errors import SequoiaError
from sequoia.exits import guarded
from sequoia.experiment import ExperimentConfig, build_parts, load_config
from sequoia.library_output import quiet_libraries, verbose_requested
from sequoia.options import ArgumentParser, add_options, given
from sequoia.paths import path_option
from sequoia.registry import get_method, resolve_setting
from sequoia.runner import execute, new_run, open_resumed
from sequoia.runs import Run

USAGE = (
    "sequoia --setting NAME --method NAME [--setting.OPTION V] [--method.OPTION V] [--learner.OPTION V]"
    " [--seed N] [--output DIR | --directory DIR] [--config FILE] [--preset NAME] [--loggers NAMES]"
    " [--threads N] [--quiet] [--verbose]\n"
    "       sequoia --resume RUN_DIR [--threads N]\n       sequoia sweep ...\n       sequoia compare DIR...\n"
    "       sequoia tune ...\n"
    "       sequoia list"
)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options that are not a setting's, a method's or a learner's."""
    group = parser.add_argument_group("run options")
    group.add_argument("--setting", metavar="NAME",
                       help="a level (class_incremental) or a qualified name (sl.incremental)")
    group.add_argument("--method", metavar="NAME", help="a method name (see `sequoia list`)")
    group.add_argument("--config", metavar="FILE", type=path_option("--config"),
                       help="a config.yaml from a run directory; options given here override it")
    group.add_argument("--seed", metavar="N", type=int, help="random seed (0 unless the config sets one)")
    group.add_argument("--output", metavar="DIR", type=path_option("--output"),
                       help="where run directories go (`results` if not set)")
    group.add_argument("--directory", metavar="DIR", type=path_option("--directory"),
                       help="the run directory itself, made new (instead of one under --output); for scripts and sweeps")
    group.add_argument("--threads", metavar="N", type=int,
                       help="torch threads for this run (default: 1 for small models, else the cores; docs/experiments.md)")
    group.add_argument("--preset", metavar="NAME", help="option defaults for the run: `default` or `smoke`")
    group.add_argument("--loggers", metavar="NAMES", default="",
                       help="comma-separated optional loggers: tensorboard, wandb (metrics.jsonl is always written)")
    group.add_argument("--resume", metavar="RUN_DIR", type=path_option("--resume"),
                       help="continue the run in RUN_DIR from its last checkpoint, as it was configured")
    group.add_argument("--quiet", action="store_true", help="no progress bars")
    group.add_argument("--verbose", action="store_true",
                       help="let the libraries sequoia drives (transformers, gymnasium...) print their warnings")
    group.add_argument("-h", "--help", action="store_true", help="show the options of the chosen setting and method")


@dataclasses.dataclass
class Request:
    """What was asked for, before any setting or method is built.

    Attributes:
        options: the run options (``--seed``, ``--output``...).
        rest: the arguments left for the option groups.
        config: the experiment: names, run options, the config layer (a ``--config`` file, or the resumed
            run's ``config.yaml``); the option groups' values join it as :func:`build_parts` reads them.
        resumed: the run ``--resume`` continues, if any.
    """

    options: argparse.Namespace
    rest: list[str]
    config: ExperimentConfig
    resumed: Run | None = None


class CommandLineOptions:
    """The option groups' values on the command line, read as :func:`~sequoia.experiment.build_parts` asks for
    each group (its class is known only then: ``--method.learner`` chooses the learner's), and recorded in
    the config."""

    def __init__(self, rest: list[str], config: ExperimentConfig) -> None:
        self.rest = rest
        self.config = config

    def __call__(self, group: str, cls: type) -> dict[str, Any]:
        parser = ArgumentParser()
        add_options(parser, cls, group)
        namespace, self.rest = parser.parse_known_args(self.rest)
        values = given(namespace, group)
        if values:
            self.config.options[group] = values
        return values


def read_request(argv: list[str]) -> Request:
    """Parse the run options; read the config layer (``--config`` or the resumed run's)."""
    parser = ArgumentParser(prog="sequoia", usage=USAGE)
    add_run_options(parser)
    options, rest = parser.parse_known_args(argv)
    resumed = _resumed_run(options, rest)
    if resumed:
        return Request(options, rest, ExperimentConfig(file=resumed.config), resumed)
    loggers = [name for name in options.loggers.split(",") if name]
    config = ExperimentConfig(setting=options.setting, method=options.method, seed=options.seed,
                              preset=options.preset, loggers=loggers or None,
                              file=load_config(options.config) if options.config else {})
    return Request(options, rest, config)


def help_text(setting_cls: type | None, method) -> str:
    """``--help``: the run options, then every option of the chosen setting, method and groups."""
    parser = ArgumentParser(prog="sequoia", usage=USAGE)
    add_run_options(parser)
    if setting_cls is not None:
        add_options(parser, setting_cls, "setting")
        for group, cls in setting_cls.option_groups().items():
            add_options(parser, cls, group)
    if method is not None:
        add_options(parser, type(method), "method")
        for group, cls in (method.option_groups(setting_cls) if setting_cls else {}).items():
            add_options(parser, cls, group)
    return parser.format_help()


def run(argv: list[str]) -> int:
    """Parse ``argv``, run the experiment, print and save its results."""
    request = read_request(argv)
    reader = CommandLineOptions(request.rest, request.config)
    built = build_parts(request.config, reader, partial=request.options.help)
    if request.options.help:
        print(help_text(built.setting_cls, built.method))
        return 0
    if reader.rest:
        raise SequoiaError(f"unrecognized arguments: {' '.join(reader.rest)} (see `sequoia --setting "
                           f"{request.config.name('setting')} --method {request.config.name('method')} --help`)")
    options = request.options
    run_dir = request.resumed or new_run(request.config, built.setting, built.method, options.output,
                                         options.directory)
    return execute(run_dir, built.setting, built.method, request.config.run_seed(), quiet=options.quiet,
                   threads=options.threads)


def _changes_to_a_run(options: argparse.Namespace) -> list[str]:
    """The run options given that would change a run (which ``--resume`` refuses)."""
    given_values = (("--config", options.config), ("--seed", options.seed), ("--preset", options.preset),
                    ("--output", options.output), ("--directory", options.directory), ("--loggers", options.loggers))
    return [flag for flag, value in given_values if value is not None and value != ""]


def _resumed_run(options: argparse.Namespace, rest: list[str]) -> Run | None:
    """The run ``--resume`` names, checked against any ``--setting``/``--method`` also given."""
    if not options.resume:
        return None
    changes = _changes_to_a_run(options) + rest
    if changes:
        raise SequoiaError(f"--resume continues a run as it was configured; it takes no {changes[0]} "
                           "(start a new run to change options)")
    run, config = open_resumed(options.resume)
    recorded_setting, recorded_method = config.name("setting"), config.name("method")
    if options.method and options.method != recorded_method:
        run.close()
        raise SequoiaError(f"cannot resume {options.resume}: it ran method {recorded_method}, not {options.method}")
    if options.setting:
        given_name = resolve_setting(options.setting, get_method(str(recorded_method))).qualified_name()
        if given_name != recorded_setting:
            run.close()
            raise SequoiaError(f"cannot resume {options.resume}: it ran setting {recorded_setting}, not {given_name}")
    options.setting = options.method = None  # the recorded names rule
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sequoia`` command; returns the exit code (:mod:`sequoia.exits` says which)."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def command() -> int:
        quiet_libraries(verbose=verbose_requested(argv, os.environ))
        return dispatch(argv)

    return guarded(command)


def dispatch(argv: list[str]) -> int:
    """Run the command ``argv`` names: ``list``, ``sweep``, ``compare``, ``tune``, or a run."""
    if argv[:1] == ["list"]:
        return list_command(argv[1:])
    if argv[:1] != ["compare"]:  # a run, or a sweep whose runs inherit the environment
        distributed.check_environment()
    cache_directories.check()  # every command but list draws plots
    if argv[:1] in (["sweep"], ["compare"]):
        from sequoia.experiments.commands import COMMANDS

        return COMMANDS[argv[0]](argv[1:])
    if argv[:1] == ["tune"]:
        from sequoia.experiments.tune_command import tune_command

        return tune_command(argv[1:])
    return run(argv)


def list_command(arguments: list[str]) -> int:
    """``sequoia list``: the tree of settings, the methods and the learners."""
    if arguments:
        raise SequoiaError(f"`sequoia list` takes no arguments; got {' '.join(arguments)}")
    from sequoia.listing import tree_listing

    print(tree_listing())
    return 0


if __name__ == "__main__":
    sys.exit(main())
