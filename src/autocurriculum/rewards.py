"""The five named reward functions, and the dispatcher that also turns completions into records.

Why a dispatcher: Tunix calls each reward function separately, one after another, on the same
batch (the same `completions` list object, extra dataset columns as keyword arguments) and sums
them with nansum. The dispatcher parses each completion once per batch, computes the whole active
reward set at the first call, emits the batch's records (a columnar `RecordBatch`, one record per
completion) to its sink, and hands every later function its precomputed column. The active set
reaches the functions through the objects the learner holds (`reward_fns(reward_set)` returns
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

Speed: the batch path parses each distinct completion into a `contract.parse_fields` tuple and
grades it with one `contract.judge` call, transposes the tuples in C (`zip(*parsed)`) into
`ParsedColumns`, which the five rewards and the records read, and never builds a per-completion
object; `benchmarks/rewards.py` compares the whole pass with Tunix's own GSM8K reward functions
on the same completions.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from typing import Any, Final, NamedTuple

from autocurriculum.contract import (
    ParsedFields,
    judge,
    parse_fields,
)
from autocurriculum.observation import RecordBatch
from autocurriculum.spec import REWARD_PARAMETERS, RewardSpec

DEFAULT_LENGTH_BUDGET: Final = 20.0  # tokens; the rambling budget's base when the set has no budget
DEFAULT_RAMBLING_FACTOR: Final = 3.0  # rambling: longer than this many times the length budget
DEFAULT_DOMAIN: Final = "math"  # when the batch carries no `domain` column (plain GSM8K)

Column = list[float]
Correct = Sequence["bool | None"]


class ParsedColumns(NamedTuple):
    """A batch's `contract.parse_fields` tuples transposed: one list per field, what the rewards read."""

    strict_ok: Sequence[bool]
    answer: Sequence[str | None]
    reasoning: Sequence[str | None]
    outside_chars: Sequence[int]
    refused: Sequence[bool]
    length_tokens: Sequence[int]
    empty: Sequence[bool]

    @classmethod
    def of(cls, parsed: Sequence[ParsedFields]) -> ParsedColumns:
        if not parsed:
            return cls([], [], [], [], [], [], [])
        return cls(*map(list, zip(*parsed)))


ColumnFn = Callable[[Mapping[str, float], ParsedColumns, Correct], Column]


def _refusal(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    penalty = p["penalty"]
    return [penalty if refused else 0.0 for refused in parsed.refused]


def _gate(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    passed, failed = p["pass"], p["fail"]
    return [passed if ok else failed for ok in parsed.strict_ok]


def _light_length(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    per, budget, floor = p["per_token"], p["budget"], p["floor"]
    within = max(floor, 0.0)
    return [within if length <= budget else (v if (v := per * (length - budget)) > floor else floor) + 0.0
            for length in parsed.length_tokens]


def _answer(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    right, wrong = p["correct"], p["wrong"]
    return [right if (ok and c) else wrong for ok, c in zip(parsed.strict_ok, correct)]


def _length(p: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    right, wrong, budget, floor = p["per_token_correct"], p["per_token_wrong"], p["budget"], p["floor"]
    within = max(floor, 0.0)
    return [within if length <= budget else (v if (v := (right if (ok and c) else wrong) * (length - budget)) > floor
                                            else floor) + 0.0
            for length, ok, c in zip(parsed.length_tokens, parsed.strict_ok, correct)]


_COLUMNS: Final[Mapping[str, ColumnFn]] = {
    "punish_refusal": _refusal,
    "strict_format_gate": _gate,
    "light_length_penalty": _light_length,
    "check_answer_strict": _answer,
    "penalize_length": _length,
}


def reward_params(spec: RewardSpec) -> dict[str, float]:
    """The spec's parameters over the defaults; an unknown reward or a non-finite value is an error."""
    if spec.name not in REWARD_PARAMETERS:
        raise ValueError(f"unknown reward function {spec.name!r}; known: {', '.join(sorted(REWARD_PARAMETERS))}")
    params = {**REWARD_PARAMETERS[spec.name], **{k: float(v) for k, v in spec.params.items()}}
    for key, value in params.items():
        if not math.isfinite(value):
            raise ValueError(f"reward {spec.name!r}: parameter {key!r} must be a finite number, got {value!r}")
    return params


def reward_column(name: str, params: Mapping[str, float], parsed: ParsedColumns, correct: Correct) -> Column:
    """One reward's values for a batch of parsed completions (pure); always finite floats."""
    column = _COLUMNS[name](params, parsed, correct)
    if not math.isfinite(sum(column)):  # only absurd parameters overflow; a sum of finite values may too
        column = [v if math.isfinite(v) else 0.0 for v in column]
    return column


class ActiveRewardSet:
    """A reward set with its parameters resolved: what the returned functions are bound to."""

    __slots__ = ("specs", "names", "params", "budget")

    def __init__(self, reward_set: Sequence[RewardSpec], length_budget: float) -> None:
        self.specs = tuple(reward_set)
        self.names = tuple(spec.name for spec in self.specs)
        self.params = tuple(reward_params(spec) for spec in self.specs)
        self.budget = next((p["budget"] for p in self.params if "budget" in p), length_budget)


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


class RewardDispatcher:
    """Scores batches with the active reward set and records what the model emitted.

    `on_batch(records, seconds)` receives each batch's records exactly once (with the seconds spent
    scoring it); `on_texts(prompts, completions, records)` the same batch's texts, for the few
    completions a person reads (completion_samples.py); `count_tokens` is the tokenizer's counter
    (else the contract's approximation).
    """

    def __init__(
        self,
        count_tokens: Callable[[str], int] | None = None,
        on_batch: Callable[[RecordBatch, float], None] | None = None,
        length_budget: float = DEFAULT_LENGTH_BUDGET,
        rambling_factor: float = DEFAULT_RAMBLING_FACTOR,
        on_texts: Callable[[Sequence[str], Sequence[str], RecordBatch], None] | None = None,
    ) -> None:
        self.count_tokens = count_tokens
        self.on_batch = on_batch
        self.on_texts = on_texts
        self.length_budget = length_budget
        self.rambling_factor = rambling_factor
        self._lock = threading.Lock()
        self._batch: object = None  # the last scored completions object, kept alive so its id is not reused
        self._active: ActiveRewardSet | None = None
        self._columns: dict[str, Column] = {}

    def reward_fns(self, reward_set: Sequence[RewardSpec]) -> list[RewardFunction]:
        """Tunix-signature functions for this reward set, named like the rewards, in the set's order."""
        active = ActiveRewardSet(reward_set, self.length_budget)
        return [RewardFunction(name, self, active) for name in active.names]

    def observe(
        self,
        completions: Sequence[str],
        answers: Sequence[str] | None,
        domains: Sequence[str] | None,
        reward_set: Sequence[RewardSpec] | ActiveRewardSet = (),
    ) -> RecordBatch:
        """Parse and score completions into records (the reward call, and held-out evaluation)."""
        active = reward_set if isinstance(reward_set, ActiveRewardSet) else ActiveRewardSet(reward_set, self.length_budget)
        records, _ = self._score(active, completions, answers, domains)
        return records

    def column(self, active: ActiveRewardSet, name: str, completions: Sequence[str], kwargs: Mapping[str, object],
               prompts: Sequence[str] = ()) -> list[float]:
        """The values of reward `name` for this batch; the first call of a batch scores the whole set."""
        with self._lock:
            if completions is not self._batch or active is not self._active:
                started = time.perf_counter()
                n = len(completions)
                answers = _kwarg_column(kwargs, "answer", n)
                domains = _kwarg_column(kwargs, "domain", n)
                records, columns = self._score(active, completions, answers, domains)
                self._batch, self._active, self._columns = completions, active, columns
                if self.on_batch is not None:
                    self.on_batch(records, time.perf_counter() - started)
                if self.on_texts is not None:
                    self.on_texts(prompts, completions, records)
            return list(self._columns[name])

    def _score(
        self, active: ActiveRewardSet, completions: Sequence[str], answers: Sequence[str] | None,
        domains: Sequence[str] | None,
    ) -> tuple[RecordBatch, dict[str, Column]]:
        count = self.count_tokens
        texts = completions if all(map(isinstance, completions, repeat(str))) else [str(t) for t in completions]
        n = len(texts)
        golds = answers if answers is not None else repeat("", n)
        kinds = domains if domains is not None else [DEFAULT_DOMAIN] * n
        # GRPO groups repeat completions (a confident model answers one text four times): each distinct
        # (text, gold, domain) is parsed, graded and judged for hallucination once, then spread back
        keys = list(zip(texts, golds, kinds))
        unique = list(dict.fromkeys(keys))
        parsed = [parse_fields(t, count) for t, _, _ in unique]
        correct, hallucinated = _judged(parsed, unique)
        if len(unique) < n:
            slot = {key: i for i, key in enumerate(unique)}
            index = [slot[key] for key in keys]
            parsed = [parsed[i] for i in index]
            correct = [correct[i] for i in index]
            hallucinated = [hallucinated[i] for i in index]
        fields = ParsedColumns.of(parsed)
        columns = {name: reward_column(name, params, fields, correct)
                   for name, params in zip(active.names, active.params)}
        limit = self.rambling_factor * active.budget
        rambling = [chars > 0 or length > limit for chars, length in zip(fields.outside_chars, fields.length_tokens)]
        batch = RecordBatch(list(kinds), fields.strict_ok, list(map(bool, fields.answer)), fields.refused,
                            fields.length_tokens, rambling, correct, hallucinated, fields.empty, list(map(hash, texts)),
                            columns)
        return batch, columns


def _judged(parsed: Sequence[ParsedFields], items: Sequence[tuple[str, str, str]]) -> tuple[list[bool | None], list[bool]]:
    """The correct and hallucination columns of parsed completions and their (text, gold, domain)."""
    if not parsed:
        return [], []
    correct, hallucinated = zip(*[judge(x[1], gold, kind, x[2], x[4]) for x, (_, gold, kind) in zip(parsed, items)])
    return list(correct), list(hallucinated)


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
