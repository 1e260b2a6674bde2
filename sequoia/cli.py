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

The steps: :func:`read_request` (run options and the config layer),
:func:`choose_classes`, :func:`build_groups` (one option group after another),
then :func:`execute` or :func:`help_text`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

from sequoia import cache_directories, console, distributed
from sequoia.errors import SequoiaError, TrainingError, disk_full, summary
from sequoia.library_output import quiet_libraries, verbose_requested
from sequoia.options import add_options, build, given, known
from sequoia.paths import path_option
from sequoia.presets import preset_values
from sequoia.registry import get_method, resolve_setting
from sequoia.runs import Run, describe
from sequoia.runs.loggers import check_logger_names
from sequoia.runs.run import check_output_root
from sequoia.threads import ThreadPolicy
from sequoia.yaml_file import read_yaml

USAGE = (
    "sequoia --setting NAME --method NAME [--setting.OPTION V] [--method.OPTION V] [--learner.OPTION V]"
    " [--seed N] [--output DIR | --directory DIR] [--config FILE] [--preset NAME] [--loggers NAMES]"
    " [--threads N] [--quiet] [--verbose]\n"
    "       sequoia --resume RUN_DIR [--threads N]\n       sequoia sweep ...\n       sequoia compare DIR...\n"
    "       sequoia tune ...\n"
    "       sequoia list"
)
MAX_THREADS = 1024
CONFIG_KEYS = {"setting", "eval", "method", "learner", "seed", "loggers"}
WRITTEN_KEYS = {"resolved"}
"""Keys sequoia writes into ``config.yaml`` for itself (what ``auto`` options became), accepted on reading."""
GROUP_KEYS = ("setting", "eval", "method", "learner")
MAX_SEED = 2**64 - 1
"""The largest seed: numpy and torch take any integer from 0 to 2**64 - 1."""


class ArgumentParser(argparse.ArgumentParser):
    """An argument parser that raises a :class:`SequoiaError` instead of printing usage and exiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(add_help=False, allow_abbrev=False, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse API
        raise SequoiaError(message)


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
        config: the config layer: a ``--config`` file, or the resumed run's ``config.yaml``.
        resumed: the run ``--resume`` continues, if any.
    """

    options: argparse.Namespace
    rest: list[str]
    config: dict[str, Any]
    resumed: Run | None = None

    def name(self, group: str) -> str | None:
        """The setting's or method's name: from the command line, else from the config."""
        return getattr(self.options, group) or (self.config.get(group) or {}).get("name")

    def config_values(self, group: str) -> dict[str, Any]:
        """The config's options of ``group``, without the name that chose its class."""
        return {key: value for key, value in (self.config.get(group) or {}).items() if key != "name"}


def load_config(path: str) -> dict[str, Any]:
    """A config file's mapping, checked key by key, with one-line errors."""
    loaded = read_yaml(path, "config file")
    if not isinstance(loaded, dict):
        raise SequoiaError(f"config file {path} must hold a mapping with keys {', '.join(sorted(CONFIG_KEYS))}")
    check_config_keys(loaded, f"config file {path}")
    return loaded


def check_config_keys(config: dict[str, Any], where: str) -> None:
    """The config's keys and the shapes of their values (the values themselves are the dataclasses' to check)."""
    unknown = set(config) - CONFIG_KEYS - WRITTEN_KEYS
    if unknown:
        raise SequoiaError(f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
    for key in GROUP_KEYS:
        _check_group(config.get(key) or {}, key, where)
    loggers = config.get("loggers", [])
    if not (isinstance(loggers, list) and all(isinstance(name, str) for name in loggers)):
        raise SequoiaError(f"{where}: `loggers` must be a list of logger names")
    _check_resolved(config.get("resolved") or {}, where)


def _check_resolved(resolved: Any, where: str) -> None:
    """``resolved``: what a machine decided for options such as ``dtype: auto``, group by group."""
    if not isinstance(resolved, dict) or not all(isinstance(part, dict) for part in resolved.values()):
        raise SequoiaError(f"{where}: `resolved` must map `setting` to the values its machine chose "
                           "(as sequoia writes it)")


def _check_group(group: Any, key: str, where: str) -> None:
    if not isinstance(group, dict) or not all(isinstance(name, str) for name in group):
        raise SequoiaError(f"{where}: `{key}` must be a mapping of option names to values")
    if "name" in group and not isinstance(group["name"], str):
        raise SequoiaError(f"{where}: `{key}.name` must be a name (text), not {group['name']!r}")


def check_seed(seed: Any, where: str) -> int:
    """``seed`` as an int in ``[0, 2**64)``, or a one-line error naming ``where`` it came from."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SequoiaError(f"invalid seed {seed!r} from {where}: expected an integer from 0 to 2**64 - 1")
    return seed


def read_request(argv: list[str]) -> Request:
    """Parse the run options; read the config layer (``--config`` or the resumed run's)."""
    parser = ArgumentParser(prog="sequoia", usage=USAGE)
    add_run_options(parser)
    options, rest = parser.parse_known_args(argv)
    resumed = _resumed_run(options, rest)
    if resumed:
        return Request(options, rest, resumed.config, resumed)
    return Request(options, rest, load_config(options.config) if options.config else {})


def choose_classes(request: Request) -> tuple[type | None, type | None]:
    """The setting and method classes the names mean (either may be missing with ``--help``)."""
    setting_name, method_name = request.name("setting"), request.name("method")
    if not (setting_name and method_name) and not request.options.help:
        raise SequoiaError("--setting and --method are required (or --config FILE); `sequoia list` shows the names")
    method_cls = get_method(str(method_name)) if method_name else None
    setting_cls = resolve_setting(str(setting_name), method_cls) if setting_name else None
    return setting_cls, method_cls


def _layers(group: str, cls: type, request: Request, preset: dict, cli: dict[str, Any],
            config: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The preset, config and command-line values of one option group, lowest first."""
    config = request.config_values(group) if config is None else config
    return [(f"--preset {request.options.preset} {group}.", known(cls, preset.get(group, {}))),
            (f"config {group}.", config), (f"--{group}.", cli)]


def build_groups(request: Request, setting_cls: type | None, method_cls: type | None) -> tuple[Any, Any, list[str]]:
    """The setting and the method, each from its layers; the method's own groups after it.

    Returns the setting, the method (either ``None`` where its class is) and the
    arguments no group took.
    """
    preset = preset_values(request.options.preset, setting_cls.domain) if request.options.preset and setting_cls \
        else {}
    parser = ArgumentParser()
    classes = {group: cls for group, cls in (("setting", setting_cls), ("method", method_cls)) if cls is not None}
    for group, cls in classes.items():
        add_options(parser, cls, group)
    namespace, rest = parser.parse_known_args(request.rest)
    built = {group: build(cls, _layers(group, cls, request, preset, given(namespace, group)))
             for group, cls in classes.items()}
    setting, method = built.get("setting"), built.get("method")
    if setting is not None:
        rest = _build_extra_groups(setting, setting.option_groups(), request, preset, rest)
    if method is not None and setting_cls is not None:
        rest = _build_extra_groups(method, method.option_groups(setting_cls), request, preset, rest,
                                   lambda group, cls: _group_config(request, group, cls))
        check_unread_sections(request, {"setting", "method", *setting.option_groups(),
                                        *method.option_groups(setting_cls)}, setting_cls, method_cls)
    return setting, method, rest


def check_unread_sections(request: Request, read: set[str], setting_cls: type, method_cls: type) -> None:
    """Refuse a config section that sets options no part of this run reads (as the command line refuses them).

    ``eval`` options on a supervised run, for example, would otherwise be dropped without a word.
    """
    for key in GROUP_KEYS:
        values = request.config_values(key)
        if values and key not in read:
            raise SequoiaError(f"config {key}: {', '.join(sorted(map(str, values)))} set, but "
                               f"{setting_cls.qualified_name()} with method {method_cls.name} reads no {key} "
                               f"options (`sequoia --setting {setting_cls.qualified_name()} --method "
                               f"{method_cls.name} --help` lists those it reads)")


def _build_extra_groups(owner, groups: dict[str, type], request: Request, preset: dict, rest: list[str],
                        config=None) -> list[str]:
    """Build each option group a setting or method takes beyond its own (``eval``, ``learner``) and hand it over.

    ``config(group, cls)`` gives the config layer of a group where it needs more than the
    config's section of that name (a method's learner; see :func:`_group_config`).
    """
    for group, cls in groups.items():
        layer = config(group, cls) if config else None
        parser = ArgumentParser()
        add_options(parser, cls, group)
        namespace, rest = parser.parse_known_args(rest)
        owner.use_options(group, build(cls, _layers(group, cls, request, preset, given(namespace, group), layer)))
    return rest


def _group_config(request: Request, group: str, cls: type) -> dict[str, Any]:
    """The config's options for the method's group ``group``, built as ``cls``.

    A config whose ``learner.name`` is another learner than the one the method uses
    contradicts itself unless ``--method.learner`` chose that other learner on the
    command line; then the config's learner options belong to the learner replaced.
    """
    named = (request.config.get(group) or {}).get("name", cls.name)
    if named == cls.name:
        return request.config_values(group)
    if any(arg.split("=")[0] == f"--method.{group}" for arg in request.rest):
        return {}
    raise SequoiaError(f"config {group}.name is {named!r}, but the method uses {group} {cls.name!r}; set "
                       f"method.{group}: {named} in the config, or remove {group}.name")


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


def execute(request: Request, setting, method) -> int:
    """Run the experiment in a new (or the resumed) run directory; print its results."""
    experiment = request.resumed or new_run(request, setting, method)
    experiment.thread_policy = ThreadPolicy(check_threads(request.options.threads))
    try:
        results = setting.apply(method, seed=run_seed(request), progress=not request.options.quiet, run=experiment)
    except (KeyboardInterrupt, BrokenPipeError) as error:
        error.recovery_hint = experiment.recovery_hint()
        raise
    except OSError as error:
        if not disk_full(error):
            error.run_directory = experiment.directory
            raise
        # The checkpoint writer says which checkpoint survived; any other write (a metrics
        # line, results.json) fails here, after the last checkpoint, which stays resumable.
        raise TrainingError(f"the disk is full (writing in {error.filename or experiment.directory})"
                            f"{experiment.recovery_hint()}") from None
    except Exception as error:
        error.run_directory = experiment.directory  # where main() writes an internal error's traceback
        error.recovery_hint = experiment.recovery_hint()  # said only if a signal caused the error
        raise
    finally:
        experiment.close()  # the directory's lock, even where the run failed before it opened
    if distributed.is_main():
        try:
            print(results.summary())
            print(f"\nrun directory: {experiment.directory}", flush=True)
        except OSError as error:  # a reader gone, a full device: the results are saved all the same
            error.recovery_hint = f"; the run finished: its results are in {experiment.directory}"
            raise
    return 0


def run_seed(request: Request) -> int:
    """The seed: ``--seed``, else the config's, else 0; checked."""
    if request.options.seed is not None:
        return check_seed(request.options.seed, "--seed")
    return check_seed(request.config.get("seed", 0), "the config")


def check_threads(threads: int | None) -> int | None:
    """``--threads``, checked: from 1 to :data:`MAX_THREADS`, or ``None`` (the thread policy decides)."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise SequoiaError(f"invalid --threads {threads}: expected an integer from 1 to {MAX_THREADS}")
    return threads


def check_placement(output: str | None, directory: str | None) -> None:
    """``--output`` or ``--directory`` (a new one), in a place a run directory can be made."""
    if directory and output:
        raise SequoiaError("give --output (where run directories go) or --directory (the run directory), not both")
    if directory and Path(directory).exists():
        raise SequoiaError(f"--directory {directory} already exists: a run directory is made new "
                           f"(`sequoia --resume {directory}` continues a run)")
    check_output_root(Path(directory or output or "results"), "--directory" if directory else "--output")


def new_run(request: Request, setting, method) -> Run:
    """A run to be made under ``--output`` (or at ``--directory``), its loggers and location checked first."""
    options = request.options
    loggers = [name for name in options.loggers.split(",") if name] or list(request.config.get("loggers", []))
    check_logger_names(loggers)
    check_placement(options.output, options.directory)
    run = Run.new(options.output or "results", describe(setting, method, run_seed(request), loggers))
    run.exact_directory = Path(options.directory) if options.directory else None
    return run


def run(argv: list[str]) -> int:
    """Parse ``argv``, run the experiment, print and save its results."""
    request = read_request(argv)
    setting_cls, method_cls = choose_classes(request)
    setting, method, rest = build_groups(request, setting_cls, method_cls)
    if request.options.help:
        print(help_text(setting_cls, method))
        return 0
    if rest:
        raise SequoiaError(f"unrecognized arguments: {' '.join(rest)} (see `sequoia --setting "
                           f"{request.name('setting')} --method {request.name('method')} --help`)")
    return execute(request, setting, method)


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
    run = Run.resume(options.resume)
    check_config_keys(run.config, f"cannot resume {options.resume}: its config.yaml")
    recorded_setting, recorded_method = run.config["setting"].get("name"), run.config["method"].get("name")
    if options.method and options.method != recorded_method:
        raise SequoiaError(f"cannot resume {options.resume}: it ran method {recorded_method}, not {options.method}")
    if options.setting:
        given_name = resolve_setting(options.setting, get_method(str(recorded_method))).qualified_name()
        if given_name != recorded_setting:
            raise SequoiaError(f"cannot resume {options.resume}: it ran setting {recorded_setting}, not {given_name}")
    options.setting = options.method = None  # the recorded names rule
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sequoia`` command; returns the exit code.

    Input errors print one line and return 2, a failed run 1, an interrupt 130
    (SIGINT) or 143 (SIGTERM). A reader of stdout that went away ends the command
    quietly with 141 (as SIGPIPE ends Unix tools); a full device under stdout or an
    output file is one line and 2. Anything else is a bug: one line names the file that
    holds its traceback, and the code is 1 (``SEQUOIA_DEBUG=1`` raises it instead).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        quiet_libraries(verbose=verbose_requested(argv, os.environ))
        code = dispatch(argv)
        console.raise_if_signalled()  # a signal some library swallowed: the command did not end as asked
        flush_stdout()  # a full device or a reader gone fails here, where the handlers below see it
        return code
    except SequoiaError as error:
        print(f"sequoia: error: {one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as error:
        print(f"sequoia: interrupted{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
        return getattr(error, "exit_code", 130)
    except BrokenPipeError as error:
        return output_closed(getattr(error, "recovery_hint", ""))
    except OSError as error:
        return interrupted_instead(error) or (output_full(error) if disk_full(error) else internal_error(error))
    except Exception as error:
        return interrupted_instead(error) or internal_error(error)


def interrupted_instead(error: Exception) -> int:
    """An error raised after a signal (a library wrapping the interrupt in its own error, for example inside
    a lazy import) is the interrupt: its one line and exit code; 0 where no signal came."""
    signum = console.signalled()
    if signum is None:
        return 0
    print(f"sequoia: interrupted{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
    return 128 + signum


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


def internal_error(error: Exception) -> int:
    """A bug: one line naming the file that holds the traceback; exit code 1 (``SEQUOIA_DEBUG=1`` raises)."""
    if os.environ.get("SEQUOIA_DEBUG") == "1":
        raise error
    where = save_traceback(error, getattr(error, "run_directory", None))
    print(f"sequoia: internal error: {summary(error)} (a bug in sequoia; the "
          f"traceback is in {where}, please report it)", file=sys.stderr)
    return 1


def output_full(error: OSError) -> int:
    """A full device under stdout or an output file: one line, and 2 (as ``ls > /dev/full`` does)."""
    if os.environ.get("SEQUOIA_DEBUG") == "1":
        raise error
    silence_stdout()  # Python's flush at exit would fail on the same device
    print(f"sequoia: error: cannot write {error.filename or 'the output'}: {error.strerror}"
          f"{getattr(error, 'recovery_hint', '')}", file=sys.stderr)
    return 2


def flush_stdout() -> None:
    """Write out what stdout holds (it is None where the interpreter started without one)."""
    if sys.stdout is not None:
        sys.stdout.flush()


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that nothing more is written where writing failed."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout already closed or replaced
        pass


def output_closed(hint: str) -> int:
    """The reader of stdout went away (``sequoia list | head -1``): end quietly, as Unix tools do.

    Returns 141 (128 + SIGPIPE, what a shell reports for a tool that SIGPIPE ended). stdout
    is pointed at /dev/null so that Python's last flush at exit does not fail again; a
    run says on stderr where its checkpoint or results are (``hint``).
    """
    silence_stdout()
    if hint:
        try:
            print(f"sequoia: stdout was closed{hint}", file=sys.stderr)
        except OSError:  # stderr went with it
            pass
    return 128 + signal.SIGPIPE


def list_command(arguments: list[str]) -> int:
    """``sequoia list``: the tree of settings, the methods and the learners."""
    if arguments:
        raise SequoiaError(f"`sequoia list` takes no arguments; got {' '.join(arguments)}")
    from sequoia.listing import tree_listing

    print(tree_listing())
    return 0


def one_line(error: BaseException) -> str:
    """``error``'s message on one line: a message quoting another library's text can hold newlines."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def save_traceback(error: BaseException, run_directory: Path | None) -> Path:
    """Write ``error``'s traceback to ``traceback.txt`` in the run directory, else to a temporary file."""
    text = "".join(traceback.format_exception(error))
    if run_directory is not None and run_directory.is_dir():
        path = run_directory / "traceback.txt"
        try:
            path.write_text(text)
            return path
        except OSError:  # a read-only or full place: the temporary directory below
            pass
    handle, name = tempfile.mkstemp(prefix="sequoia-traceback-", suffix=".txt")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
