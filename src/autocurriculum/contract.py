"""The output contract, parsed once per completion: every reward and every metric reads this record.

Contract: the completion is exactly `<reasoning>...</reasoning>` followed by a non-empty
`<answer>...</answer>`, with only whitespace around them, no nested or repeated tags.

- strict compliance: the whole contract holds;
- extraction: an `<answer>` tag with non-empty content exists (also when the strict form fails),
  so extraction and strict compliance are different metrics;
- rambling: non-whitespace text outside the tags;
- refusal or dodging: an explicit refusal ("I cannot help", "as an AI", "I'm sorry, but"), judged on
  the text outside the reasoning block and on the answer, so "I can't believe how many..." inside the
  reasoning is not a refusal; an empty or evasive answer ("I don't know", "N/A") also counts;
- length in tokens: the tokenizer's count when a counter is given, else an approximation of one token
  per word piece: runs of letters, single digits and single punctuation marks (`APPROX_TOKEN`), which
  over-counts whole English words slightly and matches digit-split tokenizers on numbers;
- hallucination (operational): an extracted answer that is wrong and whose value appears nowhere in
  the completion's own reasoning: a confident answer the model did not derive.

Answers in the "math" domain compare as numbers after normalisation (see `normalize_number`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

ANSWER_SEPARATOR = "\x1f"  # a gold may hold several accepted answers joined by this

_TAG = re.compile(r"</?(?:reasoning|answer)>")
_STRICT = re.compile(r"\A\s*<reasoning>(.*?)</reasoning>\s*<answer>(.*?)</answer>\s*\Z", re.S)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S)
_REASONING = re.compile(r"<reasoning>(.*?)(?:</reasoning>|\Z)", re.S)
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:cannot|can't|can\s*not|won't|will\s+not|am\s+unable\s+to|'m\s+unable\s+to|am\s+not\s+able\s+to)"
    r"\s+(?:help|answer|assist|do\s+that|provide|comply)"
    r"|as\s+an\s+ai\b|i(?:'m|\s+am)\s+sorry,?\s+but|i\s+must\s+decline|i\s+refuse)",
    re.I,
)
_EVASIVE = re.compile(r"\A\s*(?:i\s+don'?t\s+know|unknown|n/?a|none|no\s+answer|cannot\s+be\s+determined|\?+)\s*\.?\s*\Z", re.I)
APPROX_TOKEN = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?|-?\.\d+")


@dataclass(frozen=True, slots=True)
class ParsedCompletion:
    strict_ok: bool
    answer: str | None  # the text inside the first <answer> tag, stripped; None when no tag
    reasoning: str | None
    outside_chars: int  # non-whitespace characters outside the tags
    refused: bool
    length_tokens: int
    empty: bool

    @property
    def extracted(self) -> bool:
        return bool(self.answer)


def approximate_tokens(text: str) -> int:
    return len(APPROX_TOKEN.findall(text))


def parse_completion(text: str, count_tokens: Callable[[str], int] | None = None) -> ParsedCompletion:
    """Parse one completion in a single pass over the text."""
    tags = _TAG.findall(text)
    strict = _STRICT.match(text) if len(tags) == 4 else None  # repeated or nested tags are never strict
    strict_ok = strict is not None and bool(strict.group(2).strip())  # an empty answer is not a valid one
    if strict is not None:
        reasoning: str | None = strict.group(1)
        answer: str | None = strict.group(2).strip()
        outside_chars = 0  # the pattern admits only whitespace around the two blocks
    else:
        found = _ANSWER.search(text)
        answer = found.group(1).strip() if found else None
        found_reasoning = _REASONING.search(text)
        reasoning = found_reasoning.group(1) if found_reasoning else None
        outside_text = _REASONING.sub(" ", _ANSWER.sub(" ", text))
        outside_chars = sum(1 for ch in _TAG.sub("", outside_text) if not ch.isspace())
    judged = text if reasoning is None else text.replace(reasoning, " ", 1)
    refused = bool(_REFUSAL.search(judged)) or (answer is not None and bool(_EVASIVE.match(answer)))
    length = count_tokens(text) if count_tokens is not None else approximate_tokens(text)
    return ParsedCompletion(
        strict_ok=strict_ok,
        answer=answer,
        reasoning=reasoning,
        outside_chars=outside_chars,
        refused=refused,
        length_tokens=length,
        empty=not text.strip(),
    )


def normalize_number(text: str) -> str | None:
    """A canonical form for a numeric answer, or None when there is no number.

    Rules: `$`, units and words around the number are ignored ("18 dollars", "$18"); thousands
    separators are removed ("1,000"); a trailing period is punctuation ("18."); "18.0" equals "18";
    fractions are exact ("3/4" equals "0.75", because both are the same rational number); the LAST
    number in the text is the answer (as GSM8K graders do). The canonical form is the reduced
    fraction "p/q", or the integer "p".
    """
    numbers = _NUMBER.findall(text.replace("−", "-"))
    if not numbers:
        return None
    raw = numbers[-1].replace(",", "")
    try:
        value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def gold_from_gsm8k(answer_field: str) -> str:
    """GSM8K's gold answer is the text after '####'."""
    if "####" not in answer_field:
        raise ValueError(f"GSM8K answer has no '####' marker: {answer_field[-60:]!r}")
    return answer_field.rsplit("####", 1)[1].strip()


def _normalize_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s.-]", " ", text.casefold()).split()).strip(" .")


def answer_is_correct(extracted: str, gold: str, domain: str) -> bool:
    """Exact match after the domain's normalisation; no partial or ratio credit.

    math: numeric equality (normalize_number); code: the printed output, compared after removing
    trailing whitespace on each line and trailing blank lines (print() adds a final newline the
    answer tag cannot show); qa and other domains: case- and punctuation-insensitive text equality
    against any accepted answer, or numeric equality when both are numbers.
    """
    golds = gold.split(ANSWER_SEPARATOR)
    if domain == "math":
        value = normalize_number(extracted)
        return value is not None and any(value == normalize_number(g) for g in golds)
    if domain == "code":
        got = "\n".join(line.rstrip() for line in extracted.strip("\n").splitlines()).strip()
        return any(got == "\n".join(line.rstrip() for line in g.strip("\n").splitlines()).strip() for g in golds)
    got = _normalize_text(extracted)
    for g in golds:
        if got == _normalize_text(g):
            return True
        number, gold_number = normalize_number(extracted), normalize_number(g)
        if number is not None and number == gold_number and _NUMBER.fullmatch(g.strip().replace(",", "")):
            return True
    return False


def is_hallucination(parsed: ParsedCompletion, correct: bool | None) -> bool:
    """Wrong, extracted, and its value appears nowhere in the completion's own reasoning."""
    if correct is None or correct or not parsed.answer:
        return False
    reasoning = parsed.reasoning or ""
    number = normalize_number(parsed.answer)
    if number is not None:
        return all(normalize_number(n) != number for n in _NUMBER.findall(reasoning))
    return _normalize_text(parsed.answer) not in _normalize_text(reasoning)
