"""Phase 3's data set shapes: code with tests, multiple choice, open-ended instructions; and generated open prompts.

Why shapes and not data sets: the hub names in the policy (MBPP, ARC, Dolly) are examples of three
shapes the curriculum needs, each graded its own way (grading.py). A source says its shape by its
`kind`; its `fields` map the shape's fields to the data set's columns, so another data set of the same
shape (or local JSONL files written in it) needs only a field map:
- "code_tests" (MBPP, `google-research-datasets/mbpp`): `question` (the task), `tests` (a list of
  asserts, or one string of them), optional `setup` (code run before the tests) and `solution`; the
  prompt shows the task and the first assert (so the function's name and signature are known), the gold
  is setup + every assert, graded "tests";
- "multiple_choice" (ARC, `allenai/ai2_arc`): `question`, `choices` (a list of option texts, or ARC's
  {"text": [...], "label": [...]}), `answer` (the right option's label, its 0-based index, or its text);
  options are shown relabelled A, B, C... and the gold is the letter with the option's text, graded "choice";
- "instructions" (Dolly, `databricks/databricks-dolly-15k`): `question` (the instruction), optional
  `context` (shown after it) and `reference` (a human answer, kept as the item's solution for a judge):
  no gold, graded "none".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from autocurriculum.data.items import CHOICE, NONE, TESTS, DataError, Item, choice_gold, render_prompt

DATASET_SHAPES = ("code_tests", "multiple_choice", "instructions")
SHAPE_FIELDS: Mapping[str, Mapping[str, str]] = {  # item field -> column, MBPP / ARC / Dolly's names
    "code_tests": {"question": "text", "tests": "test_list", "setup": "test_setup_code", "solution": "code"},
    "multiple_choice": {"question": "question", "choices": "choices", "answer": "answerKey"},
    "instructions": {"question": "instruction", "context": "context", "reference": "response"},
}
SHAPE_OPTIONAL: Mapping[str, tuple[str, ...]] = {
    "code_tests": ("setup", "solution"), "multiple_choice": (), "instructions": ("context", "reference"),
}
CODE_TESTS_QUESTION = ("{task}\nWrite it as a Python function. Your code must pass tests such as:\n{example}\n"
                       "Put only the code in the answer.")
CHOICE_QUESTION = "{question}\n{options}\nAnswer with the letter of the right option."
LETTERS = "ABCDEFGHIJ"

Row = Mapping[str, object]


def shape_items(kind: str, name: str, domain: str, rows: Sequence[Row], origin: str, template: str) -> list[Item]:
    """Items of one data set of shape `kind`; `rows` hold the shape's fields (None where a column is absent)."""
    build: Callable[[Row], tuple[str, str, str, str]] = {
        "code_tests": _code_tests, "multiple_choice": _multiple_choice, "instructions": _instructions}[kind]
    items = []
    for index, row in enumerate(rows):
        for field_name in SHAPE_FIELDS[kind]:
            if field_name not in SHAPE_OPTIONAL[kind] and _empty(row.get(field_name)):
                raise DataError(f"{origin}: item {index}: field {field_name!r} is missing or empty")
        try:
            question, gold, solution, grading = build(row)
        except ValueError as error:
            raise DataError(f"{origin}: item {index}: {error}") from None
        items.append(Item(f"{name}-{index}", domain, question, render_prompt(question, template), gold, solution,
                          grading))
    return items


def _empty(value: object) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _code_tests(row: Row) -> tuple[str, str, str, str]:
    raw = row["tests"]
    tests = [str(t).strip() for t in raw] if isinstance(raw, list) else str(raw).strip().splitlines()
    tests = [t for t in tests if t]
    if not tests:
        raise ValueError("no tests")
    setup = str(row.get("setup") or "").strip()
    question = CODE_TESTS_QUESTION.format(task=str(row["question"]).strip(), example=tests[0])
    gold = "\n".join(([setup] if setup else []) + tests)
    return question, gold, str(row.get("solution") or ""), TESTS


def _multiple_choice(row: Row) -> tuple[str, str, str, str]:
    choices = row["choices"]
    if isinstance(choices, dict):  # ARC: {"text": [...], "label": [...]}
        texts, labels = list(choices.get("text") or []), [str(x) for x in choices.get("label") or []]
    elif isinstance(choices, list):
        texts, labels = list(choices), []
    else:
        raise ValueError(f"choices must be a list of options or {{text, label}} lists, not {type(choices).__name__}")
    texts = [str(t).strip() for t in texts]
    if not 2 <= len(texts) <= len(LETTERS) or any(not t for t in texts):
        raise ValueError(f"choices: need 2 to {len(LETTERS)} non-empty options (got {len(texts)})")
    answer = str(row["answer"]).strip()
    if answer in labels:
        right = labels.index(answer)
    elif answer.upper() in LETTERS[:len(texts)] and not labels:
        right = LETTERS.index(answer.upper())
    elif answer.isdigit() and int(answer) < len(texts) and not labels:
        right = int(answer)
    elif answer in texts:
        right = texts.index(answer)
    else:
        raise ValueError(f"answer {answer!r} is none of the options' labels {labels or list(LETTERS[:len(texts)])}")
    options = "\n".join(f"{LETTERS[i]}) {text}" for i, text in enumerate(texts))
    question = CHOICE_QUESTION.format(question=str(row["question"]).strip(), options=options)
    return question, choice_gold(LETTERS[right], texts[right]), "", CHOICE


def _instructions(row: Row) -> tuple[str, str, str, str]:
    context = str(row.get("context") or "").strip()
    question = str(row["question"]).strip() + (f"\n\nContext: {context}" if context else "")
    return question, "", str(row.get("reference") or ""), NONE


# ---------------------------------------------------------------- generated open-ended prompts

OPEN_SUBJECTS = ("the sea", "a red kite", "winter", "a lost key", "the moon", "a small town", "rain", "a robot",
                 "an old map", "a garden", "the first snow", "a train at night")
OPEN_TASKS = (  # (instruction, a short reference answer: what the warm start imitates, never a gold)
    ("Write one sentence about {s}.", "I still think about {s}."),
    ("Describe {s} in a few words.", "Quiet, bright and new: {s}."),
    ("Give a short title for a story about {s}.", "The Day of {s}"),
    ("Write a two-line poem about {s}.", "I saw {s} today, and it would not go away."),
    ("Explain in one sentence why people like {s}.", "People like {s} because it makes them calm."),
    ("Summarise in one sentence: {n} found {s} and told {m} about it.", "{n} told {m} about {s}."),
)
OPEN_NAMES = ("Tom", "Ann", "Sam", "Lia", "Max", "Eva")


def open_prompt(rnd: random.Random) -> tuple[str, str]:
    """(instruction, reference) of a generated open-ended task (creative, description, summary): no gold exists."""
    n, m = rnd.sample(OPEN_NAMES, 2)
    subject = rnd.choice(OPEN_SUBJECTS)
    task, reference = rnd.choice(OPEN_TASKS)
    return task.format(s=subject, n=n, m=m), reference.format(s=subject, n=n, m=m)
