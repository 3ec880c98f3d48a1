"""The item every source yields, the prompt it is shown as, and the one error type of the data layer.

The prompt carries the output contract's instruction so that every source, generated or loaded, asks
for the same `<reasoning>...</reasoning><answer>...</answer>` shape the rewards and the parser expect.
The "plain" template is deliberately short: the tiny CPU model pays for every prompt token.
"""

from __future__ import annotations

from dataclasses import dataclass

CONTRACT_INSTRUCTION = "Reply as <reasoning>...</reasoning><answer>...</answer>."
PLAIN_TEMPLATE = "{instruction}\nQuestion: {question}\nAnswer:"
GEMMA_TURN = "<start_of_turn>user\n{instruction}\n\n{question}<end_of_turn>\n<start_of_turn>model\n"
TEMPLATES = {"plain": PLAIN_TEMPLATE, "gemma_chat": GEMMA_TURN}


class DataError(ValueError):
    """Bad data or data settings; the message names the file, line, field or policy setting."""


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    domain: str  # "math", "code" or "qa"
    question: str
    prompt: str  # the question rendered with the contract instruction
    answer: str  # the gold; several accepted answers are joined by contract.ANSWER_SEPARATOR
    solution: str = ""  # a worked solution when the source has one (used by the warm start)


def render_prompt(question: str, template: str) -> str:
    if template not in TEMPLATES:
        raise DataError(f"training.prompt_template: unknown template {template!r} ({', '.join(TEMPLATES)})")
    return TEMPLATES[template].format(instruction=CONTRACT_INSTRUCTION, question=question)
