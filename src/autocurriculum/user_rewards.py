"""A user's own reward functions: imported from where the policy says, checked once, called as Tunix calls them.

Why: people who run Tunix or TRL already have reward functions with the signature
`fn(prompts, completions, **kwargs) -> list[float]` (an LLM judge, a code runner, a rubric). A policy
names them (`[[phases.rewards]] name = "my_judge" function = "pkg.module:fn"`, or
`"rewards.py:fn"` from the policy's folder) and they join the built-ins unchanged. This module
imports each one, checks its signature and a call on two sample completions (both `validate` and
the daemon do, so a broken reward is one line naming its TOML path before any training), and wraps
every later call: an exception or a value that is not a finite number becomes NaN for that batch —
Tunix sums rewards with nansum, and the controller raises `nonfinite_rewards` and never switches on
such a step — instead of a crash.

Besides Tunix's keywords (`mode` and the dataset's columns: `answer`, `domain`, `id`) a user's
function receives the parsed output contract, one value per completion, so it need not parse
again: `extracted_answer` (str or None), `reasoning` (str or None), `strict` (bool), `refused`
(bool), `length_tokens` (int), `correct` (bool, or None for an ungraded item); and its own `params`.
Pure: imports no JAX, Tunix or Prometheus (a user's module may, of course).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from autocurriculum.spec import Policy, PolicyError, RewardSpec

UserFunction = Callable[..., Any]

SAMPLE_PROMPTS = ["What is 2 + 3?", "What is 2 + 3?"]
SAMPLE_COMPLETIONS = ["<reasoning>2 + 3 = 5</reasoning><answer>5</answer>", "I think it is 6."]
SAMPLE_CONTRACT: Mapping[str, list[object]] = {
    "extracted_answer": ["5", None], "reasoning": ["2 + 3 = 5", None], "strict": [True, False],
    "refused": [False, False], "length_tokens": [14, 5], "correct": [True, False],
}


def resolve_user_rewards(policy: Policy, base_dir: Path) -> dict[str, UserFunction]:
    """Every user reward function of the policy, imported and checked: `RewardSpec.function` -> callable.

    Raises PolicyError naming `phases[i].rewards[j].function` (or `.params`) and the value.
    """
    resolved: dict[str, UserFunction] = {}
    for i, phase in enumerate(policy.phases):
        for j, reward in enumerate(phase.rewards):
            if not reward.is_user_function:
                continue
            where = f"phases[{i}].rewards[{j}]"
            if reward.function not in resolved:
                resolved[reward.function] = _import(policy.file, where, reward.function, base_dir)
            _check_call(policy.file, where, reward, resolved[reward.function])
    return resolved


def _import(file: str, where: str, function: str, base_dir: Path) -> UserFunction:
    location, _, attribute = function.rpartition(":")
    path_field = f"{where}.function"
    try:
        if location.endswith(".py") or "/" in location:
            path = Path(location).expanduser()
            path = path if path.is_absolute() else base_dir / path
            if not path.is_file():
                raise PolicyError(file, path_field, function, f"no file {str(path)!r}")
            name = "autocurriculum_user_reward_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise PolicyError(file, path_field, function, f"{str(path)!r} cannot be imported as a Python file")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(location)
    except PolicyError:
        raise
    except Exception as error:  # a user's module may fail to import in any way
        raise PolicyError(file, path_field, function,
                          f"cannot import {location!r}: {type(error).__name__}: {_one_line(error)}") from None
    target = getattr(module, attribute, None)
    if target is None:
        raise PolicyError(file, path_field, function, f"{location!r} has no {attribute!r}")
    if not callable(target):
        raise PolicyError(file, path_field, function, f"{attribute!r} is not a function")
    _check_signature(file, path_field, function, target)
    return target  # type: ignore[no-any-return]  # a user's callable


def _check_signature(file: str, path_field: str, function: str, target: UserFunction) -> None:
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return  # a builtin or C function without a signature: the sample call decides
    names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if not any(p.kind is p.VAR_KEYWORD for p in parameters) or not {"prompts", "completions"} <= names:
        raise PolicyError(file, path_field, function,
                          "must have Tunix's reward signature fn(prompts, completions, **kwargs)")


def _check_call(file: str, where: str, reward: RewardSpec, target: UserFunction) -> None:
    """A call on two sample completions returns two finite numbers."""
    keywords = {"mode": "train", "answer": ["5", "5"], "domain": ["math", "math"], "id": ["sample:0", "sample:1"],
                **SAMPLE_CONTRACT, **reward.params}
    _, problem = call_user_reward(target, SAMPLE_PROMPTS, SAMPLE_COMPLETIONS, keywords)
    if problem:
        raise PolicyError(file, f"{where}.function", reward.function, f"a call on two sample completions {problem}")


def call_user_reward(target: UserFunction, prompts: Sequence[str], completions: Sequence[str],
                     keywords: Mapping[str, object]) -> tuple[list[float], str]:
    """The function's values for a batch, and "" — or NaN for every completion and what went wrong."""
    n = len(completions)
    try:
        result = target(prompts=list(prompts), completions=list(completions), **keywords)
    except Exception as error:  # a user's reward may fail in any way: the batch's values are NaN, training goes on
        return [math.nan] * n, f"raised {type(error).__name__}: {_one_line(error)}"
    try:
        values = list(result)
    except TypeError:
        return [math.nan] * n, f"returned {type(result).__name__}, not a list of numbers"
    if len(values) != n:
        return [math.nan] * n, f"returned {len(values)} values for {n} completions"
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return [math.nan] * n, f"returned {value!r} ({type(value).__name__}): a reward must be a number"
    floats = [float(v) for v in values]
    if not all(map(math.isfinite, floats)):
        return [v if math.isfinite(v) else math.nan for v in floats], "returned a value that is not finite"
    return floats, ""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]
