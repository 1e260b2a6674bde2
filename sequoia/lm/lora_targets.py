"""Which modules of a model LoRA adapts: ``--learner.target_modules`` read and checked.

peft matches each name in a list against the end of a module's dotted name
(``q_proj`` matches ``model.layers.0.self_attn.q_proj``). It silently skips a name
that matches nothing as long as another name matches, fails with its own message
when none does, and fails inside its layer code for a module it cannot wrap (a
whole decoder layer). :func:`target_modules` checks every name up front, so a
typo is one line that lists the names the model really has.

Example:
    >>> from sequoia.lm.models import tiny_random_model
    >>> model = tiny_random_model()
    >>> target_modules("q_proj, v_proj", model, "tiny-random")
    ['q_proj', 'v_proj']
    >>> target_modules("q_prj", model, "tiny-random")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: --learner.target_modules: tiny-random has no module named 'q_prj'; its linear layers are: down_proj, gate_proj, ...
"""

from __future__ import annotations

import torch

from sequoia.errors import SequoiaError

# Module types peft's LoRA wraps (transformers' GPT-2 style Conv1D is added at call time).
ADAPTABLE: tuple[type, ...] = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)


def target_modules(spec: str, model: torch.nn.Module, model_name: str) -> list[str] | str | None:
    """peft's ``target_modules`` for the option value ``spec``: ``None`` (auto), ``"all-linear"`` or names."""
    if spec == "auto":
        return None  # peft picks the usual modules for the architecture (q_proj, v_proj for Llama)
    if spec == "all-linear":
        return "all-linear"
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise SequoiaError(f"--learner.target_modules {spec!r} names no module; give module names "
                           "(e.g. q_proj,v_proj), all-linear or auto")
    for name in names:
        _check_name(name, model, model_name)
    return names


def _check_name(name: str, model: torch.nn.Module, model_name: str) -> None:
    from transformers.pytorch_utils import Conv1D

    matched = [module for full, module in model.named_modules() if full == name or full.endswith("." + name)]
    if not matched:
        raise SequoiaError(f"--learner.target_modules: {model_name} has no module named {name!r}; "
                           f"its linear layers are: {', '.join(linear_layer_names(model))}")
    odd = next((module for module in matched if not isinstance(module, (*ADAPTABLE, Conv1D))), None)
    if odd is not None:
        raise SequoiaError(f"--learner.target_modules: {name!r} in {model_name} is a {type(odd).__name__}, which "
                           f"LoRA cannot adapt; name linear layers: {', '.join(linear_layer_names(model))}")


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """The distinct last names of the model's linear layers, sorted: what target_modules may name."""
    return sorted({full.rsplit(".", 1)[-1] for full, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear)})
