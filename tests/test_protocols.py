"""Test protocols: each domain declares what its evaluation asks of a method; the core declares none of it."""

from typing import Any, ClassVar

import pytest
from pydantic.dataclasses import dataclass

from sequoia.errors import NotApplicableError
from sequoia.learners import Classifier
from sequoia.learners.base import Learner
from sequoia.methods.base import Method
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.naive import Naive
from sequoia.protocols import calls_of
from sequoia.settings.base import Setting
from sequoia.settings.pa.protocol import Generates, ScoresReplies
from sequoia.settings.rl.protocol import Acts
from sequoia.settings.sl import IncrementalSLSetting
from sequoia.settings.sl.protocol import Classifies

DOMAIN_CALLS = {"predict", "act", "logprobs", "generate"}


@pytest.mark.parametrize("core", [Method, LearnerMethod, Learner])
def test_the_core_classes_declare_no_domain_test_call(core):
    assert not DOMAIN_CALLS & set(dir(core))


def test_each_domain_protocol_names_its_calls():
    assert [calls_of(p) for p in (Classifies, Acts, ScoresReplies, Generates)] == [
        ("predict",), ("act",), ("logprobs",), ("generate",)]


@dataclass
class FitsOnly(Method):
    name: ClassVar[str] = "fits_only"
    target_setting: ClassVar[type[Setting]] = Setting

    def fit(self, train: Any, valid: Any) -> None:
        pass


def test_a_method_without_the_domain_call_is_refused_in_one_line_before_training():
    with pytest.raises(NotApplicableError) as caught:
        IncrementalSLSetting(nb_tasks=2).apply(FitsOnly(), progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message == ("method 'fits_only' cannot be evaluated on sl.incremental: it has no predict() (the "
                       "Classifies protocol of sequoia.settings.sl.protocol)")


def test_a_learner_method_answers_its_learners_test_calls_and_nothing_else_of_it():
    method = Naive().use_learner(Classifier(epochs=1, hidden_size=8))
    assert isinstance(method, Classifies) and not isinstance(method, Acts)
    assert method.predict == method.base_learner.predict
    with pytest.raises(AttributeError):
        method.model  # the learner's own attributes stay its own  # noqa: B018
    assert not isinstance(Naive(), Classifies)  # no learner yet: no call to forward
