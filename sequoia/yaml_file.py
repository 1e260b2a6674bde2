"""Reading the YAML files a user hands to ``sequoia`` (configs, RL schedules), safely.

PyYAML's safe loader builds no Python objects beyond plain data, but alone it still
accepts what no config needs and what can stop a machine: a file of gigabytes, bytes
that are not UTF-8, nesting deep enough to exhaust the recursion limit, and an
"alias bomb" (a few lines whose aliases expand to billions of nodes once anything
walks the result). :func:`read_yaml` refuses each with one line naming the file.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = path.write_text("a: &x [1, 2]\\nb: *x\\n")
    >>> read_yaml(path, "config file")
    {'a': [1, 2], 'b': [1, 2]}
    >>> _ = path.write_text("a: &a [1, 1]\\n" + "".join(f"{c}: &{c} [*{p}, *{p}]\\n" for p, c in zip("abcdefghijklmnopqrstuvwxy", "bcdefghijklmnopqrstuvwxyz")))
    >>> read_yaml(path, "config file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: config file ...c.yaml: holds more than 100000 values, aliases expanded ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sequoia.errors import SequoiaError
from sequoia.text_files import read_utf8

MAX_BYTES = 1 << 20
"""Largest file read (1 MiB): configs and schedules are a few hundred bytes."""
MAX_VALUES = 100_000
"""Most scalars, sequences and mappings a file may expand to, aliases counted each time used."""


def read_yaml(path: str | Path, what: str) -> Any:
    """The data in the YAML file ``path``; ``what`` names it in messages (``"config file"``).

    Raises:
        SequoiaError: the file is missing, too large, not UTF-8, not YAML, nested too
            deeply, or expands beyond :data:`MAX_VALUES`.
    """
    text = read_utf8(path, what, MAX_BYTES)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_size(node, path, what)
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SequoiaError(f"{what} {path} is not valid YAML: {str(error).splitlines()[0]}") from None
    except RecursionError:
        raise SequoiaError(f"{what} {path} is nested too deeply to be a config") from None


def _check_size(root: yaml.Node | None, path: str | Path, what: str) -> None:
    """Refuse a document whose values, aliases expanded, exceed :data:`MAX_VALUES`."""
    sizes: dict[int, int] = {}  # by node identity: an aliased node is one object, counted once here
    inside: set[int] = set()  # the nodes being counted: one reached again from within itself refers to itself

    def size(node: yaml.Node) -> int:
        if id(node) in inside:
            raise SequoiaError(f"{what} {path}: the value at line {node.start_mark.line + 1} contains itself "
                               "through an alias; write the values out")
        if id(node) not in sizes:
            inside.add(id(node))
            children = node.value if isinstance(node, yaml.SequenceNode) else \
                [child for pair in node.value for child in pair] if isinstance(node, yaml.MappingNode) else []
            sizes[id(node)] = 1 + sum(size(child) for child in children)
            inside.discard(id(node))
            if sizes[id(node)] > MAX_VALUES:
                raise SequoiaError(f"{what} {path}: holds more than {MAX_VALUES} values, aliases expanded "
                                   "(an alias bomb, or a file far larger than any sequoia reads)")
        return sizes[id(node)]

    if root is not None:
        size(root)
