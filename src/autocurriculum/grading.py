"""How an item's answer is graded: its grading kind, and the batch judgement of a reward pass.

Why kinds: phase 3 mixes items whose answers are checked in different ways, and some that no rule
can check. Each item carries a grading kind beside its gold (a dataset column, like `answer` and
`domain`, that Tunix hands to the reward functions):
- "exact" (or empty, the default): the domain's exact match (`contract.judge`: numbers for "math",
  printed output for "code", normalised text otherwise);
- "tests": the answer is code; the gold is test code (MBPP-style asserts) run after it in the
  sandbox (`data.execution.run_tests`): correct when every assert passes, wrong on a failed assert,
  an error, a loop cut by the limits or any forbidden action (files, processes, network);
- "choice": multiple choice; the gold is "<letter><ANSWER_SEPARATOR><option text>", and the answer
  is correct when it names that letter ("B", "(B)", "B) photosynthesis") or that option's text;
- "none": open-ended (creative, summarisation, explanation): no gold, correctness not applicable.
An item with an empty gold is ungraded whatever its kind. Ungraded completions are never "wrong":
their `correct` is None, they are no hallucination, and the rewards and metrics leave them out of
everything that judges correctness (rewards.py, observation.summarize).

Hallucination keeps its operational meaning (contract.py) for exact and choice items; code is no
"value" that a reasoning derives, so a failed program is wrong but never a hallucination.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Final

from autocurriculum.contract import ANSWER_SEPARATOR, ParsedFields, judge, normalize_text, unsupported_by_reasoning
from autocurriculum.data.execution import run_tests
from autocurriculum.data.items import CHOICE, EXACT, GRADING_KINDS, NONE, TESTS, choice_gold

__all__ = ["CHOICE", "EXACT", "GRADING_KINDS", "NONE", "TESTS", "Grader", "choice_gold", "choice_is_correct",
           "extract_code", "is_graded"]

_FENCE = re.compile(r"^```[\w+-]*[ \t]*\n(.*?)\n?```\s*$", re.DOTALL)
_LETTER = re.compile(r"\(?([A-Za-z])\)?(?:[.):]\s*(.*)|\s*)", re.DOTALL)
_OPTION_WORD = re.compile(r"^(?:option|answer|choice)\s+", re.IGNORECASE)
_CACHE_SIZE: Final = 4096  # (program, tests) verdicts kept: GRPO repeats answers across steps too

RunTests = Callable[[Sequence[tuple[str, str]]], list[bool]]
Item = tuple[str, str, str, str]  # (completion text, gold, domain, grading kind)


def is_graded(gold: str, grading: str) -> bool:
    """An item is graded when it has a gold and its kind is not "none"."""
    return bool(gold) and grading != NONE


def extract_code(answer: str) -> str:
    """The program inside an answer: a Markdown code fence is taken off when the whole answer is one."""
    stripped = answer.strip()
    fenced = _FENCE.match(stripped)
    return fenced.group(1) if fenced else stripped


def choice_is_correct(answer: str, gold: str) -> bool:
    """The answer names the gold's letter, or is the gold option's text (normalised)."""
    letter, _, option = gold.partition(ANSWER_SEPARATOR)
    text = _OPTION_WORD.sub("", answer.strip())
    named = _LETTER.fullmatch(text)
    if named is not None and (named.group(2) is not None or len(text) <= 3):
        return named.group(1).upper() == letter.upper()  # "B", "(b)", "B." or "B) the text": the letter decides
    return bool(option) and normalize_text(text) == normalize_text(option)


class Grader:
    """The (correct, hallucination) columns of a batch, running every code item's tests in one sandbox call.

    Verdicts of code items are cached by (program, tests): a policy that has converged repeats its
    programs step after step, and the sandbox is the one costly part of grading.
    """

    def __init__(self, run: RunTests = run_tests) -> None:
        self.run = run
        self._verdicts: OrderedDict[tuple[str, str], bool] = OrderedDict()

    def grade(self, parsed: Sequence[ParsedFields], items: Sequence[Item]) -> tuple[list[bool | None], list[bool]]:
        """One (correct, hallucination) per parsed completion; `items` are the same rows' (text, gold, domain, kind)."""
        if not parsed:
            return [], []
        if all(kind == "" or kind == EXACT for kind in {item[3] for item in items}):  # the common case: one pass
            verdicts, hallucinations = zip(*[judge(fields[1], gold, domain, fields[2], fields[4])
                                             for fields, (_, gold, domain, _) in zip(parsed, items)])
            return list(verdicts), list(hallucinations)
        correct: list[bool | None] = []
        hallucinated: list[bool] = []
        pending: dict[tuple[str, str], list[int]] = {}
        for index, (fields, (_, gold, domain, grading)) in enumerate(zip(parsed, items)):
            answer, reasoning, refused = fields[1], fields[2], fields[4]
            if not is_graded(gold, grading):
                correct.append(None)
                hallucinated.append(False)
            elif grading == TESTS:
                correct.append(False)
                hallucinated.append(False)
                if answer:
                    pending.setdefault((extract_code(answer), gold), []).append(index)
            elif grading == CHOICE:
                right = bool(answer) and choice_is_correct(answer or "", gold)
                correct.append(right)
                hallucinated.append(not right and bool(answer) and not refused
                                    and unsupported_by_reasoning(answer or "", reasoning))
            else:
                verdict, hallucination = judge(answer, gold, domain, reasoning, refused)
                correct.append(verdict)
                hallucinated.append(hallucination)
        if pending:
            for case, verdict in zip(pending, self._verdicts_of(list(pending))):
                for index in pending[case]:
                    correct[index] = verdict
        return correct, hallucinated

    def _verdicts_of(self, cases: list[tuple[str, str]]) -> list[bool]:
        unknown = [case for case in cases if case not in self._verdicts]
        found = dict(zip(unknown, self.run(unknown))) if unknown else {}
        verdicts = [found[case] if case in found else self._verdicts[case] for case in cases]
        self._verdicts.update(found)
        while len(self._verdicts) > _CACHE_SIZE:
            self._verdicts.popitem(last=False)
        return verdicts
