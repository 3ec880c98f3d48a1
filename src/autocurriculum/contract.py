"""The output contract, parsed once per completion: every reward and every metric reads this record.

Why one parser: the controller decides from what the model emits, so five rewards and the
step metrics must agree on what "formatted", "answered" and "refused" mean. Each completion is
parsed once into a `ParsedCompletion`; nothing else looks at the raw text.

The contract (curriculum document, phase 1): the completion is `<reasoning>...</reasoning>`
followed by `<answer>...</answer>`, nothing but whitespace around them, each tag exactly once.

- strict compliance (`strict_ok`): the four tags appear exactly once each, in that order, only
  whitespace outside the two blocks, and the answer is not empty. A repeated or nested tag is
  never strict. An empty reasoning block is allowed (the answer is the contract's point).
- extraction (`extracted`): an `<answer>` tag with non-empty content exists anywhere, closed or
  not (a completion cut off after `<answer>18` still answered 18). The answer is the text of the
  FIRST `<answer>` tag up to the next `</answer>` (or the end), stray tags removed, stripped.
  Extraction and strict compliance are different metrics: `Sure! <answer>7</answer>` extracts 7
  but is not strict.
- rambling text (`outside_chars`): the length of the text outside the reasoning and answer
  blocks, each piece stripped of its surrounding whitespace and the pieces joined by one space;
  the tags themselves do not count, inner spaces do ("Sure! <reasoning>..." has 5; "Sure! ...
  Hope that helps." has 5 + 1 + 16). An unclosed reasoning block runs to the answer tag or the
  end of the text; an unclosed answer block runs to the end.
- refusal or dodging (`refused`), judged only on the text OUTSIDE the reasoning block (so
  "I can't believe how many apples..." inside the reasoning is no refusal): on the answer and on
  the first `REFUSAL_WINDOW` (240) characters of the other outside text, where refusals open
  (this bounds the cost on long free text), case-insensitively, "’" read as "'":
  * explicit refusals: "I/we cannot|can't|can not|won't|will not|am unable to|am not able to|
    am not allowed to|must decline to|refuse to" followed by "help|answer|assist|do that|
    provide|comply|solve|respond|complete"; "as an AI" / "as an AI language model" / "as a
    language model" (single spaces); "I'm sorry, but" / "I am sorry, but"; "I apologise/apologize, but";
    "I must decline"; "I refuse";
  * dodging: an `<answer>` tag that is present but empty, or whose whole content is evasive:
    "I don't know", "I'm not sure", "not sure", "unknown", "N/A", "no answer", "cannot/can't be
    determined", "not enough information", "insufficient information", "?", "...", "-".
    "None" is NOT evasive (it can be a real answer).
  An empty completion is not a refusal: it is a collapse, counted as `empty`.
- length in tokens (`length_tokens`): the tokenizer's count when a counter is given (the daemon
  always gives the model's tokenizer); otherwise `approximate_tokens`: one token per four
  characters, rounded up — the usual figure for English under sentencepiece/BPE vocabularies
  such as Gemma's. It is O(1), which keeps the pure pass fast; it under-counts digit-split
  numbers and tag tokens slightly, so budgets tuned on it carry over only approximately.
- hallucination (`is_hallucination`, operational): the item has a gold, the extracted answer is
  wrong, it is not a refusal or dodge ("I don't know" is not confident), AND its value appears
  nowhere in the completion's own reasoning: a confident answer the model did not derive, as
  opposed to a derivation that went wrong. "Appears": for an integer answer, its digits stand in
  the reasoning as a whole number (not inside a longer number or a decimal; thousands separators
  ignored; "18.0" and "18." count as 18; a fraction such as "36/2" is not evaluated); for a
  fraction or decimal answer, some number in the reasoning has the same value; signs are ignored
  (a hyphen is often subtraction: "10-3"); for a text answer, its normalised text is a substring
  of the reasoning (case-folded, or normalised like the answer).

Correctness (`answer_is_correct`) is exact after the domain's normalisation, never partial:
"math" compares numbers (`normalize_number`), "code" compares printed output, every other domain
("qa") compares normalised text against each accepted answer (`ANSWER_SEPARATOR`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Final

ANSWER_SEPARATOR: Final = "\x1f"  # a gold may hold several accepted answers joined by this

REASONING_OPEN: Final = "<reasoning>"
REASONING_CLOSE: Final = "</reasoning>"
ANSWER_OPEN: Final = "<answer>"
ANSWER_CLOSE: Final = "</answer>"
CHARS_PER_TOKEN: Final = 4  # the approximation used when no tokenizer count is given

_R_OPEN_LEN, _R_CLOSE_LEN, _A_OPEN_LEN, _A_CLOSE_LEN = map(len, (REASONING_OPEN, REASONING_CLOSE, ANSWER_OPEN, ANSWER_CLOSE))
_TAG = re.compile(r"</?(?:reasoning|answer)>")
# A block body: any text without one of the four tags (possessive: linear, no backtracking).
_BODY = r"([^<]*+(?:<(?!/?(?:reasoning|answer)>)[^<]*+)*+)"
# The strict form, tried first: one linear match for the common case.
_strict_form = re.compile(rf"\s*+<reasoning>{_BODY}</reasoning>\s*+<answer>{_BODY}</answer>\s*+").fullmatch
# Any completion whose tags come in contract order, each at most once, closers optional:
# (text)(<reasoning>(body)(</reasoning>)?)?(text)(<answer>(body)(</answer>)?)?(text), no part holding a tag.
_in_order = re.compile(rf"{_BODY}(?:<reasoning>{_BODY}(</reasoning>)?)?{_BODY}(?:<answer>{_BODY}(</answer>)?)?{_BODY}").fullmatch

REFUSAL_WINDOW: Final = 240  # characters of outside text judged for refusal (refusals open a reply)
# A text reaches the refusal regex only when one of these substrings is present: every refusal
# pattern contains one of them whatever its spacing ("can  not", "will\nnot"; a test checks the
# regex against the keywords). Nine short scans, and a text with "not" in it pays for the regex.
_REFUSAL_KEYWORDS: Final = ("not", "n't", "unable", "declin", "refus", "as an ", "language model", "sorry", "apologi")
_REFUSAL = re.compile(
    r"\b(?:i|we)(?:\s+(?:cannot|can't|can\s+not|won't|will\s+not|must\s+decline|refuse)"
    r"|(?:\s+am|'m|\s+are|'re)\s+(?:unable|not\s+able|not\s+allowed))"
    r"\s+(?:to\s+)?(?:help|answer|assist|do\s+(?:that|this)|provide|comply|solve|respond|complete)"
    r"|\bas an (?:ai\b|a\.i\.)|\bas an? (?:ai )?language model"
    r"|\bi(?:'m|\s+am)\s+sorry,?\s+but\b"
    r"|\bi\s+apologi[sz]e,?\s+but\b"
    r"|\bi\s+(?:must|have\s+to)\s+decline\b"
    r"|\bi\s+refuse\b"
)
_EVASIVE = re.compile(
    r"(?:i\s+don't\s+know|i\s+do\s+not\s+know|(?:i'm\s+|i\s+am\s+)?not\s+sure|unknown|n/?a|no\s+answer"
    r"|(?:cannot|can't|can\s+not)\s+be\s+determined|not\s+enough\s+information|insufficient\s+information"
    r"|\?+|\.\.\.+|…|-+)\.?"
)
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
_DIGITS: Final = frozenset("0123456789")
_DIGITS_AND_POINT: Final = frozenset("0123456789.")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")  # a decimal among these (e.g. fullwidth): the slow path reads every number
_PLAIN_INTEGER = re.compile(r"-?[0-9]+")
_ARTICLES_AND_PUNCTUATION = re.compile(r"\b(?:a|an|the)\b|[^\w\s.-]")
_SHORT: Final = 64  # answers up to this length are normalised through a bounded cache


@dataclass(frozen=True, slots=True)
class ParsedCompletion:
    """One completion read against the contract (see the module docstring for each field)."""

    strict_ok: bool
    answer: str | None  # the first <answer> tag's text, stripped; None when there is no tag
    reasoning: str | None  # the first <reasoning> block's text; None when there is no tag
    outside_chars: int  # characters of text outside the two blocks, surrounding whitespace not counted
    refused: bool
    length_tokens: int
    empty: bool  # nothing but whitespace

    @property
    def extracted(self) -> bool:
        """An answer tag with non-empty content was found (strict or not)."""
        return bool(self.answer)


def approximate_tokens(text: str) -> int:
    """One token per `CHARS_PER_TOKEN` characters, rounded up (0 for the empty text)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def parse_completion(text: str, count_tokens: Callable[[str], int] | None = None) -> ParsedCompletion:
    """Parse one completion against the contract (see the module docstring)."""
    return ParsedCompletion(*parse_fields(text, count_tokens))


ParsedFields = tuple[bool, "str | None", "str | None", int, bool, int, bool]


def parse_fields(text: str, count_tokens: Callable[[str], int] | None = None, *,
                 length: int | None = None) -> ParsedFields:
    """`ParsedCompletion`'s fields as a plain tuple, in field order: the batch path's fast form.

    The length in tokens is `length` when the caller counted the batch already, else `count_tokens`'
    count, else the contract's approximation. A strict completion is recognised by one linear regex
    match (the common case once phase 1 has worked), any other completion with its tags in order by a
    second; tags repeated or out of order go through `_parse_loose` (str.find for the blocks).
    """
    if length is not None:
        length = max(0, int(length))
    else:
        length = -(-len(text) // CHARS_PER_TOKEN) if count_tokens is None else max(0, int(count_tokens(text)))
    if "<" not in text:
        outside = text.strip()
        return False, None, None, len(outside), _is_refusal(outside, None), length, not outside
    strict = _strict_form(text)
    if strict is not None:
        reasoning, answer = strict.groups()
        answer = answer.strip()
        refused = not answer or (not answer.isdigit() and _is_refusal("", answer))
        return bool(answer), answer, reasoning, 0, refused, length, False
    form = _in_order(text)
    if form is None:  # tags repeated or out of order
        reasoning, answer, outside = _parse_loose(text)
        return False, answer, reasoning, len(outside), _is_refusal(outside, answer), length, False
    before, reasoning, _, between, answer, _, after = form.groups()
    if answer is not None:
        answer = answer.strip()
    outside = " ".join(piece for piece in (before.strip(), between.strip(), after.strip()) if piece)
    return False, answer, reasoning, len(outside), _is_refusal(outside, answer), length, False


def _parse_loose(text: str) -> tuple[str | None, str | None, str]:
    """Reasoning, answer and the text outside both blocks (stray tags removed), tags in any order."""
    end = len(text)
    answer = reasoning = None
    a_open = text.find(ANSWER_OPEN)
    a_end = -1
    if a_open >= 0:
        start = a_open + _A_OPEN_LEN
        a_close = text.find(ANSWER_CLOSE, start)
        if a_close < 0:
            content, a_end = text[start:], end
        else:
            content, a_end = text[start:a_close], a_close + _A_CLOSE_LEN
        answer = (_TAG.sub(" ", content) if "<" in content else content).strip()
    r_open = text.find(REASONING_OPEN)
    r_end = -1
    if r_open >= 0:
        start = r_open + _R_OPEN_LEN
        r_close = text.find(REASONING_CLOSE, start)
        if r_close >= 0:
            reasoning, r_end = text[start:r_close], r_close + _R_CLOSE_LEN
        else:  # unclosed: it runs to the answer tag, or to the end
            r_end = a_open if a_open >= start else end
            reasoning = text[start:r_end]
    blocks = sorted(block for block in ((a_open, a_end), (r_open, r_end)) if block[0] >= 0)
    pieces, cursor = [], 0
    for start, stop in blocks:
        if start > cursor:
            pieces.append(text[cursor:start])
        cursor = max(cursor, stop)
    pieces.append(text[cursor:])
    stripped = ((_TAG.sub(" ", piece) if "<" in piece else piece).strip() for piece in pieces)
    return reasoning, answer, " ".join(piece for piece in stripped if piece)


def _is_refusal(outside: str, answer: str | None) -> bool:
    """Refusal or dodging, judged on the answer and on the start of the text outside the reasoning."""
    if answer is not None:
        if not answer:
            return True  # an answer tag with nothing in it: dodging
        lowered = answer.lower()
        if "’" in lowered:
            lowered = lowered.replace("’", "'")
        if len(lowered) <= 40 and _EVASIVE.fullmatch(lowered):
            return True
        if not outside and lowered == lowered.upper():
            return False  # no letters at all ("$18", "3/4"): nothing to refuse with
        judged = outside[:REFUSAL_WINDOW].lower() + "\n" + lowered if outside else lowered
    else:
        judged = outside[:REFUSAL_WINDOW].lower()
    if "’" in judged:
        judged = judged.replace("’", "'")
    for keyword in _REFUSAL_KEYWORDS:
        if keyword in judged:
            return _REFUSAL.search(judged) is not None
    return False


def normalize_number(text: str) -> str | None:
    """A canonical form for a numeric answer, or None when there is no number.

    Rules: `$`, units and words around the number are ignored ("18 dollars", "$18"); thousands
    separators are removed when they group by three ("1,000"; "1,2,3" is three numbers); a
    trailing period is punctuation ("18."); "18.0" equals "18"; "−3" (unicode minus) equals "-3";
    fractions are exact, so "3/4" equals "0.75" (the same rational number); the LAST number in the
    text is the answer (as GSM8K graders read "so the total is 18"). The canonical form is the
    integer "p" or the reduced fraction "p/q". A decimal or fraction too long for Python's int
    conversion (over 4,300 digits) gives None.
    """
    if len(text) <= _SHORT:
        return _normalize_cached(text)
    return _normalize(text)


@lru_cache(maxsize=8192)
def _normalize_cached(text: str) -> str | None:
    return _normalize(text)


def _normalize(text: str) -> str | None:
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():  # the common case: a bare integer
        return stripped.lstrip("0") or "0"
    if "−" in text:
        text = text.replace("−", "-")
    numbers = _NUMBER.findall(text)
    if not numbers:
        return None
    raw = numbers[-1].replace(",", "")
    if _PLAIN_INTEGER.fullmatch(raw):  # no int(): any number of digits
        negative, digits = raw.startswith("-"), raw.lstrip("-").lstrip("0") or "0"
        return "-" + digits if negative and digits != "0" else digits
    try:
        value = Fraction(raw)
    except (ValueError, ZeroDivisionError):
        return None
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def gold_from_gsm8k(answer_field: str) -> str:
    """GSM8K's gold answer is the text after the last '####'."""
    if "####" not in answer_field:
        raise ValueError(f"GSM8K answer has no '####' marker: {answer_field[-60:]!r}")
    return answer_field.rsplit("####", 1)[1].strip()


def normalize_text(text: str) -> str:
    """QA normalisation: case-folded, articles and punctuation (except . and -) dropped, spaces collapsed."""
    return " ".join(_ARTICLES_AND_PUNCTUATION.sub(" ", text.casefold()).split()).strip(" .")


def normalize_output(text: str) -> str:
    """Code normalisation: trailing spaces of every line and surrounding blank lines ignored."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines()).strip()


def answer_is_correct(extracted: str, gold: str, domain: str) -> bool:
    """Exact match after the domain's normalisation; no partial or ratio credit.

    - "math": numeric equality (`normalize_number`) with any accepted answer;
    - "code": the program's printed output; the comparison ignores trailing whitespace on each
      line and leading/trailing blank lines and spaces (print() adds a final newline the answer tag
      cannot show, and the answer is stripped); case, inner spaces and line breaks must match;
    - "qa" and any other domain: `normalize_text` equality with any accepted answer, or numeric
      equality when that accepted answer is itself just a number ("12" accepts "12.0").
    """
    golds = gold.split(ANSWER_SEPARATOR) if ANSWER_SEPARATOR in gold else (gold,)
    if domain == "math":
        value = normalize_number(extracted)
        return value is not None and any(value == normalize_number(g) for g in golds)
    if domain == "code":
        got = normalize_output(extracted)
        return any(got == normalize_output(g) for g in golds)
    got = normalize_text(extracted)
    for g in golds:
        if got == normalize_text(g):
            return True
        if _NUMBER.fullmatch(g.strip()):
            value = normalize_number(extracted)
            if value is not None and value == normalize_number(g):
                return True
    return False


def is_hallucination(parsed: ParsedCompletion, correct: bool | None) -> bool:
    """Graded, wrong, extracted, not a refusal, and its value appears nowhere in the reasoning."""
    if correct is None or correct or not parsed.answer or parsed.refused:
        return False
    return unsupported_by_reasoning(parsed.answer, parsed.reasoning)


def judge(answer: str | None, gold: str, domain: str, reasoning: str | None, refused: bool) -> tuple[bool | None, bool]:
    """(correct, hallucination) of one extracted answer against its gold: the two graded record fields.

    The same rules as `answer_is_correct` and `is_hallucination` (correct is None without a gold;
    an answer equal to its gold is correct), in one call per completion: a math answer with one
    accepted gold is normalised once for both questions.
    """
    if not gold:
        return None, False
    if answer == gold:
        return True, False
    if not answer:
        return False, False
    if domain == "math" and ANSWER_SEPARATOR not in gold:
        value = normalize_number(answer)
        if value is not None and value == normalize_number(gold):
            return True, False
        return False, not refused and _unsupported_value(value, answer, reasoning or "")
    if answer_is_correct(answer, gold, domain):
        return True, False
    return False, not refused and unsupported_by_reasoning(answer, reasoning)


def unsupported_by_reasoning(answer: str, reasoning: str | None) -> bool:
    """The answer's value appears nowhere in the reasoning (see the module docstring)."""
    return _unsupported_value(normalize_number(answer), answer, reasoning or "")


def _unsupported_value(value: str | None, answer: str, reasoning: str) -> bool:
    """`unsupported_by_reasoning` given the answer's `normalize_number` value."""
    if value is None:
        wanted = normalize_text(answer)
        return wanted not in reasoning.casefold() and wanted not in normalize_text(reasoning)
    digits = value.lstrip("-")
    if not reasoning.isascii() and not any(map(str.isdecimal, _NON_ASCII.findall(reasoning))):
        reasoning = reasoning.encode("ascii", "replace").decode("ascii")  # emoji, accents: boundaries, like a space
    if "/" in digits or len(digits) > 32 or not reasoning.isascii():  # fraction, huge, non-ASCII: read every number
        return all(_magnitude(normalize_number(n)) != digits for n in _NUMBER.findall(reasoning))
    return not _stands_alone(digits, reasoning.replace(",", "") if "," in reasoning else reasoning)


def _stands_alone(digits: str, text: str) -> bool:
    """`digits` occurs in `text` as a whole number: not inside a longer number or a decimal.

    "18" stands alone in "x 18 y", "18." and "18.0"; not in "118", "218.5" or "1.18".
    """
    size, width = len(text), len(digits)
    start = text.find(digits)
    while start >= 0:
        end = start + width
        if start == 0 or text[start - 1] not in _DIGITS_AND_POINT:
            if end == size or text[end] not in _DIGITS_AND_POINT:
                return True
            if text[end] == ".":  # a decimal: only a zero fraction keeps the value ("18.0", "18.")
                tail = end + 1
                while tail < size and text[tail] == "0":
                    tail += 1
                if tail == size or text[tail] not in _DIGITS:
                    return True
        start = text.find(digits, end)
    return False


def _magnitude(value: str | None) -> str | None:
    return value.lstrip("-") if value else value
