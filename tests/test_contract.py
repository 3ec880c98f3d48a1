"""The output contract: strict form, extraction, refusal, rambling, normalisation, hallucination."""

from __future__ import annotations

import json

import pytest

from autocurriculum.contract import (
    answer_is_correct,
    gold_from_gsm8k,
    is_hallucination,
    normalize_number,
    parse_completion,
)

from .conftest import GSM8K

GOOD = "<reasoning>3 + 4 = 7</reasoning><answer>7</answer>"


@pytest.mark.parametrize(
    "text, strict, answer, outside",
    [
        (GOOD, True, "7", 0),
        ("  \n<reasoning>x</reasoning>\n <answer> 7 </answer>\n", True, "7", 0),
        ("Sure! <reasoning>x</reasoning><answer>7</answer>", False, "7", 5),
        ("<reasoning>x</reasoning><answer>7</answer> Hope that helps.", False, "7", 14),
        ("<answer>7</answer>", False, "7", 0),
        ("<answer>7</answer><reasoning>x</reasoning>", False, "7", 0),
        ("<reasoning>x</reasoning><answer>7</answer><answer>8</answer>", False, "7", 0),
        ("<reasoning><reasoning>x</reasoning></reasoning><answer>7</answer>", False, "7", 0),
        ("<reasoning>x</reasoning><answer></answer>", False, "", 0),
        ("The answer is 7.", False, None, 13),
        ("", False, None, 0),
    ],
)
def test_strict_form_extraction_and_text_outside(text: str, strict: bool, answer: str | None, outside: int) -> None:
    parsed = parse_completion(text)
    assert parsed.strict_ok is strict
    assert parsed.answer == answer
    assert parsed.extracted is bool(answer)
    if text.startswith(("Sure", "<reasoning>x</reasoning><answer>7</answer> Hope", "The answer")):
        assert parsed.outside_chars == outside


@pytest.mark.parametrize(
    "text, refused",
    [
        ("I cannot help with that.", True),
        ("As an AI, I do not do homework.", True),
        ("I'm sorry, but I can't answer this.", True),
        ("<reasoning>I can't believe how many apples Tom has: 3 + 4 = 7</reasoning><answer>7</answer>", False),
        ("<reasoning>hmm</reasoning><answer>I don't know</answer>", True),
        ("<reasoning>hmm</reasoning><answer>N/A</answer>", True),
        ("<reasoning>sorry, I miscounted; 7</reasoning><answer>7</answer>", False),
        (GOOD, False),
    ],
)
def test_refusal_and_dodging(text: str, refused: bool) -> None:
    assert parse_completion(text).refused is refused


def test_length_uses_the_tokenizer_when_given_else_the_documented_approximation() -> None:
    assert parse_completion("abc def", count_tokens=lambda t: 42).length_tokens == 42
    assert parse_completion("Tom has 12 apples.").length_tokens == len(["Tom", "has", "1", "2", "apples", "."])


@pytest.mark.parametrize(
    "text, canonical",
    [("$18", "18"), ("18.", "18"), ("18.0", "18"), ("1,000", "1000"), ("-3", "-3"), ("18 dollars", "18"),
     ("3/4", "3/4"), ("0.75", "3/4"), ("The total is 5 apples", "5"), ("x = 2, so 2 + 3 = 5", "5"), ("none", None)],
)
def test_normalize_number(text: str, canonical: str | None) -> None:
    assert normalize_number(text) == canonical


def test_answers_compare_by_domain() -> None:
    assert answer_is_correct("$1,000.00", "1000", "math")
    assert not answer_is_correct("1001", "1000", "math")
    assert answer_is_correct("hello\n", "hello", "code")
    assert not answer_is_correct("Hello", "hello", "code")
    assert answer_is_correct("friday.", "Friday", "qa")
    assert answer_is_correct("Ann", "Ben\x1fAnn", "qa")
    assert not answer_is_correct("Sunday", "Friday", "qa")


def test_hallucination_is_a_wrong_answer_the_reasoning_never_derived() -> None:
    derived = parse_completion("<reasoning>3 + 4 = 8</reasoning><answer>8</answer>")
    invented = parse_completion("<reasoning>3 + 4 is small</reasoning><answer>12</answer>")
    assert not is_hallucination(derived, correct=False)
    assert is_hallucination(invented, correct=False)
    assert not is_hallucination(invented, correct=True)
    assert not is_hallucination(invented, correct=None)


def _gsm8k(split: str) -> list[dict[str, str]]:
    with open(GSM8K / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("split, count", [("train", 7473), ("test", 1319)])
def test_every_gsm8k_gold_normalises_and_scores_right_when_right_wrong_when_perturbed(split: str, count: int) -> None:
    rows = _gsm8k(split)
    assert len(rows) == count
    for row in rows:
        gold = gold_from_gsm8k(row["answer"])
        canonical = normalize_number(gold)
        assert canonical is not None, gold
        completion = parse_completion(f"<reasoning>{row['answer'].split('####')[0]}</reasoning><answer>{gold}</answer>")
        assert completion.strict_ok
        assert answer_is_correct(completion.answer or "", gold, "math"), gold
        perturbed = str(int(canonical) + 1) if "/" not in canonical else canonical + "1"
        assert not answer_is_correct(perturbed, gold, "math"), (gold, perturbed)
