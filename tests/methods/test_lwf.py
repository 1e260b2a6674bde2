"""LwF: the distillation each domain defines, and less forgetting than naive on task-incremental digits."""

import numpy as np
import torch

from sequoia.learners import DQN, DPOLoRA
from sequoia.lm.scoring import ReplyScores
from sequoia.methods import LwF, Naive
from sequoia.methods.lwf import LwFPlugin
from sequoia.settings.sl import TaskIncrementalSLSetting


def test_lwf_forgets_less_than_naive_on_task_incremental_digits():
    naive = TaskIncrementalSLSetting().apply(Naive(), progress=False)
    lwf = TaskIncrementalSLSetting().apply(LwF(), progress=False)
    assert lwf.matrix.average_forgetting() < 0.5 * naive.matrix.average_forgetting()


def test_no_teacher_before_the_first_task_ends():
    plugin = LwFPlugin(alpha=1.0, temperature=2.0)
    plugin.on_task_switch(learner=None, task_id=0)  # nothing trained yet: nothing to snapshot
    assert plugin.teacher is None and plugin.penalty(None, {}, None) is None


def reply_scores(logits: torch.Tensor, mask: torch.Tensor) -> ReplyScores:
    """Scores whose reply tokens' logits are ``logits[mask]`` (the full-logits form: the head is the identity)."""
    return ReplyScores(torch.zeros(len(logits)), mask.sum(-1), logits[mask], torch.nn.Identity())


def test_pa_distillation_is_the_token_kl_on_reply_positions():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    mask = torch.tensor([[False, True, True], [True, True, True]])
    loss = DPOLoRA().distillation(reply_scores(student, mask), reply_scores(teacher, mask), temperature=1.0)
    q, log_p = teacher.softmax(-1), student.log_softmax(-1)
    per_token = (q * (q.log() - log_p)).sum(-1)
    torch.testing.assert_close(loss, per_token[mask].mean())
    same = DPOLoRA().distillation(reply_scores(teacher, mask), reply_scores(teacher, mask), temperature=2.0)
    assert abs(float(same)) < 1e-6


def test_rl_distillation_matches_q_values():
    q, old = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 4.0]])
    assert float(DQN().distillation(q, old, temperature=2.0)) == np.mean([0.0, 4.0])
