"""The EleutherAI ``lm-eval`` harness over any sequoia PA method (``pip install sequoia[lm_eval]``).

The harness asks a model three things; :func:`harness_model` answers them through the
method's own ``logprobs`` and ``generate``, so routers, ensembles and merged models are
evaluated exactly as the method answers the setting, and the harness never sees the
weights:

* ``loglikelihood(context, continuation)``: the context becomes the user turn of a chat
  and the continuation (its leading whitespace, the harness's target delimiter, dropped)
  the assistant reply. This is the harness's ``apply_chat_template`` reading, the one
  instruct models are evaluated in, with one difference: the reply's score includes its
  end of turn, as every sequoia score does. The "is greedy" flag is not computed and is
  always ``False`` (only the ``exact match`` of a few loglikelihood tasks reads it).
* ``generate_until(context, {"until": [...], "max_gen_toks": n})``: the method's greedy
  reply to the context as a user turn, cut at the first stop string.
* ``loglikelihood_rolling`` (perplexity tasks such as wikitext) needs raw-text scoring,
  which the method interface does not offer: such tasks are refused with one line. The
  ``text_nll`` capability probe is sequoia's own general-text measure.

Example (with the harness installed):

    from sequoia.lm.lm_eval_adapter import evaluate_tasks
    scores = evaluate_tasks(method, ["mmlu", "hellaswag"], limit=100)
"""

from __future__ import annotations

from typing import Any

from sequoia.errors import SequoiaError
from sequoia.settings.pa.protocol import generate_replies

DEFAULT_MAX_GEN_TOKS = 256


def _require_harness():
    try:
        import lm_eval  # noqa: F401
        from lm_eval.api.model import LM
    except ImportError as error:
        raise SequoiaError("--eval.lm_eval_tasks needs the lm-eval harness: pip install sequoia[lm_eval]") from error
    return LM


def as_chat(context: str) -> list[dict[str, str]]:
    """The harness's context as the user turn of a chat."""
    return [{"role": "user", "content": context}]


def cut_at_stops(text: str, stops: list[str]) -> str:
    """``text`` up to the first of ``stops`` (the harness's ``until``).

    Example:
        >>> cut_at_stops("Paris.\\n\\nQuestion: next", ["\\n\\n", "Question:"])
        'Paris.'
    """
    cut = len(text)
    for stop in stops:
        found = text.find(stop)
        if stop and found != -1:
            cut = min(cut, found)
    return text[:cut]


def harness_model(method: Any, task_id: int | None = None, max_new_tokens: int = DEFAULT_MAX_GEN_TOKS):
    """An ``lm_eval.api.model.LM`` answering through ``method`` (task id ``task_id`` where it applies)."""
    LM = _require_harness()

    class SequoiaLM(LM):
        def loglikelihood(self, requests) -> list[tuple[float, bool]]:
            contexts = [as_chat(request.args[0]) for request in requests]
            replies = [request.args[1].lstrip() for request in requests]
            scores = method.logprobs(contexts, replies, task_id)
            return [(float(score), False) for score in scores]

        def loglikelihood_rolling(self, requests) -> list[float]:
            raise SequoiaError("lm-eval perplexity tasks (loglikelihood_rolling) need raw-text scoring, which "
                               "sequoia methods do not offer; use multiple-choice or generation tasks, or the "
                               "text_nll capability probe")

        def generate_until(self, requests) -> list[str]:
            replies = []
            for request in requests:
                context, options = request.args
                until = options.get("until") or []
                limit = int(options.get("max_gen_toks", max_new_tokens))
                reply = generate_replies(method, [as_chat(context)], limit)
                if reply is None:
                    raise SequoiaError(f"method {method.name!r} cannot generate, which lm-eval generation tasks need")
                replies.append(cut_at_stops(reply[0], [until] if isinstance(until, str) else list(until)))
            return replies

    return SequoiaLM()


def task_manager(tasks: list[str], include_path: str = ""):
    """The harness's task index, checked to hold every one of ``tasks`` (a one-line error names the others)."""
    _require_harness()
    manager = _task_manager(tasks, include_path)
    unknown = [task for task in tasks if task not in manager.all_tasks]
    if unknown:
        where = f" (nor in {include_path})" if include_path else ""
        raise SequoiaError(f"unknown lm-eval task(s) {', '.join(map(repr, unknown))}{where}; `lm-eval ls tasks` "
                           "lists the harness's")
    return manager


def evaluate_tasks(method: Any, tasks: list[str], *, include_path: str = "", limit: int = 0,
                   task_id: int | None = None, manager: Any = None) -> dict[str, float]:
    """Run lm-eval ``tasks`` on ``method``; the numeric results as ``{"<task>/<metric>": value}``.

    Args:
        include_path: a directory of extra task YAML files (local tasks, offline).
        limit: documents per task (0: all).
        manager: the task index of :func:`task_manager`, where the caller checked the tasks already.
    """
    from lm_eval import simple_evaluate

    manager = manager or task_manager(tasks, include_path)
    try:
        output = simple_evaluate(model=harness_model(method, task_id), tasks=list(tasks), task_manager=manager,
                                 limit=limit or None, log_samples=False, verbosity="ERROR")
    except SequoiaError:
        raise
    except Exception as error:  # noqa: BLE001 - a task's data could not be read (offline hub, bad file)
        raise SequoiaError(f"lm-eval could not run {', '.join(tasks)} ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:160] if str(error) else ''})") from error
    return flatten_results(output["results"])


def _task_manager(tasks: list[str], include_path: str):
    """The harness's task index; only the local one where it holds every task (indexing the harness's
    thousands of task files takes tens of seconds)."""
    from lm_eval.tasks import TaskManager

    if include_path:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(task in local.all_tasks for task in tasks):
            return local
    return TaskManager(include_path=include_path or None)


def flatten_results(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The harness's per-task results as flat numbers: ``{"mmlu/acc,none": 0.3}`` -> ``{"mmlu/acc": 0.3}``.

    Example:
        >>> flatten_results({"t": {"alias": "t", "acc,none": 0.5, "acc_stderr,none": 0.1}})
        {'t/acc': 0.5, 't/acc_stderr': 0.1}
    """
    flat = {}
    for task, metrics in results.items():
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metric, _, filtered = key.partition(",")
                suffix = "" if filtered in ("", "none") else f"[{filtered}]"
                flat[f"{task}/{metric}{suffix}"] = float(value)
    return flat
