"""The five named reward functions, and the dispatcher that also turns completions into records.

Why a dispatcher: Tunix calls each reward function separately, one after another, on the same
batch (extra dataset columns as keyword arguments) and sums them with nansum. The dispatcher parses
each completion once per batch, computes the whole active reward set at the first call, and hands
every later function of the same batch its precomputed column. "The same batch" is decided by what
the batch holds (its completions, gold answers and domains, compared by value), never by the list
object: Tunix 0.1.7 happens to pass one list to every function, but a copy per function (a wrapper,
another Tunix, a user's code) must not score twice — or count twice.

Records (a columnar `RecordBatch`, one per completion) are emitted only by `observe_batch`, Tunix's
once-per-batch metric hook (`GRPOLearner(metric_fns=[...])`), which the learner calls after the
rewards with their sum and its own GRPO advantages: one emission per batch by construction, and the
learnability figures read from the advantages Tunix trains on instead of a recomputation. The active
set reaches the functions through the objects the learner holds (`reward_fns(reward_set)` returns
callables bound to that set), never through a process global, so swapping
`learner.reward_manager.reward_fns` swaps the set.

Defaults (`REWARD_PARAMETERS`, kept in spec.py so that reading a policy needs no reward code; from
the tiny-model curriculum in docs/design.md, "Facts the code relies on") and why:
- punish_refusal: penalty -1.0 — refusing or dodging costs as much as failing the format, so it
  is never the safe option; 0 otherwise.
- strict_format_gate: fail -1.0, pass 0.5 — a gate, not a prize: failing costs twice what
  passing earns, and the +0.5 / -1.0 split gives GRPO graded signal in every group where only
  some completions comply (docs/design.md, "The learning signal": a set without in-group variance
  teaches nothing).
- light_length_penalty: per_token -0.005 past budget 20 tokens, floor -0.5 — a nudge away from
  rambling, floored at the gate's pass value so length can never outweigh the format signal.
- check_answer_strict: correct 1.0, wrong 0.0 — binary exact match after normalisation, no
  partial or ratio credit, and nothing when the contract fails (the gate already says why).
- penalize_length: per_token_correct -0.005, per_token_wrong -0.02 past budget 20 tokens, floor
  -1.0 — four times stronger on wrong answers ("be brief when wrong"); a completion outside the
  contract is never "correct" here. The floor equals the correct reward, so with the gate a right
  answer never scores below a wrong one, whatever their lengths.
A length penalty is `max(floor, per_token * max(0, length_tokens - budget))`. Every value that
leaves a reward function is a finite Python float (a non-finite one, only possible from absurd
parameters, becomes 0.0).

Rambling, recorded per completion: text outside the tags, or a length over `rambling_factor`
(default 3) times the active set's length budget (the first `budget` parameter in the set, else
`length_budget`, default 20 tokens): 60 tokens with the defaults.

Lengths: `count_tokens(texts)` counts a whole batch in one call; the real trainer answers it from
the token ids its rollout generated (see `tunix_adapter.model.CompletionLengths`), so the reward pass
does not tokenize again.

Speed: the batch path parses each distinct completion into a `contract.parse_fields` tuple and
grades it with one `contract.judge` call, transposes the tuples in C (`zip(*parsed)`) into
`ParsedColumns`, which the five rewards and the records read, and never builds a per-completion
object; `benchmarks/rewards.py` compares the whole pass with Tunix's own GSM8K reward functions
on the same completions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import is_
from typing import Any, Final, NamedTuple

from autocurriculum.contract import parse_fields
from autocurriculum.grading import Grader
from autocurriculum.observation import RecordBatch, RewardColumn
from autocurriculum.reward_columns import (
    CORRECTNESS_REWARD,
    DEFAULT_DOMAIN,
    NOT_APPLICABLE,
    Column,
    Correct,
    ParsedColumns,
    budget_for,
    reward_column,
    reward_params,
)
from autocurriculum.spec import REWARD_PARAMETERS, RewardSpec
from autocurriculum.user_rewards import UserFunction, call_user_reward

# the column functions (reward_columns.py) and the registry are spelt `rewards.X` by callers: re-exported
__all__ = [
    "CORRECTNESS_REWARD", "DEFAULT_DOMAIN", "DEFAULT_LENGTH_BUDGET", "DEFAULT_RAMBLING_FACTOR", "NOT_APPLICABLE",
    "REWARD_PARAMETERS", "ActiveRewardSet", "Column", "Correct", "CountTokens", "ParsedColumns", "RewardDispatcher",
    "RewardFunction", "budget_for", "check_answer_strict", "light_length_penalty", "penalize_length", "punish_refusal",
    "reward_column", "reward_params", "strict_format_gate",
]

DEFAULT_LENGTH_BUDGET: Final = 20.0  # tokens; the rambling budget's base when the set has no budget
DEFAULT_RAMBLING_FACTOR: Final = 3.0  # rambling: longer than this many times the length budget

class ActiveRewardSet:
    """A reward set with its parameters resolved: what the returned functions are bound to."""

    __slots__ = ("specs", "names", "params", "budget", "budget_params", "user_functions")

    def __init__(self, reward_set: Sequence[RewardSpec], length_budget: float,
                 user_functions: Mapping[str, UserFunction] | None = None) -> None:
        self.specs = tuple(reward_set)
        self.names = tuple(spec.name for spec in self.specs)
        self.params = tuple({} if spec.is_user_function else reward_params(spec) for spec in self.specs)
        self.budget_params: Mapping[str, float] = next((p for p in self.params if "budget" in p),
                                                       {"budget": length_budget})
        self.budget = self.budget_params["budget"]
        given = user_functions or {}
        missing = [spec.function for spec in self.specs if spec.is_user_function and spec.function not in given]
        if missing:
            raise ValueError(f"user reward functions not resolved (user_rewards.resolve_user_rewards): {missing}")
        self.user_functions = {spec.name: given[spec.function] for spec in self.specs if spec.is_user_function}


class RewardFunction:
    """One named reward with the Tunix signature `fn(prompts, completions, **kwargs) -> list[float]`.

    `__name__` is the reward's name (Tunix logs `rewards/{fn.__name__}`). Calling it scores the
    batch through the dispatcher, which parses the batch only at the first of the set's calls.
    """

    __slots__ = ("__name__", "__qualname__", "dispatcher", "active")

    def __init__(self, name: str, dispatcher: RewardDispatcher, active: ActiveRewardSet) -> None:
        self.__name__ = name
        self.__qualname__ = name
        self.dispatcher = dispatcher
        self.active = active

    def __call__(self, prompts: Sequence[str], completions: Sequence[str], **kwargs: object) -> list[float]:
        return self.dispatcher.column(self.active, self.__name__, completions, kwargs, prompts)

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__!r})"


CountTokens = Callable[[Sequence[str]], list[int]]
"""Token lengths of a batch of texts, in one call."""


class RewardDispatcher:
    """Scores batches with the active reward set and records what the model emitted.

    `on_batch(records, seconds)` receives each batch's records exactly once, from `observe_batch`
    (with the seconds spent scoring it); `on_texts(prompts, completions, records)` the same batch's
    texts, for the few completions a person reads (completion_samples.py); `count_tokens` the
    batch's token lengths (else the contract's approximation).
    """

    def __init__(
        self,
        count_tokens: CountTokens | None = None,
        on_batch: Callable[[RecordBatch, float], None] | None = None,
        length_budget: float = DEFAULT_LENGTH_BUDGET,
        rambling_factor: float = DEFAULT_RAMBLING_FACTOR,
        on_texts: Callable[[Sequence[str], Sequence[str], RecordBatch], None] | None = None,
        user_functions: Mapping[str, UserFunction] | None = None,
        on_reward_error: Callable[[str, str], None] | None = None,
    ) -> None:
        self.count_tokens = count_tokens
        self.on_batch = on_batch
        self.on_texts = on_texts
        self.user_functions = dict(user_functions or {})  # RewardSpec.function -> the user's callable
        self.on_reward_error = on_reward_error  # (reward name, what went wrong): the batch's values are NaN
        self.length_budget = length_budget
        self.rambling_factor = rambling_factor
        self.grader = Grader()  # runs code items' tests in the sandbox, with a verdict cache
        self._lock = threading.Lock()
        self._scored: _ScoredBatch | None = None  # the batch last scored, for the set's later functions and the hook

    def reward_fns(self, reward_set: Sequence[RewardSpec]) -> list[RewardFunction]:
        """Tunix-signature functions for this reward set, named like the rewards, in the set's order."""
        active = ActiveRewardSet(reward_set, self.length_budget, self.user_functions)
        return [RewardFunction(name, self, active) for name in active.names]

    def observe(
        self,
        completions: Sequence[str],
        answers: Sequence[str] | None,
        domains: Sequence[str] | None,
        reward_set: Sequence[RewardSpec] | ActiveRewardSet = (),
        gradings: Sequence[str] | None = None,
    ) -> RecordBatch:
        """Parse and score completions into records, emitting nothing (held-out evaluation)."""
        active = reward_set if isinstance(reward_set, ActiveRewardSet) else ActiveRewardSet(
            reward_set, self.length_budget, self.user_functions)
        records, _ = self._score(active, _texts(completions), answers, domains, gradings=gradings)
        return records

    def column(self, active: ActiveRewardSet, name: str, completions: Sequence[str], kwargs: Mapping[str, object],
               prompts: Sequence[str] = ()) -> list[float]:
        """The values of reward `name` for this batch; the first call of a batch scores the whole set."""
        with self._lock:
            return list(self._scored_batch(active, completions, kwargs, prompts).columns[name])

    def observe_batch(self, prompts: Sequence[str], completions: Sequence[str], rewards: object = None,
                      advantages: object = None, **kwargs: object) -> dict[str, object]:
        """Tunix's once-per-batch metric hook (`metric_fns`): emit the batch's records, once.

        Called by the learner after the reward functions, with their summed `rewards` and the GRPO
        `advantages` it will train on; the records carry those advantages. Returns no metrics of its
        own to Tunix's logger (an empty mapping, which Tunix accepts).
        """
        with self._lock:
            scored = self._scored_batch(self._scored.active if self._scored else ActiveRewardSet((), self.length_budget),
                                        completions, kwargs, prompts)
            self._scored = None  # the next batch, even one equal to this, is scored and emitted anew
        records = scored.records
        if advantages is not None:
            values: Any = advantages
            as_list = values.tolist() if hasattr(values, "tolist") else list(values)
            if len(as_list) == len(records):
                records = records.with_advantages([float(v) for v in as_list])
        if self.on_batch is not None:
            self.on_batch(records, scored.seconds)
        if self.on_texts is not None:
            self.on_texts(prompts, completions, records)
        return {}

    def _scored_batch(self, active: ActiveRewardSet, completions: Sequence[str], kwargs: Mapping[str, object],
                      prompts: Sequence[str] = ()) -> _ScoredBatch:
        """This batch scored with `active`: the last one when it holds the same texts, golds and domains.

        The very objects of the last call (kept alive here, so never a new batch at a reused address)
        are the same batch without a look inside; anything else is compared by value.
        """
        raw = (completions, kwargs.get("answer"), kwargs.get("domain"), kwargs.get("grading"))
        last = self._scored
        if last is not None and last.active is active and all(map(is_, raw, last.raw)):
            return last
        texts = _texts(completions)
        n = len(texts)
        answers = _kwarg_column(kwargs, "answer", n)
        domains = _kwarg_column(kwargs, "domain", n)
        gradings = _kwarg_column(kwargs, "grading", n)
        if last is not None and last.active is active and last.texts == texts and last.answers == answers \
                and last.domains == domains and last.gradings == gradings:
            return last
        started = time.perf_counter()
        records, columns = self._score(active, texts, answers, domains, prompts, kwargs, gradings)
        self._scored = _ScoredBatch(active, raw, texts, answers, domains, gradings, records, columns,
                                    time.perf_counter() - started)
        return self._scored

    def _score(
        self, active: ActiveRewardSet, texts: Sequence[str], answers: Sequence[str] | None,
        domains: Sequence[str] | None, prompts: Sequence[str] = (), tunix_keywords: Mapping[str, object] | None = None,
        gradings: Sequence[str] | None = None,
    ) -> tuple[RecordBatch, dict[str, Column]]:
        n = len(texts)
        golds = answers if answers is not None else repeat("", n)
        kinds = domains if domains is not None else [DEFAULT_DOMAIN] * n
        # GRPO groups repeat completions (a confident model answers one text four times): each distinct
        # (text, gold, domain, grading) is parsed, graded and judged for hallucination once, then spread back
        keys = list(zip(texts, golds, kinds, gradings if gradings is not None else repeat("", n)))
        unique = list(dict.fromkeys(keys))
        if self.count_tokens is None:
            parsed = [parse_fields(key[0]) for key in unique]
        else:
            lengths = self.count_tokens([key[0] for key in unique])
            parsed = [parse_fields(key[0], length=length) for key, length in zip(unique, lengths)]
        correct, hallucinated = self.grader.grade(parsed, unique)
        if len(unique) < n:
            slot = {key: i for i, key in enumerate(unique)}
            index = [slot[key] for key in keys]
            parsed = [parsed[i] for i in index]
            correct = [correct[i] for i in index]
            hallucinated = [hallucinated[i] for i in index]
        fields = ParsedColumns.of(parsed)
        columns = {spec.name: self._user_column(spec, active.user_functions[spec.name], texts, prompts,
                                                tunix_keywords or {}, fields, correct)
                   if spec.is_user_function else reward_column(spec.name, params, fields, correct, kinds)
                   for spec, params in zip(active.specs, active.params)}
        limits = {d: self.rambling_factor * budget_for(active.budget_params, d) for d in set(kinds)}
        if len(set(limits.values())) <= 1:  # one threshold for the batch
            limit = next(iter(limits.values()), self.rambling_factor * active.budget)
            rambling = [chars > 0 or length > limit for chars, length in zip(fields.outside_chars, fields.length_tokens)]
        else:
            rambling = [chars > 0 or length > limits[d]
                        for chars, length, d in zip(fields.outside_chars, fields.length_tokens, kinds)]
        batch = RecordBatch(list(kinds), fields.strict_ok, list(map(bool, fields.answer)), fields.refused,
                            fields.length_tokens, rambling, correct, hallucinated, fields.empty, list(map(hash, texts)),
                            _record_columns(columns, correct))
        return batch, columns


    def _user_column(self, spec: RewardSpec, function: UserFunction, texts: Sequence[str], prompts: Sequence[str],
                     tunix_keywords: Mapping[str, object], fields: ParsedColumns, correct: Correct) -> Column:
        """A user's reward for the batch, given Tunix's keywords, the parsed contract and its params."""
        keywords: dict[str, object] = {
            **tunix_keywords, "extracted_answer": list(fields.answer), "reasoning": list(fields.reasoning),
            "strict": list(fields.strict_ok), "refused": list(fields.refused),
            "length_tokens": list(fields.length_tokens), "correct": list(correct), **spec.params,
        }
        values, problem = call_user_reward(function, list(prompts) or [""] * len(texts), texts, keywords)
        if problem and self.on_reward_error is not None:
            self.on_reward_error(spec.name, problem)
        return values


class _ScoredBatch(NamedTuple):
    """One batch as scored: what identifies it (by value) and what scoring it gave."""

    active: ActiveRewardSet
    raw: tuple[object, object, object, object]  # the completions, answer, domain, grading objects as passed
    texts: list[str]
    answers: list[str] | None
    domains: list[str] | None
    gradings: list[str] | None
    records: RecordBatch
    columns: dict[str, Column]
    seconds: float


def _texts(completions: Sequence[str]) -> list[str]:
    return list(completions) if all(map(isinstance, completions, repeat(str))) else [str(t) for t in completions]


def _record_columns(columns: Mapping[str, Column], correct: Correct) -> dict[str, RewardColumn]:
    """The reward columns as the records hold them: the correctness reward's NaN on ungraded rows as None.

    None is the records' "no value here" (observation.RewardColumn), left out of the summed reward and
    of the reward's mean, and not counted among the broken (non-finite) values the controller alerts on.
    """
    if CORRECTNESS_REWARD not in columns or None not in correct:
        return dict(columns)
    return {name: ([None if c is None else v for v, c in zip(column, correct)] if name == CORRECTNESS_REWARD
                   else column) for name, column in columns.items()}


def _kwarg_column(kwargs: Mapping[str, object], key: str, n: int) -> list[str] | None:
    """A dataset column Tunix passed as a keyword (numpy array or list), as strings; None if absent."""
    values: Any = kwargs.get(key)  # a numpy array or a list: whatever Tunix passed
    if values is None:
        return None
    as_list = values.tolist() if hasattr(values, "tolist") else list(values)
    if not isinstance(as_list, list):  # a 0-d array: one value for the whole batch
        as_list = [as_list] * n
    if len(as_list) != n:
        raise ValueError(f"reward keyword {key!r} has {len(as_list)} values for {n} completions")
    if getattr(getattr(values, "dtype", None), "kind", "") == "U":  # numpy strings: already str
        return as_list
    return [v if isinstance(v, str) else ("" if v is None else str(v)) for v in as_list]


def _plain_tunix_reward(name: str) -> RewardFunction:
    """The built-in `name` with its default parameters as a plain Tunix reward function.

    For a user's own Tunix script: `reward_fns=[punish_refusal, strict_format_gate, light_length_penalty]`
    works as is. Each is the dispatcher's own function for a one-reward set, with a dispatcher of its own
    (named like the reward, Tunix's signature, the same values as inside the daemon).
    """
    return RewardDispatcher().reward_fns((RewardSpec(name),))[0]


punish_refusal = _plain_tunix_reward("punish_refusal")
strict_format_gate = _plain_tunix_reward("strict_format_gate")
light_length_penalty = _plain_tunix_reward("light_length_penalty")
check_answer_strict = _plain_tunix_reward("check_answer_strict")
penalize_length = _plain_tunix_reward("penalize_length")
