"""Progress within each evaluation part: the items scored so far, so that a slow part shows motion."""

import re

import pytest

from sequoia import progress
from sequoia.methods import Naive
from sequoia.settings import base
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.rl import IncrementalRLSetting
from sequoia.settings.sl import IncrementalSLSetting
from tests.conftest import quick_method, quick_setting

UNITS = {"sl": "images", "pa": "replies", "rl": "episodes"}


@pytest.mark.parametrize("setting_cls", [IncrementalSLSetting, IncrementalPASetting, IncrementalRLSetting],
                         ids=["sl", "pa", "rl"])
def test_every_evaluation_part_shows_its_items_up_to_the_last(setting_cls, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(base, "_postfix", lambda bar, part: lambda text: shown.append(f"{part}: {text}"))
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 0.0)
    shorter = {"sl": {"nb_tasks": 2}, "rl": {"nb_tasks": 2, "steps_per_task": 200}, "pa": {}}
    setting = quick_setting(setting_cls, **shorter[setting_cls.domain])
    setting.apply(quick_method(Naive, setting_cls), progress=False)
    unit = UNITS[setting_cls.domain]
    last: dict[str, tuple[int, int]] = {}
    for line in shown:
        part, done, total = re.fullmatch(rf"(.+): (\d+)/(\d+) {unit}", line).groups()
        assert 0 < int(done) <= int(total)
        last[part] = (int(done), int(total))
    tasks = {f"task {task}" for task in range(setting.nb_tasks_total)}
    assert tasks <= set(last)  # every task's part reported
    assert all(done == total for done, total in last.values())  # and reached its end


def test_reports_closer_than_the_interval_are_not_redrawn_but_the_last_is(monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr(progress, "MIN_INTERVAL_S", 3600.0)
    with progress.within(shown.append):
        for done in range(1, 11):
            progress.items(done, 10, "replies")
    assert shown[-1] == "10/10 replies" and len(shown) <= 2
