"""The ``sequoia`` command line.

    sequoia --setting NAME --method NAME [--setting.X V] [--method.X V] [--learner.X V]
            [--seed N] [--output DIR] [--config FILE] [--preset NAME] [--loggers NAMES] [--quiet]
    sequoia --resume RUN_DIR
    sequoia --setting NAME [--method NAME] --help
    sequoia list

Options of the setting, the method and the method's base learner come from their
dataclass fields, under the prefixes ``--setting.``, ``--method.`` and ``--learner.``.
A config file (the ``config.yaml`` of a run directory) gives defaults that options
override. Every input error prints one line on stderr and exits with code 2
(docs/errors.md lists them); a run that fails in training (NaN loss, out of
memory) prints one line and exits with code 1, keeping its last checkpoint.
Under ``torchrun`` every rank runs this same command; only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import pydantic
import simple_parsing
import yaml

from sequoia import distributed
from sequoia.errors import SequoiaError
from sequoia.methods.learner_method import LearnerMethod
from sequoia.presets import preset_values
from sequoia.registry import LEVEL_ALIASES, get_method, resolve_setting, settings
from sequoia.runs import Run, describe
from sequoia.runs.loggers import check_logger_names

USAGE = (
    "sequoia --setting NAME --method NAME [--setting.OPTION V] [--method.OPTION V] [--learner.OPTION V]"
    " [--seed N] [--output DIR] [--config FILE] [--preset NAME] [--loggers NAMES] [--quiet]\n"
    "       sequoia --resume RUN_DIR\n       sequoia list"
)


CONFIG_KEYS = {"setting", "method", "learner", "seed", "loggers"}


class _RaisingParser(simple_parsing.ArgumentParser):
    """An argument parser that raises instead of printing usage and exiting."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise SequoiaError(message)

    def _preprocessing(self, *args: Any, **kwargs: Any) -> None:
        super()._preprocessing(*args, **kwargs)
        # simple-parsing passes `Annotated[int, Field(gt=0)]` itself as the argparse
        # type, which shows as "Annotated" in help and errors; use the inner type.
        for action in self._actions:
            if get_origin(action.type) is Annotated:
                action.type = get_args(action.type)[0]
                if action.metavar == "Annotated":
                    action.metavar = action.type.__name__


def _run_options() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sequoia", usage=USAGE, add_help=False, allow_abbrev=False)
    parser.error = lambda message: (_ for _ in ()).throw(SequoiaError(message))  # type: ignore[method-assign]
    parser.add_argument("--setting", metavar="NAME",
                        help="a level (class_incremental) or a qualified name (sl.incremental)")
    parser.add_argument("--method", metavar="NAME", help="a method name (see `sequoia list`)")
    parser.add_argument("--config", metavar="FILE",
                        help="a config.yaml from a run directory; options given here override it")
    parser.add_argument("--seed", metavar="N", type=int, help="random seed (0 unless the config sets one)")
    parser.add_argument("--output", metavar="DIR", help="where run directories go (`results` if not set)")
    parser.add_argument("--preset", metavar="NAME", help="option defaults for the run: `default` or `smoke`")
    parser.add_argument("--loggers", metavar="NAMES", default="",
                        help="comma-separated optional loggers: tensorboard, wandb (metrics.jsonl is always written)")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last checkpoint, as it was configured")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("-h", "--help", action="store_true", help="show the options of the chosen setting and method")
    return parser


def _load_config(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise SequoiaError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise SequoiaError(f"config file {path} is not valid YAML: {str(error).splitlines()[0]}") from error
    if not isinstance(loaded, dict):
        raise SequoiaError(f"config file {path} must hold a mapping with keys {', '.join(sorted(CONFIG_KEYS))}")
    unknown = set(loaded) - CONFIG_KEYS
    if unknown:
        raise SequoiaError(f"config file {path}: unknown keys {', '.join(sorted(unknown))}")
    return loaded


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    """Instantiate a hyperparameter dataclass from config values, with one-line errors."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise SequoiaError(f"{where}: unknown option(s) {', '.join(sorted(unknown))} for {cls.__name__}")
    try:
        return cls(**values)
    except pydantic.ValidationError as error:
        raise SequoiaError(_one_line(error, f"{where}.")) from error


def _one_line(error: pydantic.ValidationError, prefix: str) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        problems.append(f"invalid value {item.get('input')!r} for {prefix}{field}: {item['msg']}")
    return "; ".join(problems)


def _parse_group(cls: type, prefix: str, default: Any, argv: list[str]) -> tuple[Any, list[str]]:
    parser = _RaisingParser(add_help=False, add_config_path_arg=False)
    parser.add_arguments(cls, dest="values", prefix=f"{prefix}.", default=default)
    try:
        namespace, rest = parser.parse_known_args(argv)
    except pydantic.ValidationError as error:
        raise SequoiaError(_one_line(error, f"--{prefix}.")) from error
    return namespace.values, rest


def _help(setting_cls: type | None, method_cls: type | None, learner_cls: type | None) -> str:
    parser = _RaisingParser(prog="sequoia", usage=USAGE, add_help=False, add_config_path_arg=False)
    for action in _run_options()._actions:
        parser._add_action(action)
    for cls, prefix in ((setting_cls, "setting"), (method_cls, "method"), (learner_cls, "learner")):
        if cls is not None and dataclasses.fields(cls):
            parser.add_arguments(cls, dest=f"{prefix}_options", prefix=f"{prefix}.")
    parser._preprocessing()  # simple-parsing adds the dataclass options only here
    return parser.format_help()


def _known(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that are options of ``cls``."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def tree_listing() -> str:
    """The registered settings as a tree per domain, with the methods that apply at each node."""
    from sequoia.registry import methods

    registered = settings()
    all_methods = methods()
    children: dict[type | None, list[type]] = {}
    for cls in registered.values():
        parent = next((base for base in cls.__mro__[1:] if base in registered.values()), None)
        children.setdefault(parent, []).append(cls)
    aliases = {canonical: alias for alias, canonical in LEVEL_ALIASES.items()}

    lines = ["Settings (a method listed at a node runs on every node below it; options: `sequoia --setting NAME --help`):"]

    def show(cls: type, depth: int) -> None:
        alias = f" (alias {cls.domain}.{aliases[cls.level]})" if cls.level in aliases else ""
        applicable = sorted(name for name, m in all_methods.items() if m.is_applicable(cls))
        lines.append(f"{'  ' * depth}- {cls.qualified_name()}{alias}: {', '.join(applicable) or '-'}")
        for child in children.get(cls, []):
            show(child, depth + 1)

    for root in children.get(None, []):
        show(root, 1)
    lines.append("")
    lines.append("Methods:")
    for name, method in sorted(all_methods.items()):
        summary = (method.__doc__ or "").strip().splitlines()[0] if method.__doc__ else ""
        lines.append(f"  {name:<10} targets {method.target_setting.__name__}: {summary}")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    """Parse ``argv``, run the experiment, print and save its results."""
    options, rest = _run_options().parse_known_args(argv)
    resumed = _resumed_run(options, rest)
    config = resumed.config if resumed else _load_config(options.config) if options.config else {}
    setting_values = dict(config.get("setting") or {})
    method_values = dict(config.get("method") or {})
    learner_values = dict(config.get("learner") or {})
    setting_name = options.setting or setting_values.pop("name", None)
    method_name = options.method or method_values.pop("name", None)
    setting_values.pop("name", None)
    method_values.pop("name", None)

    if not (setting_name and method_name) and not options.help:
        raise SequoiaError("--setting and --method are required (or --config FILE); `sequoia list` shows the names")
    method_cls = get_method(method_name) if method_name else None
    setting_cls = resolve_setting(setting_name, method_cls) if setting_name else None

    # A preset's values are defaults beneath the config's; method and learner values
    # apply where the chosen method or learner has such an option.
    preset = preset_values(options.preset, setting_cls.domain) if options.preset and setting_cls else {}
    setting_values = {**preset.get("setting", {}), **setting_values}
    if method_cls is not None:
        method_values = {**_known(method_cls, preset.get("method", {})), **method_values}
    setting_default = _build(setting_cls, setting_values, "config setting") if setting_cls else None
    method_default = _build(method_cls, method_values, "config method") if method_cls else None
    setting, rest = _parse_group(setting_cls, "setting", setting_default, rest) if setting_cls else (None, rest)
    method, rest = _parse_group(method_cls, "method", method_default, rest) if method_cls else (None, rest)

    learner_cls = None
    if isinstance(method, LearnerMethod) and setting_cls is not None:
        learner_cls = method.learner_class(setting_cls)
        if learner_values.pop("name", learner_cls.name) != learner_cls.name:
            learner_values = {}  # the config's learner options belong to another learner
        learner_values = {**_known(learner_cls, preset.get("learner", {})), **learner_values}
        learner_default = _build(learner_cls, learner_values, "config learner")
        learner, rest = _parse_group(learner_cls, "learner", learner_default, rest)
        method.use_learner(learner)

    if options.help:
        print(_help(setting_cls, method_cls, learner_cls))
        return 0
    if rest:
        raise SequoiaError(f"unrecognized arguments: {' '.join(rest)} (see `sequoia --setting {setting_name} "
                           f"--method {method_name} --help`)")

    seed = options.seed if options.seed is not None else int(config.get("seed", 0))
    loggers = config.get("loggers", []) if resumed else [n for n in options.loggers.split(",") if n]
    check_logger_names(loggers)
    experiment = resumed or Run.new(options.output or "results", describe(setting, method, seed, loggers))
    results = setting.apply(method, seed=seed, progress=not options.quiet, run=experiment)
    if distributed.is_main():
        print(results.summary())
        print(f"\nrun directory: {experiment.directory}")
    return 0


def _resumed_run(options: argparse.Namespace, rest: list[str]) -> Run | None:
    """The run ``--resume`` names, checked against any ``--setting``/``--method`` also given."""
    if not options.resume:
        return None
    changes = [flag for flag, value in (("--config", options.config), ("--seed", options.seed),
                                        ("--preset", options.preset), ("--output", options.output),
                                        ("--loggers", options.loggers)) if value] + rest
    if changes:
        raise SequoiaError(f"--resume continues a run as it was configured; it takes no {changes[0]} "
                           "(start a new run to change options)")
    run = Run.resume(options.resume)
    recorded_setting, recorded_method = run.config["setting"].get("name"), run.config["method"].get("name")
    if options.method and options.method != recorded_method:
        raise SequoiaError(f"cannot resume {options.resume}: it ran method {recorded_method}, not {options.method}")
    if options.setting:
        given = resolve_setting(options.setting, get_method(str(recorded_method))).qualified_name()
        if given != recorded_setting:
            raise SequoiaError(f"cannot resume {options.resume}: it ran setting {recorded_setting}, not {given}")
    options.setting = options.method = None  # the recorded names rule
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sequoia`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["list"]:
            print(tree_listing())
            return 0
        return run(argv)
    except SequoiaError as error:
        print(f"sequoia: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sequoia: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
