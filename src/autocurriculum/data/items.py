"""The item every source yields, the prompt it is shown as, and the error types of the data layer.

The prompt carries the output contract's instruction so that every source, generated or loaded, asks
for the same `<reasoning>...</reasoning><answer>...</answer>` shape the rewards and the parser expect.
The "plain" template is deliberately short: the tiny CPU model pays for every prompt token.
The "few_shot" template is for a pretrained BASE model (e.g. Gemma 3 270M): a base model does not
follow instructions, it continues patterns, so the instruction alone gave 0 of 80 compliant
completions from the real 270M, while two worked examples in the contract's format make it answer
in the format from the first step. Its examples are short so completions stay short, and each ends
in a blank line (the next "Question:" follows), so `training.stop_pieces = ["\n\n"]` ends a
completion right after its answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from autocurriculum.contract import ANSWER_SEPARATOR
from autocurriculum.exits import EX_CONFIG, EX_NOINPUT, RefusedInput

CONTRACT_INSTRUCTION = "Reply as <reasoning>...</reasoning><answer>...</answer>."
PLAIN_TEMPLATE = "{instruction}\nQuestion: {question}\nAnswer:"
GEMMA_TURN = "<start_of_turn>user\n{instruction}\n\n{question}<end_of_turn>\n<start_of_turn>model\n"
WORKED_EXAMPLES = (  # (question, reasoning, answer), written for this template
    (
        (
            "A shop sells pencils at 3 dollars each. Tom buys 4 pencils and pays with a 20 dollar bill. "
            "How much change does he get?"
        ),
        "4 pencils cost 4 * 3 = 12 dollars. His change is 20 - 12 = 8 dollars.",
        "8",
    ),
    (
        "A farm has 12 cows and twice as many sheep. How many animals are there in total?",
        "There are 2 * 12 = 24 sheep. In total 12 + 24 = 36 animals.",
        "36",
    ),
)
FEW_SHOT_INSTRUCTION = (
    "Solve each problem. Put the reasoning inside <reasoning></reasoning> and only the final answer "
    "inside <answer></answer>."
)
FEW_SHOT_TEMPLATE = (
    "{few_shot_instruction}\n\n"
    + "".join(
        f"Question: {question}\nAnswer: <reasoning>{reasoning}</reasoning>\n<answer>{answer}</answer>\n\n"
        for question, reasoning, answer in WORKED_EXAMPLES
    )
    + "Question: {question}\nAnswer:"
)
TEMPLATES = {"plain": PLAIN_TEMPLATE, "gemma_chat": GEMMA_TURN, "few_shot": FEW_SHOT_TEMPLATE}


# How an item's answer is graded (grading.py says what each kind means); "" is EXACT.
EXACT = "exact"
TESTS = "tests"
CHOICE = "choice"
NONE = "none"
GRADING_KINDS = (EXACT, TESTS, CHOICE, NONE)


def choice_gold(letter: str, option: str) -> str:
    """The gold of a multiple-choice item: its letter and its option's text."""
    return f"{letter.strip().upper()}{ANSWER_SEPARATOR}{option.strip()}"


class DataError(RefusedInput, ValueError):
    """Bad data (exits 65); the message names the file, line, field or policy setting."""


class DataSettingError(DataError):
    """A data setting of the policy that cannot be used (an unknown kind or template): exits 78."""

    exit_code: ClassVar[int] = EX_CONFIG


class DataNotFound(DataError):
    """A data file or hub data set the policy names is not there or cannot be read: exits 66."""

    exit_code: ClassVar[int] = EX_NOINPUT


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    domain: str  # "math", "code", "qa", "science", "open" or a user's own
    question: str
    prompt: str  # the question rendered with the contract instruction
    answer: str  # the gold; several accepted answers are joined by contract.ANSWER_SEPARATOR
    solution: str = ""  # a worked solution when the source has one (used by the warm start)
    grading: str = ""  # how the answer is graded (grading.GRADING_KINDS; "" is "exact"); "none": open-ended

    @property
    def graded(self) -> bool:
        """The item has a gold and a grading kind other than "none" (else correctness is not applicable)."""
        return bool(self.answer) and self.grading != NONE


def render_prompt(question: str, template: str) -> str:
    if template not in TEMPLATES:
        raise DataSettingError(f"training.prompt_template: unknown template {template!r} ({', '.join(TEMPLATES)})")
    return TEMPLATES[template].format(
        instruction=CONTRACT_INSTRUCTION, few_shot_instruction=FEW_SHOT_INSTRUCTION, question=question
    )
