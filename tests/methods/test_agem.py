"""A-GEM: better class-incremental accuracy than naive, projections that happen, and the same step in pieces."""

import torch

from sequoia.learners import Classifier
from sequoia.methods import AGEM, Naive
from sequoia.settings.sl import IncrementalSLSetting


def test_agem_keeps_more_of_the_old_classes_than_naive():
    naive = IncrementalSLSetting().apply(Naive(), progress=False)
    agem = AGEM()
    result = IncrementalSLSetting().apply(agem, progress=False)
    assert result.matrix.average_final() > naive.matrix.average_final() + 0.15
    assert agem.base_learner.plugins[0].projections > 0
    assert len(agem.memory) == agem.memory_size


def test_projection_gives_the_same_step_with_gradient_accumulation():
    weights = []
    for pieces in (1, 3):
        method = AGEM(memory_size=60, sample_size=30).use_learner(Classifier(epochs=1, gradient_accumulation=pieces))
        IncrementalSLSetting(nb_tasks=2).apply(method, seed=0, progress=False)
        weights.append(torch.cat([p.flatten() for p in method.base_learner.trainable_parameters().values()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-5, rtol=1e-4)
