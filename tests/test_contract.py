"""The output contract: strict form, extraction, rambling, refusal, length, normalisation, hallucination."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum import contract
from autocurriculum.contract import (
    ANSWER_SEPARATOR,
    REFUSAL_WINDOW,
    answer_is_correct,
    gold_from_gsm8k,
    is_hallucination,
    judge,
    normalize_number,
    parse_completion,
    parse_fields,
)

from .conftest import GSM8K

GOOD = "<reasoning>3 + 4 = 7</reasoning><answer>7</answer>"
TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")


# ---------------------------------------------------------------- strict form and extraction


@pytest.mark.parametrize(
    "text, strict, answer, reasoning",
    [
        (GOOD, True, "7", "3 + 4 = 7"),
        ("  \n<reasoning>x</reasoning>\n <answer> 7 </answer>\n", True, "7", "x"),
        ("<reasoning></reasoning><answer>7</answer>", True, "7", ""),  # empty reasoning is allowed
        ("<reasoning>3 < 4 and <<48/2=24>></reasoning><answer>24</answer>", True, "24", "3 < 4 and <<48/2=24>>"),
        ("<reasoning>x</reasoning><answer>a < b</answer>", True, "a < b", "x"),
        ("Sure! <reasoning>x</reasoning><answer>7</answer>", False, "7", "x"),
        ("<reasoning>x</reasoning><answer>7</answer> Hope that helps.", False, "7", "x"),
        ("<answer>7</answer>", False, "7", None),
        ("<answer>7</answer><reasoning>x</reasoning>", False, "7", "x"),
        ("<reasoning>x</reasoning><answer>7</answer><answer>8</answer>", False, "7", "x"),
        ("<reasoning><reasoning>x</reasoning></reasoning><answer>7</answer>", False, "7", "<reasoning>x"),
        ("<reasoning>x</reasoning><answer>7", False, "7", "x"),  # cut off inside the answer
        ("<reasoning>x <answer>7</answer>", False, "7", "x "),  # unclosed reasoning stops at the answer
        ("<reasoning>x</reasoning><answer></answer>", False, "", "x"),
        ("<reasoning>x</reasoning><answer><answer>7</answer>", False, "7", "x"),
        ("The answer is 7.", False, None, None),
        ("", False, None, None),
    ],
)
def test_strict_form_and_extraction(text: str, strict: bool, answer: str | None, reasoning: str | None) -> None:
    parsed = parse_completion(text)
    assert parsed.strict_ok is strict
    assert parsed.answer == answer
    assert parsed.reasoning == reasoning
    assert parsed.extracted is bool(answer)


@pytest.mark.parametrize(
    "text, outside",
    [
        (GOOD, 0),
        ("\n\n" + GOOD + "\n", 0),
        ("Sure! " + GOOD, len("Sure!")),
        (GOOD + "  Hope that helps.  ", len("Hope that helps.")),
        ("Sure! <reasoning>x</reasoning> <answer>7</answer> Hope that helps.", len("Sure! Hope that helps.")),
        ("The answer is 7.", len("The answer is 7.")),
        ("<answer>7</answer>\n\n<reasoning>x</reasoning>", 0),  # the tags themselves are not text
        ("<reasoning>x</reasoning><answer>7</answer><answer>8</answer>", len("8")),  # a second answer is outside
        ("  \n ", 0),
    ],
)
def test_text_outside_the_blocks_is_counted_as_documented(text: str, outside: int) -> None:
    assert parse_completion(text).outside_chars == outside


def test_empty_means_nothing_but_whitespace() -> None:
    assert parse_completion("").empty and parse_completion(" \n\t").empty
    assert not parse_completion("x").empty and not parse_completion("<answer></answer>").empty


FRAGMENTS = st.sampled_from([*TAGS, " ", "\n", "7", "x y", "<", "<<3*4=12>>", "Sure!", "I cannot help", "’"])


@settings(max_examples=400, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join))
def test_the_fast_paths_agree_with_the_plain_find_based_reading(text: str) -> None:
    """The two regex paths must give what the simple str.find reading of the rules gives."""
    strict_ok, answer, reasoning, outside_chars, refused, length, empty = parse_fields(text)
    if "<" in text and contract._TAG.search(text):
        loose_reasoning, loose_answer, loose_outside = contract._parse_loose(text)
    else:
        loose_reasoning, loose_answer, loose_outside = None, None, text.strip()
    assert (answer, reasoning, outside_chars) == (loose_answer, loose_reasoning, len(loose_outside))
    tags = contract._TAG.findall(text)
    assert strict_ok == (tags == list(TAGS) and bool(answer) and outside_chars == 0)
    assert refused == contract._is_refusal(loose_outside, loose_answer)
    assert length == math.ceil(len(text) / 4) and empty == (not text.strip())
    assert parse_completion(text) == contract.ParsedCompletion(*parse_fields(text))


# ---------------------------------------------------------------- refusal and dodging


@pytest.mark.parametrize(
    "text, refused",
    [
        ("I cannot help with that.", True),
        ("I can’t help with that.", True),  # typographic apostrophe
        ("As an AI, I do not do homework.", True),
        ("As an AI language model, I will not solve this.", True),
        ("I'm sorry, but I can't answer this.", True),
        ("I am unable to assist with this request.", True),
        ("We won't provide that.", True),
        ("I must decline.", True),
        ("Sure! <reasoning>x</reasoning><answer>7</answer> I refuse to explain further.", True),
        ("<reasoning>I can't believe how many apples Tom has: 3 + 4 = 7</reasoning><answer>7</answer>", False),
        ("<reasoning>I cannot help but add: 3 + 4 = 7</reasoning><answer>7</answer>", False),  # inside the reasoning
        ("<reasoning>sorry, I miscounted; 7</reasoning><answer>7</answer>", False),
        ("<reasoning>hmm</reasoning><answer>I don't know</answer>", True),
        ("<reasoning>hmm</reasoning><answer>N/A</answer>", True),
        ("<reasoning>hmm</reasoning><answer>?</answer>", True),
        ("<reasoning>hmm</reasoning><answer>Cannot be determined.</answer>", True),
        ("<reasoning>hmm</reasoning><answer></answer>", True),  # an empty answer dodges
        ("<reasoning>none of them fit</reasoning><answer>None</answer>", False),  # "None" can be a real answer
        ("The answer is 7. I can't believe it was that easy.", False),
        ("I can  not help with that.", True),  # any spacing: "can\s+not"
        ("I will\nnot answer that.", True),
        ("", False),  # a collapse, counted as empty, not a refusal
        (GOOD, False),
    ],
)
def test_refusal_and_dodging(text: str, refused: bool) -> None:
    assert parse_completion(text).refused is refused


def test_refusal_is_judged_on_the_opening_window_of_free_text() -> None:
    filler = "x" * REFUSAL_WINDOW
    assert parse_completion("I cannot help with that. " + filler).refused
    assert not parse_completion(filler + " I cannot help with that.").refused  # documented bound


REFUSAL_WORDS = st.sampled_from(
    ["i", "we", "i'm", "we're", "am", "are", "cannot", "can't", "can", "not", "won't", "will", "unable", "able",
     "allowed", "must", "decline", "refuse", "to", "help", "answer", "do", "that", "as", "an", "a", "ai", "a.i.",
     "language", "model", "sorry,", "sorry", "but", "apologise", "apologize", "have"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(REFUSAL_WORDS, min_size=1, max_size=8), st.sampled_from([" ", "  ", "\n"]))
def test_every_refusal_the_regex_sees_contains_a_prefilter_keyword(words: list[str], space: str) -> None:
    text = space.join(words)
    if contract._REFUSAL.search(text):
        assert any(keyword in text for keyword in contract._REFUSAL_KEYWORDS), text


# ---------------------------------------------------------------- length


def test_length_uses_the_tokenizer_when_given_else_four_characters_a_token() -> None:
    assert parse_completion("abc def", count_tokens=lambda text: 42).length_tokens == 42
    assert [parse_completion("x" * n).length_tokens for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]
    assert contract.approximate_tokens("Tom has 12 apples.") == math.ceil(len("Tom has 12 apples.") / 4)


# ---------------------------------------------------------------- normalisation and correctness


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("$18", "18"), ("18.", "18"), ("18.0", "18"), ("018", "18"), ("1,000", "1000"), ("-3", "-3"),
        ("−3", "-3"), ("-0", "0"), ("18 dollars", "18"), ("3/4", "3/4"), ("0.75", "3/4"), (".5", "1/2"),
        ("The total is 5 apples", "5"), ("x = 2, so 2 + 3 = 5", "5"), ("1,2,3", "3"), ("$1,000.50", "2001/2"),
        ("-007", "-7"), ("9" * 5000, "9" * 5000), ("$" + "9" * 5000, "9" * 5000), ("0." + "1" * 5000, None),
        ("none", None), ("", None), ("1/0", None),
    ],
)
def test_normalize_number(text: str, canonical: str | None) -> None:
    assert normalize_number(text) == canonical


def test_answers_compare_by_domain() -> None:
    assert answer_is_correct("$1,000.00", "1000", "math")
    assert answer_is_correct("3/4", "0.75", "math")
    assert not answer_is_correct("1001", "1000", "math")
    assert not answer_is_correct("about a thousand", "1000", "math")
    assert answer_is_correct("hello\n", "hello", "code")
    assert answer_is_correct("a  \nb\n\n", "a\nb", "code")  # trailing spaces and blank lines
    assert not answer_is_correct("Hello", "hello", "code")  # case matters in printed output
    assert not answer_is_correct("a b", "a  b", "code")  # so do inner spaces
    assert answer_is_correct("friday.", "Friday", "qa")
    assert answer_is_correct("The Eiffel Tower", "Eiffel tower", "qa")  # articles dropped
    assert answer_is_correct("Ann", f"Ben{ANSWER_SEPARATOR}Ann", "qa")
    assert answer_is_correct("12.0", "12", "qa")  # a numeric accepted answer compares as a number
    assert not answer_is_correct("Sunday", "Friday", "qa")
    assert not answer_is_correct("12 apples or 13", "13 apples", "qa")  # no partial credit


# ---------------------------------------------------------------- hallucination


@pytest.mark.parametrize(
    "text, hallucinated",
    [
        ("<reasoning>3 + 4 = 8</reasoning><answer>8</answer>", False),  # derived, wrongly
        ("<reasoning>3 + 4 is small</reasoning><answer>12</answer>", True),  # invented
        ("<reasoning>118 apples</reasoning><answer>18</answer>", True),  # only inside a longer number
        ("<reasoning>it costs 18.5</reasoning><answer>18</answer>", True),  # a different decimal
        ("<reasoning>1.18 kg</reasoning><answer>18</answer>", True),
        ("<reasoning>1,800 in all</reasoning><answer>1800</answer>", False),  # separators ignored
        ("<reasoning>exactly 18.0</reasoning><answer>$18</answer>", False),
        ("<reasoning>10-3=7</reasoning><answer>-3</answer>", False),  # signs ignored
        ("<reasoning>half is 0.5</reasoning><answer>1/2</answer>", False),
        ("<reasoning>half</reasoning><answer>1/2</answer>", True),
        ("<reasoning>the city is paris</reasoning><answer>Paris</answer>", False),
        ("<reasoning>no idea</reasoning><answer>Paris</answer>", True),
        ("<answer>12</answer>", True),  # nothing derived it
        ("<reasoning>hmm</reasoning><answer>I don't know</answer>", False),  # dodging is not confident
    ],
)
def test_hallucination_is_a_confident_wrong_answer_the_reasoning_never_derived(text: str, hallucinated: bool) -> None:
    assert is_hallucination(parse_completion(text), correct=False) is hallucinated


def test_no_hallucination_without_a_wrong_graded_answer() -> None:
    invented = parse_completion("<reasoning>3 + 4 is small</reasoning><answer>12</answer>")
    assert not is_hallucination(invented, correct=True)
    assert not is_hallucination(invented, correct=None)
    assert not is_hallucination(parse_completion("no tags at all"), correct=False)


# ---------------------------------------------------------------- the whole of GSM8K

PERTURBED_FORMS = ("{}", "${}", "{}.", "{}.0", "{} dollars", "The answer is {}")


def _gsm8k(split: str) -> list[dict[str, str]]:
    with open(GSM8K / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.parametrize("split, count", [("train", 7473), ("test", 1319)])
def test_every_gsm8k_gold_normalises_and_scores_right_when_right_wrong_when_perturbed(split: str, count: int) -> None:
    rows = _gsm8k(split)
    assert len(rows) == count
    for index, row in enumerate(rows):
        gold = gold_from_gsm8k(row["answer"])
        canonical = normalize_number(gold)
        assert canonical is not None and re.fullmatch(r"-?\d+", canonical), gold
        form = PERTURBED_FORMS[index % len(PERTURBED_FORMS)]
        reasoning = row["answer"].rsplit("####", 1)[0]
        completion = parse_completion(f"<reasoning>{reasoning}</reasoning>\n<answer>{form.format(gold)}</answer>")
        assert completion.strict_ok and not completion.refused, gold
        assert answer_is_correct(completion.answer or "", gold, "math"), (gold, form)
        perturbed = parse_completion(f"<reasoning>{reasoning}</reasoning><answer>{form.format(int(canonical) + 1)}</answer>")
        assert not answer_is_correct(perturbed.answer or "", gold, "math"), (gold, form)


def test_gold_without_the_marker_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="####"):
        gold_from_gsm8k("no marker here")



@pytest.mark.parametrize("reasoning, unsupported", [
    ("3 + 15 = 18 ✓ 🍎", False),
    ("3 + 15 = 18🍎", False),  # an emoji is a boundary, like a space
    ("🍎118 apples", True),
    ("2✓18", False),  # the emoji separates 2 from 18
    ("１８ apples", False),  # a fullwidth number is read as a number
    ("é 1,800 — 18.0 «ﾃｽﾄ»", False),
    ("é 1,800 — 18.5", True),
])
def test_support_is_read_through_emoji_and_unicode(reasoning: str, unsupported: bool) -> None:
    assert contract.unsupported_by_reasoning("18", reasoning) is unsupported


ANSWER_PIECES = st.sampled_from(["18", "-3", "1,800", "18.0", "3/4", "0.75", "$", " dollars", "Paris", "paris", "１８",
                                 "I don't know", "", " ", "x", "18 or 19", ANSWER_SEPARATOR, "\n"])
REASONING_PIECES = st.sampled_from(["18", "118", "18.5", "1,800", "0.75", "half", "Paris", " ", "🍎", "é", "１８",
                                    "=", "-", ".", "3/4", "<<2*9=18>>"])


@settings(max_examples=800, deadline=None)
@given(st.lists(ANSWER_PIECES, max_size=4).map("".join), st.lists(ANSWER_PIECES, max_size=3).map("".join),
       st.sampled_from(["math", "qa", "code"]), st.none() | st.lists(REASONING_PIECES, max_size=8).map("".join),
       st.booleans())
def test_judge_agrees_with_answer_is_correct_and_is_hallucination(
    answer: str, gold: str, domain: str, reasoning: str | None, refused: bool
) -> None:
    extracted = answer.strip() or None
    correct = None if not gold else (extracted == gold or (bool(extracted) and answer_is_correct(extracted or "", gold, domain)))
    parsed = contract.ParsedCompletion(True, extracted, reasoning, 0, refused, 1, False)
    assert judge(extracted, gold, domain, reasoning, refused) == (correct, is_hallucination(parsed, correct))
