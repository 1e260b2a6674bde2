"""A run as data, and the one place that builds it.

An :class:`ExperimentConfig` names a setting and a method, holds the options given for
each option group (``setting``, ``eval``, ``method``, ``learner``) and the run options
(seed, preset, loggers), over a config layer (a ``--config`` file, or the ``config.yaml``
of the run being resumed). The command line reads one from its arguments, a sweep makes
one per run, and :func:`build` makes the setting and the method from it, for both alike.
The schema of ``config.yaml`` lives here too: :func:`describe` writes it and
:func:`check_config_keys` reads it.

Values come in layers, each overriding the one before: the preset (``preset``), the
config layer (``file``), the given options (``options``). Given options are typed values,
or text as a command line gives it (``text=True``: a sweep's values), which each
option's own type parses, with the command line's messages.

Example:
    >>> config = ExperimentConfig.from_options({"setting": "class_incremental", "method": "naive",
    ...                                         "setting.nb_tasks": "2", "learner.epochs": "1"})
    >>> setting, method = build(config)
    >>> setting.nb_tasks, method.config()["learner"]["epochs"]
    (2, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sequoia.errors import SequoiaError
from sequoia.options import ArgumentParser, add_options, given, known
from sequoia.options import build as build_options
from sequoia.presets import preset_values
from sequoia.registry import get_method, resolve_setting
from sequoia.yaml_file import read_yaml

CONFIG_KEYS = {"setting", "eval", "method", "learner", "seed", "loggers"}
"""The keys of ``config.yaml`` (and of a ``--config`` file)."""
WRITTEN_KEYS = {"resolved"}
"""Keys sequoia writes into ``config.yaml`` for itself (what ``auto`` options became), accepted on reading."""
GROUP_KEYS = ("setting", "eval", "method", "learner")
"""The option groups: each a section of ``config.yaml`` and a ``--<group>.`` prefix on the command line."""
RUN_KEYS = ("seed", "loggers")
"""Keys of ``config.yaml`` that say how a run ran, not what it is: runs differing only there repeat one configuration
(``resolved`` is not among them: what a machine chose, such as the dtype, changes the results)."""
MAX_SEED = 2**64 - 1
"""The largest seed: numpy and torch take any integer from 0 to 2**64 - 1."""

GivenReader = Callable[[str, type], dict[str, Any]]
"""Where the given options of a group come from, once :func:`build` knows the group's class."""


@dataclasses.dataclass
class ExperimentConfig:
    """What one run is: the setting, the method, their options, and the run options.

    Attributes:
        setting: the setting's name (a level or a qualified name); ``None``: the config layer's.
        method: the method's name; ``None``: the config layer's.
        options: the given options, by group then option name (above the config layer).
        seed: the seed; ``None``: the config layer's, else 0.
        preset: a preset of option defaults (``default``, ``smoke``), under everything else.
        loggers: optional loggers (tensorboard, wandb); ``None``: the config layer's.
        file: the config layer: a config file's mapping (checked by :func:`check_config_keys`).
        text: whether ``options`` holds command-line text, parsed by each option's type.
    """

    setting: str | None = None
    method: str | None = None
    options: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    seed: int | None = None
    preset: str | None = None
    loggers: list[str] | None = None
    file: dict[str, Any] = dataclasses.field(default_factory=dict)
    text: bool = False

    @classmethod
    def from_options(cls, flat: dict[str, Any]) -> ExperimentConfig:
        """A config from a sweep's options: ``setting``, ``method``, ``preset``, ``config`` (a file),
        ``loggers``, ``seed``, and ``<group>.<option>`` values as a command line gives them."""
        options: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            group, dot, name = str(key).partition(".")
            if dot:
                options.setdefault(group, {})[name] = value
        loggers = flat.get("loggers")
        if isinstance(loggers, str):
            loggers = [name for name in loggers.split(",") if name]
        return cls(setting=_text(flat.get("setting")), method=_text(flat.get("method")), options=options,
                   seed=None if flat.get("seed") is None else int(flat["seed"]), preset=_text(flat.get("preset")),
                   loggers=loggers or None, file=load_config(str(flat["config"])) if flat.get("config") else {},
                   text=True)

    def name(self, group: str) -> str | None:
        """The setting's or method's name: as given, else the config layer's."""
        return getattr(self, group) or (self.file.get(group) or {}).get("name")

    def file_values(self, group: str) -> dict[str, Any]:
        """The config layer's options of ``group``, without the name that chose its class."""
        return {key: value for key, value in (self.file.get(group) or {}).items() if key != "name"}

    def run_seed(self) -> int:
        """The seed: as given, else the config layer's, else 0; checked."""
        if self.seed is not None:
            return check_seed(self.seed, "--seed")
        return check_seed(self.file.get("seed", 0), "the config")

    def run_loggers(self) -> list[str]:
        """The optional loggers: as given, else the config layer's."""
        return list(self.loggers or self.file.get("loggers", []))

    def given(self, group: str, cls: type) -> dict[str, Any]:
        """The given options of ``group``, as values of ``cls``'s fields (text parsed by each option's type)."""
        values = self.options.get(group, {})
        if not self.text or not values:
            return dict(values)
        parser = ArgumentParser()
        add_options(parser, cls, group)
        tokens = [token for name, value in values.items() for token in (f"--{group}.{name}", *_tokens(value))]
        namespace, rest = parser.parse_known_args(tokens)
        if rest:
            raise SequoiaError(f"unrecognized arguments: {' '.join(rest)}")
        return given(namespace, group)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _tokens(value: Any) -> list[str]:
    """A value as command-line tokens: a list is one token per item (for options that take several)."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (list, tuple)) and value and not all(isinstance(item, str) for item in value):
        return [str(item) for item in value]
    if isinstance(value, (list, tuple)):
        return [",".join(value)]
    return [str(value)]


@dataclasses.dataclass
class Built:
    """What :func:`build` made: the classes the names mean, and the setting and method with their options."""

    setting_cls: type | None
    method_cls: type | None
    setting: Any = None
    method: Any = None


def choose_classes(config: ExperimentConfig, partial: bool = False) -> tuple[type | None, type | None]:
    """The setting and method classes the names mean (``partial``: either may be missing, as for ``--help``)."""
    setting_name, method_name = config.name("setting"), config.name("method")
    if not (setting_name and method_name) and not partial:
        raise SequoiaError("--setting and --method are required (or --config FILE); `sequoia list` shows the names")
    method_cls = get_method(str(method_name)) if method_name else None
    setting_cls = resolve_setting(str(setting_name), method_cls) if setting_name else None
    return setting_cls, method_cls


def build(config: ExperimentConfig, read_given: GivenReader | None = None) -> tuple[Any, Any]:
    """The setting and the method ``config`` describes, each group from its layers; a one-line error otherwise.

    ``read_given(group, cls)`` gives a group's given options where they are not in the
    config yet (the command line reads them once the class is known).
    """
    built = build_parts(config, read_given)
    return built.setting, built.method


def build_parts(config: ExperimentConfig, read_given: GivenReader | None = None, partial: bool = False) -> Built:
    """:func:`build`, where ``partial`` lets the setting or the method be missing (``--help``)."""
    setting_cls, method_cls = choose_classes(config, partial)
    read = read_given or config.given
    preset = preset_values(config.preset, setting_cls.domain) if config.preset and setting_cls else {}
    built = Built(setting_cls, method_cls)
    if setting_cls is not None:
        built.setting = build_options(setting_cls, _layers("setting", setting_cls, config, preset,
                                                           read("setting", setting_cls)))
        for group, cls in setting_cls.option_groups().items():
            built.setting.use_options(group, build_options(cls, _layers(group, cls, config, preset, read(group, cls))))
    if method_cls is not None:
        built.method = build_options(method_cls, _layers("method", method_cls, config, preset,
                                                         read("method", method_cls)))
    if built.setting is not None and built.method is not None:
        groups = built.method.option_groups(setting_cls)
        for group, cls in groups.items():
            layers = _layers(group, cls, config, preset, read(group, cls), _group_file_values(config, group, cls))
            built.method.use_options(group, build_options(cls, layers))
        _check_unread(config, {"setting", "method", *setting_cls.option_groups(), *groups}, setting_cls, method_cls)
    return built


def _layers(group: str, cls: type, config: ExperimentConfig, preset: dict, given_values: dict[str, Any],
            file_values: dict[str, Any] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The preset, config-layer and given values of one option group, lowest first."""
    file_values = config.file_values(group) if file_values is None else file_values
    return [(f"--preset {config.preset} {group}.", known(cls, preset.get(group, {}))),
            (f"config {group}.", file_values), (f"--{group}.", given_values)]


def _group_file_values(config: ExperimentConfig, group: str, cls: type) -> dict[str, Any]:
    """The config layer's options for the method's group ``group``, built as ``cls``.

    A config whose ``learner.name`` is another learner than the one the method uses
    contradicts itself unless ``--method.learner`` chose that other learner; then the
    config layer's learner options belong to the learner replaced.
    """
    named = (config.file.get(group) or {}).get("name", cls.name)
    if named == cls.name:
        return config.file_values(group)
    if group in config.options.get("method", {}):
        return {}
    raise SequoiaError(f"config {group}.name is {named!r}, but the method uses {group} {cls.name!r}; set "
                       f"method.{group}: {named} in the config, or remove {group}.name")


def _check_unread(config: ExperimentConfig, read: set[str], setting_cls: type, method_cls: type) -> None:
    """Refuse options of a group no part of this run reads (``eval`` options on a supervised run, for example),
    which would otherwise be dropped without a word."""
    for key in GROUP_KEYS:
        if key in read:
            continue
        values = config.file_values(key)
        if values:
            raise SequoiaError(f"config {key}: {', '.join(sorted(map(str, values)))} set, but "
                               f"{setting_cls.qualified_name()} with method {method_cls.name} reads no {key} "
                               f"options (`sequoia --setting {setting_cls.qualified_name()} --method "
                               f"{method_cls.name} --help` lists those it reads)")
        if config.options.get(key):
            given_options = " ".join(f"--{key}.{name}" for name in config.options[key])
            raise SequoiaError(f"unrecognized arguments: {given_options}")


# -- the schema of config.yaml --------------------------------------------------------
def describe(setting: Any, method: Any, seed: int, loggers: list[str] = ()) -> dict[str, Any]:
    """The ``config.yaml`` of a run: every option of the setting's and the method's groups.

    Each describes its own groups (``Setting.config``: ``setting``, and ``eval`` for PA;
    ``Method.config``: ``method``, and ``learner`` for methods built on a learner).
    ``sequoia --config`` re-runs it, and ``sequoia --resume`` rebuilds the run from it.
    """
    config: dict[str, Any] = {"seed": seed, **setting.config(), **method.config()}
    if loggers:
        config["loggers"] = list(loggers)
    if setting.resolved():  # what options such as `auto` became on this machine (read by --resume, not by --config)
        config["resolved"] = {"setting": setting.resolved()}
    return _lists(config)


def _lists(value: Any) -> Any:
    """Tuples as lists, all the way down: what ``config.yaml`` reads back, so a resume compares like with like.

    Example:
        >>> _lists({"learner": {"hidden_sizes": (64, 64)}})
        {'learner': {'hidden_sizes': [64, 64]}}
    """
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    return [_lists(item) for item in value] if isinstance(value, (list, tuple)) else value


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
