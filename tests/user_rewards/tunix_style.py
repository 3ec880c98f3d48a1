"""Reward functions written as a Tunix or TRL user writes them: no knowledge of autocurriculum."""

import re


def brevity(prompts, completions, **kwargs):
    """Shorter answers score higher: -0.01 per character past 60."""
    return [-0.01 * max(0, len(completion) - 60) for completion in completions]


def mentions_a_number(prompts, completions, bonus=0.25, **kwargs):
    """A bonus for any completion that contains a digit (`bonus` comes from the policy's params)."""
    return [bonus if re.search(r"\d", completion) else 0.0 for completion in completions]


def uses_the_parsed_contract(prompts, completions, strict, extracted_answer, answer, **kwargs):
    """Reads the parsed fields autocurriculum passes instead of parsing again."""
    return [1.0 if ok and got == gold else 0.0 for ok, got, gold in zip(strict, extracted_answer, answer)]
