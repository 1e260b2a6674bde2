"""One expert per task and a router that picks among them (Expert Gate; contextual aggregation of value agents).

At each task boundary a new expert is trained with the chosen learner on that task
alone, so no expert forgets. A :class:`~sequoia.methods.routers.CentroidRouter`
learns, from each task's training inputs only, what that task's inputs look like. At
test, where the level hides the task id, each input goes to the expert(s) the router
picks; where the level gives it, the router is bypassed (the oracle), and the
difference between the two runs is the cost of not knowing the task.

* Aljundi et al. 2017, "Expert Gate: Lifelong Learning with a Network of Experts":
  one expert per task and a gate that recognises the task from the input.
* Dognin et al. 2024 (arXiv 2403.12805), "Contextual Moral Value Alignment Through
  Context-Based Aggregation": one agent per moral value and an aggregator that picks
  and combines them from features of the user's input.

Per domain:

* **SL**: each expert is a classifier of its own (the models are small), trained on its
  task's classes; the router's features are the flattened inputs, one mean per class.
  ``top1`` predicts with the routed expert among its own classes; ``weighted`` sums the
  experts' class probabilities (each over its own classes), weighted by the router.
* **PA**: each expert is a LoRA adapter on the one base model (peft's multi-adapter
  API: adding an expert costs an adapter, not a model). The router's features are the
  base model's (adapters off) mean last hidden state over the prompt's tokens, one
  mean per task, compared by cosine distance. ``top1`` scores a reply with the routed
  expert; ``weighted`` scores it by the mixture of the experts' reply likelihoods,
  ``log sum_t r_t p_t(reply)``. Generation always uses the top expert's adapter.
* **RL** is refused: the tasks of ``rl.*`` differ by their dynamics, not by what an
  observation looks like, so no router can tell them apart from one observation.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.errors import NotApplicableError
from sequoia.learners.base import Learner
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.routers import CentroidRouter
from sequoia.registry import register_method
from sequoia.runs.state import capture, restore
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


class ClassifierExperts:
    """SL experts: one classifier per task, each a fresh copy of the configured learner's architecture."""

    normalize_features = True

    def __init__(self, template: Learner, view: SettingView) -> None:
        self.template, self.view = template, view
        self.learners: dict[int, Learner] = {}

    def begin(self, task: int) -> Learner:
        """The expert of ``task``, made on first use (the first task gets the configured learner itself)."""
        if task not in self.learners:
            if self.learners:
                fields = {f.name: getattr(self.template, f.name) for f in dataclasses.fields(self.template)}
                learner = type(self.template)(**fields)
                learner.monitor = self.template.monitor
                learner.configure(self.view)
            else:
                learner = self.template
            self.learners[task] = learner
        return self.learners[task]

    def __len__(self) -> int:
        return len(self.learners)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float()

    def groups(self, train: Any) -> torch.Tensor:
        return train.y

    def inputs(self, train: Any) -> torch.Tensor:
        return train.x

    def predict(self, x: torch.Tensor, weights: torch.Tensor, tasks: list[int]) -> torch.Tensor:
        """Labels from the experts' class probabilities (each over its own classes), weighted by ``weights``."""
        total = None
        for column, task in enumerate(tasks):
            learner = self.learners[task]
            learner.model.eval()
            with torch.no_grad():
                logits = learner.model(x)
            own = torch.full_like(logits, float("-inf"))
            own[:, learner.task_classes.get(task, learner.trained_classes.nonzero().flatten())] = 0.0
            probabilities = torch.softmax(logits + own, dim=-1) * weights[:, column : column + 1]
            total = probabilities if total is None else total + probabilities
        return total.argmax(dim=-1)

    def expert_parameters(self) -> int:
        return sum(p.numel() for p in self.template.model.parameters())

    def total_parameters(self) -> int:
        return self.trainable_parameters()

    def trainable_parameters(self) -> int:
        """Every expert's weights (those training changed)."""
        return self.expert_parameters() * max(1, len(self))

    def state_dict(self) -> dict[int, Any]:
        return {task: learner.state_dict() for task, learner in self.learners.items()}

    def load_state_dict(self, state: dict[int, Any]) -> None:
        for task, saved in state.items():
            self.begin(task).load_state_dict(saved)


class AdapterExperts:
    """PA experts: one LoRA adapter per task on the learner's one base model."""

    normalize_features = True

    def __init__(self, learner: Learner, view: SettingView) -> None:
        self.learner = learner
        self.adapters: dict[int, str] = {}
        self._features, self._features_key = torch.empty(0), None

    def __len__(self) -> int:
        return len(self.adapters)

    def begin(self, task: int) -> Learner:
        """The learner, training ``task``'s adapter (the first task's is peft's ``default``, made untrained)."""
        if task not in self.adapters:
            if self.adapters:
                self.adapters[task] = f"task_{task}"
                self.learner.add_adapter(self.adapters[task])
            else:
                self.adapters[task] = "default"
        self.learner.use_adapter(self.adapters[task])
        return self.learner

    @torch.no_grad()
    def features(self, prompts: list) -> torch.Tensor:
        """The base model's mean last hidden state over each prompt's tokens (adapters off).

        The last prompts' features are kept: an evaluation asks for the same test prompts'
        features three times (the router's guess, then the chosen and the rejected replies).
        """
        key = repr(prompts)
        if key != self._features_key:
            self._features, self._features_key = self._pooled_hidden_states(prompts), key
        return self._features

    def _pooled_hidden_states(self, prompts: list) -> torch.Tensor:
        from sequoia.lm.logprobs import pad_left
        from sequoia.lm.tokens import encode_prompt

        learner, pooled = self.learner, []
        ids = [encode_prompt(learner.tokenizer, prompt, learner.encoding) for prompt in prompts]
        with learner.model.disable_adapter():
            for start in range(0, len(ids), learner.eval_batch_size):
                tokens, mask = pad_left(ids[start : start + learner.eval_batch_size], learner.tokenizer.pad_token_id)
                tokens, mask = tokens.to(learner.model.device), mask.to(learner.model.device)
                outputs = learner.model(input_ids=tokens, attention_mask=mask, output_hidden_states=True)
                hidden = outputs.hidden_states[-1]
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled.append(((hidden * weights).sum(1) / weights.sum(1)).float().cpu())
        return torch.cat(pooled)

    def groups(self, train: Any) -> None:
        return None

    def inputs(self, train: Any) -> list:
        return [pair.prompt for pair in train.pairs]

    def logprobs(self, prompts: list, responses: list[str], weights: torch.Tensor, tasks: list[int]) -> torch.Tensor:
        """``log sum_t weights[:, t] p_t(response | prompt)``: the router-weighted mixture of the experts.

        Each expert scores only the rows it has weight on, so ``top1`` (one-hot weights)
        costs one expert per reply.
        """
        per_expert = torch.full((len(prompts), len(tasks)), float("-inf"))
        for column, task in enumerate(tasks):
            rows = (weights[:, column] > 0).nonzero().flatten().tolist()
            if rows:
                self.learner.use_adapter(self.adapters[task])
                per_expert[rows, column] = self.learner.logprobs([prompts[r] for r in rows],
                                                                 [responses[r] for r in rows], None)
        return torch.logsumexp(per_expert + weights.log(), dim=1)

    def expert_parameters(self) -> int:
        """One adapter's weights (every expert's adapter has the same shape)."""
        return sum(p.numel() for name, p in self.learner.model.named_parameters() if ".default." in name)

    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.learner.model.parameters())

    def trainable_parameters(self) -> int:
        """Every expert's adapter (those training changed)."""
        return self.expert_parameters() * max(1, len(self))

    def state_dict(self) -> dict[str, Any]:
        """Every adapter's weights, and the learner's generators. No optimizer state: an expert
        trains within its task only, and a new task starts a new adapter with a new optimizer."""
        from peft import get_peft_model_state_dict

        return {"adapters": {task: get_peft_model_state_dict(self.learner.model, adapter_name=name)
                             for task, name in self.adapters.items()},
                "learner": capture(self.learner)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from peft import set_peft_model_state_dict

        for task, saved in state["adapters"].items():
            self.begin(task)
            set_peft_model_state_dict(self.learner.model, saved, adapter_name=self.adapters[task])
        restore(self.learner, state["learner"])


def expert_pool(learner: Learner) -> type[ClassifierExperts] | type[AdapterExperts] | None:
    """How experts of ``learner`` are kept: adapters on one base model for a LoRA learner, whole copies of the
    classifier; ``None`` for a learner neither fits."""
    return _pool_of_class(type(learner))


def _pool_of_class(learner: type[Learner]) -> type[ClassifierExperts] | type[AdapterExperts] | None:
    from sequoia.learners.classifier import Classifier
    from sequoia.learners.lora import LoRALearner

    if issubclass(learner, LoRALearner):
        return AdapterExperts
    if issubclass(learner, Classifier):
        return ClassifierExperts
    return None


def _keeps_experts_of_default_learner(setting_type: type[Setting]) -> bool:
    """Whether the learner ``setting_type`` trains by default has a pool of experts (the domain's applicability)."""
    from sequoia.registry import learners

    learner = learners().get(setting_type.default_learner)
    return learner is not None and _pool_of_class(learner) is not None


@dataclasses.dataclass
class RoutedExperts:
    """What ``experts`` builds at ``configure`` and changes while it trains (its options stay on the method).

    Attributes:
        pool: the experts, copies of the classifier or LoRA adapters on one base model.
        router: picks the expert(s) of each test input.
        task: the task being trained, ``None`` before the first boundary (checkpoints keep it).
    """

    pool: ClassifierExperts | AdapterExperts
    router: CentroidRouter
    task: int | None = None


class ReportsExperts:
    """What a run reports of a method that keeps its experts in ``self.experts.pool``: how many, and their
    parameters. ``pool`` and ``task`` read the method's run-time state (``None`` before ``configure``)."""

    def _built(self, name: str) -> Any:
        """``name`` of the run-time state ``configure`` built (``None`` before it)."""
        experts = vars(self).get("experts")
        return None if experts is None else getattr(experts, name)

    @property
    def pool(self) -> ClassifierExperts | AdapterExperts | None:
        return self._built("pool")

    @property
    def task(self) -> int | None:
        return self._built("task")

    def extra_metrics(self) -> dict[str, float]:
        return {"experts": len(self.pool), "parameters_per_expert": self.pool.expert_parameters(),
                "total_parameters": self.pool.total_parameters()}

    def num_trainable_parameters(self) -> int | None:
        return None if self.pool is None else self.pool.trainable_parameters()

    def num_parameters(self) -> int | None:
        return None if self.pool is None else self.pool.total_parameters()

    def task_state(self) -> dict[str, Any]:
        """The method's checkpoint attributes, and the task being trained (``attributes`` of its checkpoint)."""
        return {**capture(self), "task": self.experts.task}

    def restore_task_state(self, saved: dict[str, Any]) -> None:
        """Put back what :meth:`task_state` saved."""
        saved = dict(saved)
        self.experts.task = saved.pop("task")
        restore(self, saved)


@register_method
@dataclass
class Experts(ReportsExperts, LearnerMethod):
    """One expert per task, trained by the chosen learner, and a router that picks among them at test.

    See the module docstring for what an expert, the router and each aggregation are
    in each domain. Options: ``--method.learner`` (the learner each expert is trained
    with), ``--method.aggregate top1|weighted``, ``--method.router_temperature``.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.learners import Classifier
        >>> method = Experts().use_learner(Classifier(epochs=5, hidden_size=32))
        >>> results = IncrementalSLSetting(nb_tasks=2).apply(method, progress=False)
        >>> results.metrics()["experts"], results.metrics()["task_identification"] > 0.8
        (2, True)
    """

    name: ClassVar[str] = "experts"
    target_setting: ClassVar[type[Setting]] = IncrementalAssumption
    carries_across_phases: ClassVar[bool] = True

    aggregate: Literal["top1", "weighted"] = "top1"
    """`top1`: the routed expert alone; `weighted`: the experts combined, weighted by the router."""
    router_temperature: Annotated[float, Field(gt=0, le=1_000)] = 0.1
    """Softmax temperature of the router's weights (`weighted`), relative to the nearest mean's distance."""

    @classmethod
    def is_applicable(cls, setting: Setting | type[Setting]) -> bool:
        setting_type = setting if isinstance(setting, type) else type(setting)
        return (not setting_type.task_not_in_inputs and super().is_applicable(setting_type)
                and _keeps_experts_of_default_learner(setting_type))

    @classmethod
    def why_not_applicable(cls, setting_type: type[Setting] | None, shown_name: str) -> str:
        if setting_type is not None and setting_type.task_not_in_inputs:
            return f"method 'experts' does not apply to {shown_name}: {setting_type.task_not_in_inputs}"
        if setting_type is not None and not _keeps_experts_of_default_learner(setting_type):
            return (f"method 'experts' does not apply to {shown_name}: it keeps experts of the SL classifier and of "
                    f"PA's LoRA learners, not of {setting_type.default_learner or 'its learner'}")
        return super().why_not_applicable(setting_type, shown_name)

    def configure(self, view: SettingView) -> None:
        super().configure(view)
        pool_class = expert_pool(self.base_learner)
        if pool_class is None:
            raise NotApplicableError(f"method 'experts' keeps no experts of learner {self.base_learner.name!r}: it "
                                     "keeps copies of the SL classifier or LoRA adapters of a PA learner")
        pool = pool_class(self.base_learner, view)
        self.experts = RoutedExperts(pool, CentroidRouter(normalize=pool.normalize_features,
                                                          temperature=self.router_temperature))

    @property
    def router(self) -> CentroidRouter | None:
        """The router (``None`` before ``configure``)."""
        return self._built("router")

    # -- training -------------------------------------------------------------------
    def on_task_switch(self, task_id: int | None) -> None:
        self.experts.task = task_id
        self.base_learner = self.pool.begin(task_id)
        super().on_task_switch(task_id)

    def fit(self, train: Any, valid: Any) -> None:
        if self.task is None:  # boundaries are signalled at this level, so this is a bug, not bad input
            raise RuntimeError("experts: fit() before on_task_switch()")
        self.base_learner.fit(train, valid)
        inputs = self.pool.inputs(train)
        self.router.add(self.task, self.pool.features(inputs), self.pool.groups(train))

    # -- test -----------------------------------------------------------------------
    def identify_tasks(self, inputs: Any) -> torch.Tensor:
        """The router's guess of each input's task (``-1`` before any task is learned)."""
        if not self.router.tasks:
            return torch.full((len(inputs),), -1, dtype=torch.long)
        return self.router.predict(self.pool.features(inputs))

    def route(self, inputs: Any) -> torch.Tensor:
        """The router's ``p(task | input)``: ``(inputs, tasks)``, columns in the order of ``router.tasks``."""
        return self.router.probabilities(self.pool.features(inputs))

    def _weights(self, inputs: Any, task_id: int | None) -> tuple[torch.Tensor, list[int]]:
        """Each input's weight on each expert: the oracle's one-hot where the task id is given, else the router's."""
        tasks = self.router.tasks
        if task_id is not None and task_id in tasks:
            weights = torch.zeros(len(inputs), len(tasks))
            weights[:, tasks.index(task_id)] = 1.0
            return weights, tasks
        if self.aggregate == "weighted":
            return self.route(inputs), tasks
        guesses = self.router.predict(self.pool.features(inputs))
        return torch.nn.functional.one_hot(torch.as_tensor([tasks.index(int(g)) for g in guesses]),
                                           len(tasks)).float(), tasks

    def predict(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        if not self.router.tasks:
            return self.base_learner.predict(x, task_id)
        return self.pool.predict(x, *self._weights(x, task_id))

    def logprobs(self, prompts: list, responses: list[str], task_id: int | None) -> torch.Tensor:
        if not self.router.tasks:
            return self.base_learner.logprobs(prompts, responses, task_id)
        current = self.task
        try:
            return self.pool.logprobs(prompts, responses, *self._weights(prompts, task_id))
        finally:
            if current is not None:
                self.pool.begin(current)  # training goes on with the current task's expert

    def generate(self, prompts: list, max_new_tokens: int, sample: bool = False) -> list[str] | None:
        if not self.router.tasks:
            return self.base_learner.generate(prompts, max_new_tokens, sample)
        weights, tasks = self._weights(prompts, None)
        replies: list[str] = [""] * len(prompts)
        top = weights.argmax(dim=1)
        for column, task in enumerate(tasks):
            rows = (top == column).nonzero().flatten().tolist()
            if rows:
                self.pool.begin(task)
                for row, reply in zip(rows, self.base_learner.generate([prompts[r] for r in rows], max_new_tokens,
                                                                       sample)):
                    replies[row] = reply
        if self.task is not None:
            self.pool.begin(self.task)
        return replies

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"experts": self.pool.state_dict(), "router": capture(self.router), "attributes": self.task_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.pool.load_state_dict(state["experts"])
        restore(self.router, state["router"])
        self.restore_task_state(state["attributes"])
        if self.task is not None:
            self.base_learner = self.pool.begin(self.task)
