"""What a setting's loop asks of every method, as a protocol the settings depend on.

:class:`sequoia.methods.base.Method` provides it; settings name this protocol rather
than the class, so that the setting tree does not depend on the methods built for it
(methods depend on settings: they declare the most general one they handle). What a
domain asks at test time (classify, act, score replies) is that domain's own protocol
(:attr:`Setting.test_protocol <sequoia.settings.base.Setting.test_protocol>`).

Example:
    >>> from sequoia.methods.naive import Naive
    >>> isinstance(Naive(), MethodContract)
    True
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class MethodContract(Protocol):
    """The calls of a setting's loop: applicability, configuration, training, and what results record."""

    name: str

    def is_applicable(self, setting: Any) -> bool: ...

    def why_not_applicable(self, setting_type: type | None, shown_name: str) -> str: ...

    def attach_monitor(self, monitor: Any) -> None: ...

    def configure(self, view: Any) -> None: ...

    def on_task_switch(self, task_id: int | None) -> None: ...

    def fit(self, train: Any, valid: Any) -> None: ...

    def identify_tasks(self, inputs: Any) -> Any: ...

    def num_trainable_parameters(self) -> int | None: ...

    def extra_metrics(self) -> dict[str, float]: ...
