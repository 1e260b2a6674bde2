"""Write a new method against the Method API: one expert per task, picked by confidence.

`ConfidentExperts` targets the incremental level of SL, because it needs the
task boundaries (`on_task_switch`) to know when to start a new expert. At test
time it uses the task id where the setting gives one (task-incremental), and
otherwise asks every expert and trusts the most confident, a simplified
Expert Gate (Aljundi et al., 2017). It therefore runs on sl.incremental,
sl.domain_incremental, sl.task_incremental and sl.multi_task, but not on the
task-agnostic levels above them.

    python examples/new_method.py [--epochs 10] [--seed 0]
"""

import argparse
from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn

from sequoia import register_method
from sequoia.methods.base import Method
from sequoia.settings.sl import IncrementalSLSetting, TaskIncrementalSLSetting


@register_method  # `sequoia --setting class_incremental --method confident_experts` once imported
@dataclass
class ConfidentExperts(Method):
    """One small classifier per task; at test time the task id or the most confident expert decides.

    Example:
        >>> from sequoia.settings.sl import ContinualSLSetting
        >>> ConfidentExperts.is_applicable(IncrementalSLSetting()), ConfidentExperts.is_applicable(ContinualSLSetting())
        (True, False)
    """

    name: ClassVar[str] = "confident_experts"
    target_setting: ClassVar[type] = IncrementalSLSetting

    hidden_size: Annotated[int, Field(gt=0)] = 64
    epochs: Annotated[int, Field(gt=0)] = 10
    lr: Annotated[float, Field(gt=0)] = 1e-3

    def configure(self, view):
        # The view holds what the level lets a method know: shapes, classes, task count.
        self.inputs = int(torch.tensor(view.input_shape).prod())
        self.num_classes = view.num_classes
        self.experts: dict[int, nn.Module] = {}
        self.current = None

    def on_task_switch(self, task_id):
        # Boundaries are signalled at this level, with the task id: start a fresh expert.
        self.current = task_id
        self.experts[task_id] = nn.Sequential(nn.Flatten(), nn.Linear(self.inputs, self.hidden_size), nn.ReLU(),
                                              nn.Linear(self.hidden_size, self.num_classes))

    def fit(self, train, valid):
        if self.current is None:  # multi_task trains once without a switch: one expert for all
            self.on_task_switch(0)
        expert = self.experts[self.current]
        optimizer = torch.optim.Adam(expert.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            for rows in torch.randperm(len(train)).split(32):
                loss = nn.functional.cross_entropy(expert(train.x[rows]), train.y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

    @torch.no_grad()
    def predict(self, x, task_id):
        if task_id is not None and task_id in self.experts:
            return self.experts[task_id](x).argmax(-1)
        if not self.experts:
            return torch.zeros(len(x), dtype=torch.long)
        probs = torch.stack([expert(x).softmax(-1) for expert in self.experts.values()])  # experts x N x C
        best_expert = probs.max(dim=-1).values.argmax(dim=0)
        return probs[best_expert, torch.arange(len(x))].argmax(-1)

    def num_trainable_parameters(self):
        return sum(p.numel() for expert in self.experts.values() for p in expert.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for setting in (IncrementalSLSetting(), TaskIncrementalSLSetting()):
        results = setting.apply(ConfidentExperts(epochs=args.epochs), seed=args.seed, progress=False)
        print(results.summary(), end="\n\n")


if __name__ == "__main__":
    main()
