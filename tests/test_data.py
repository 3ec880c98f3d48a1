"""Data sources and subsets: real GSM8K through `datasets`, generators checked independently, bad input."""

from __future__ import annotations

import datetime
import json
import re
import time
from pathlib import Path

import pytest

from autocurriculum.contract import ANSWER_SEPARATOR
from autocurriculum.data import (
    DataError,
    Item,
    apply_subset,
    heldout_count,
    load_source,
    render_prompt,
    run_program,
    split_heldout,
)
from autocurriculum.policy import SourceSpec, SubsetSpec

from .conftest import GSM8K, REPO

GSM = SourceSpec(name="gsm8k", kind="gsm8k", domain="math", split="train", path=str(GSM8K))


@pytest.fixture(scope="module")
def gsm8k_items() -> list[Item]:
    return load_source(GSM, seed=0, base_dir=REPO)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# ---------------------------------------------------------------- GSM8K


def test_gsm8k_loads_locally_through_datasets_with_golds_after_the_marker(gsm8k_items) -> None:
    lines = (GSM8K / "train.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(gsm8k_items) == len(lines)
    for index in (0, 1234, len(lines) - 1):
        row = json.loads(lines[index])
        assert gsm8k_items[index].question == row["question"]
        assert gsm8k_items[index].answer == row["answer"].split("####")[1].strip()
    assert all("<answer>" in i.prompt and i.domain == "math" for i in gsm8k_items[:50])
    test = load_source(SourceSpec("t", "gsm8k", "math", split="test", path=str(GSM8K)), seed=0, base_dir=REPO)
    assert len(test) == len((GSM8K / "test.jsonl").read_text(encoding="utf-8").splitlines())
    assert not {i.question for i in test} & {i.question for i in gsm8k_items}


def test_relative_path_resolves_against_the_policy_directory(gsm8k_items) -> None:
    relative = SourceSpec("gsm8k", "gsm8k", "math", path="gsm8k/train.jsonl")
    assert load_source(relative, seed=0, base_dir=GSM8K.parent) == gsm8k_items


def test_no_local_path_and_the_hub_offline_names_the_setting(monkeypatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match=r"sources\.gsm8k\.path"):
        load_source(SourceSpec("gsm8k", "gsm8k", "math", hub_name="openai/gsm8k", hub_config="main"), seed=0,
                    base_dir=REPO)


def test_an_unreachable_hub_fails_fast_and_names_the_setting(monkeypatch) -> None:
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    with pytest.raises(DataError, match=r"sources\.gsm8k\.path"):
        load_source(SourceSpec("gsm8k", "gsm8k", "math", hub_name="openai/gsm8k", hub_config="main"), seed=0,
                    base_dir=REPO)
    assert time.monotonic() - started < 120  # a refused connection is not retried for minutes (a hang detector)


# ---------------------------------------------------------------- subsets


def test_subset_slices_a_seeded_shuffle(gsm8k_items) -> None:
    part = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=1, source="gsm8k")
    again = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=1, source="gsm8k")
    other = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.25), seed=2, source="gsm8k")
    rest = apply_subset(gsm8k_items, SubsetSpec(0.25, 1.0), seed=1, source="gsm8k")
    assert len(part) == int(0.25 * len(gsm8k_items))
    assert part == again and part != other
    assert not {i.id for i in part} & {i.id for i in rest}
    assert {i.id for i in part} | {i.id for i in rest} == {i.id for i in gsm8k_items}
    head = [i.id for i in gsm8k_items[: len(part)]]
    assert [i.id for i in part] != head  # a shuffle, not the file's first quarter


def test_short_question_filters(gsm8k_items) -> None:
    short = apply_subset(gsm8k_items, SubsetSpec(max_question_chars=150), seed=0, source="gsm8k")
    assert short and all(len(i.question) <= 150 for i in short)
    assert len(short) == sum(len(i.question) <= 150 for i in gsm8k_items)
    words = apply_subset(gsm8k_items, SubsetSpec(max_question_tokens=30), seed=0, source="gsm8k")
    assert words and all(len(i.question.split()) <= 30 for i in words) and len(words) < len(gsm8k_items)
    by_chars_as_tokens = apply_subset(gsm8k_items, SubsetSpec(max_question_tokens=150), seed=0, source="gsm8k",
                                      count_tokens=len)
    assert by_chars_as_tokens == short
    both = apply_subset(gsm8k_items, SubsetSpec(0.0, 0.5, max_question_chars=150), seed=0, source="gsm8k")
    assert set(both) <= set(short) and len(both) < len(short)


def test_empty_and_impossible_subsets_are_clear_errors(gsm8k_items) -> None:
    with pytest.raises(DataError, match=r"subset of source 'gsm8k' is empty: .*max_question_chars 5"):
        apply_subset(gsm8k_items, SubsetSpec(max_question_chars=5), seed=0, source="gsm8k")
    with pytest.raises(DataError, match="start < end"):
        apply_subset(gsm8k_items, SubsetSpec(0.5, 0.2), seed=0, source="gsm8k")


# ---------------------------------------------------------------- generators


def test_generated_sources_are_deterministic_per_seed() -> None:
    for kind, domain in (("arithmetic", "math"), ("qa", "qa")):
        spec = SourceSpec(kind, kind, domain, options={"count": 300})
        first, again = load_source(spec, seed=4, base_dir=REPO), load_source(spec, seed=4, base_dir=REPO)
        other = load_source(spec, seed=5, base_dir=REPO)
        assert first == again
        assert [i.question for i in first] != [i.question for i in other]


ADDS = re.compile(r"buys|found|puts in|on Tuesday")


def expected_arithmetic(question: str) -> int:
    """Recompute a generated word problem's answer from its text alone."""
    first, _, then = question.partition(" Then ")
    a, b = (int(x) for x in re.findall(r"\d+", first))
    value = a + b if ADDS.search(first) else a - b
    if then:
        (c,) = (int(x) for x in re.findall(r"\d+", then))
        value = value + c if "more" in then else value - c
    return value


@pytest.mark.parametrize("steps", [1, 2])
def test_arithmetic_answers_follow_from_the_question_text(steps: int) -> None:
    spec = SourceSpec("a", "arithmetic", "math", options={"count": 500, "steps": steps, "max_number": 12})
    items = load_source(spec, seed=0, base_dir=REPO)
    assert len(items) == 500 - heldout_count(500)
    for item in items:
        numbers = [int(x) for x in re.findall(r"\d+", item.question)]
        assert len(numbers) == steps + 1 and max(numbers) <= 12
        assert int(item.answer) == expected_arithmetic(item.question) >= 0
        assert item.prompt == render_prompt(item.question, "plain")


def expected_qa(question: str) -> str:
    monday = datetime.date(2024, 1, 1)  # a Monday
    if m := re.fullmatch(r"Today is (\w+)\. What day of the week is it in (\d+) days\?", question):
        start = next(monday + datetime.timedelta(d) for d in range(7)
                     if (monday + datetime.timedelta(d)).strftime("%A") == m[1])
        return (start + datetime.timedelta(int(m[2]))).strftime("%A")
    if m := re.fullmatch(r"What month comes (\d+) months after (\w+)\?", question):
        month = datetime.datetime.strptime(m[2], "%B").month
        return datetime.date(2024, (month - 1 + int(m[1])) % 12 + 1, 1).strftime("%B")
    if m := re.fullmatch(r"How many centimeters are in (\d+) meters\?", question):
        return str(int(m[1]) * 100)
    if m := re.fullmatch(r"How many minutes are in (\d+) hours\?", question):
        return str(int(m[1]) * 60)
    m = re.fullmatch(r"(\w+) is (\d+) years old and (\w+) is (\d+) years old\. Who is older\?", question)
    assert m, question
    return m[1] if int(m[2]) > int(m[4]) else m[3]


def test_qa_answers_follow_from_the_question_text() -> None:
    items = load_source(SourceSpec("qa", "qa", "qa", options={"count": 400}), seed=2, base_dir=REPO)
    assert {i.domain for i in items} == {"qa"}
    for item in items:
        assert item.answer == expected_qa(item.question)


def test_code_items_answers_match_a_fresh_execution(tmp_path: Path) -> None:
    spec = SourceSpec("code", "code", "code", options={"count": 120})
    items = load_source(spec, seed=3, base_dir=REPO, cache_dir=tmp_path)
    assert items and all(i.domain == "code" for i in items)
    for item in items[::8]:
        program = item.question.split("\n", 1)[1]
        assert run_program(program).rstrip("\n") == item.answer
    assert list(tmp_path.glob("code-outputs-*.json"))
    assert load_source(spec, seed=3, base_dir=REPO, cache_dir=tmp_path) == items


def test_a_damaged_code_cache_is_rebuilt(tmp_path: Path) -> None:
    spec = SourceSpec("code", "code", "code", options={"count": 80})
    items = load_source(spec, seed=1, base_dir=REPO, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("code-outputs-*.json")
    cache.write_text("[1, 2", encoding="utf-8")
    assert load_source(spec, seed=1, base_dir=REPO, cache_dir=tmp_path) == items


def test_programs_run_under_limits() -> None:
    assert run_program("print(sum(range(5)))") == "10\n"
    with pytest.raises(DataError, match="did not finish"):
        run_program("while True:\n    pass", timeout=1.0)
    with pytest.raises(DataError, match="MemoryError"):
        run_program("x = bytearray(2 << 30)")
    with pytest.raises(DataError, match="failed"):
        run_program("import os; print(os.environ['HOME'])")  # no inherited environment


def test_generated_test_split_is_disjoint_from_training() -> None:
    spec = SourceSpec("a", "arithmetic", "math", options={"count": 1000})
    train = load_source(spec, seed=0, base_dir=REPO)
    test = load_source(SourceSpec("a", "arithmetic", "math", split="test", options={"count": 1000}), seed=0,
                       base_dir=REPO)
    assert len(train) + len(test) == 1000 and len(test) == heldout_count(1000)
    assert not {i.id for i in train} & {i.id for i in test}


def test_split_heldout_keeps_the_tail_apart(gsm8k_items) -> None:
    train, held = split_heldout(gsm8k_items[:100], 30)
    assert len(train) == 70 and len(held) == 30
    assert train + held == gsm8k_items[:100]
    with pytest.raises(DataError, match="cannot hold out 100 of 100"):
        split_heldout(gsm8k_items[:100], 100)


# ---------------------------------------------------------------- user datasets


def test_a_local_code_dataset_with_a_field_map(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "train.jsonl", [{"src": "print(1 + 1)", "stdout": "2\n"},
                                           {"src": "print('a' * 3)", "stdout": "aaa\n"}])
    spec = SourceSpec("mine", "code", "code", path=str(tmp_path), fields={"program": "src", "answer": "stdout"})
    items = load_source(spec, seed=0, base_dir=REPO)
    assert [i.answer for i in items] == ["2", "aaa"]
    assert items[1].question.endswith("print('a' * 3)") and items[0].domain == "code"
    for item in items:
        assert run_program(item.question.split("\n", 1)[1]).rstrip("\n") == item.answer


def test_a_local_qa_dataset_joins_accepted_answers(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "qa.jsonl", [{"q": "Capital of France?", "golds": ["Paris", "paris"]},
                                        {"q": "2 + 2?", "golds": ["4"]}])
    spec = SourceSpec("qa", "jsonl", "qa", path="qa.jsonl", fields={"question": "q", "answer": "golds"})
    items = load_source(spec, seed=0, base_dir=tmp_path)
    assert items[0].answer == f"Paris{ANSWER_SEPARATOR}paris" and items[1].answer == "4"


def test_bad_data_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "train.jsonl"
    spec = SourceSpec("g", "gsm8k", "math", path=str(tmp_path))
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{not json\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: not a JSON line"):
        load_source(spec, seed=0, base_dir=REPO)
    bad.write_text('{"question": "q", "answer": "#### 1"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2: a JSON line must be an object"):
        load_source(spec, seed=0, base_dir=REPO)
    bad.write_text('{"question": "q", "answer": "no marker"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl: item 0: .*####"):
        load_source(spec, seed=0, base_dir=REPO)
    bad.write_text('{"prompt": "q", "answer": "#### 1"}\n')
    with pytest.raises(DataError, match=r"sources\.g\.fields\.question: column 'question' not in .*train\.jsonl"):
        load_source(spec, seed=0, base_dir=REPO)
    write_jsonl(bad, [{"question": "q", "answer": "#### 1"}, {"question": "r"}])
    with pytest.raises(DataError, match=r"train\.jsonl: item 1: field 'answer' \(column 'answer'\) is missing"):
        load_source(spec, seed=0, base_dir=REPO)
    bad.write_text("\n")
    with pytest.raises(DataError, match=r"train\.jsonl: no items \(sources\.g is empty\)"):
        load_source(spec, seed=0, base_dir=REPO)
    with pytest.raises(DataError, match=r"sources\.g\.path: no file .*nowhere"):
        load_source(SourceSpec("g", "gsm8k", "math", path=str(tmp_path / "nowhere")), seed=0, base_dir=REPO)


def test_bad_source_settings_are_clear_errors() -> None:
    with pytest.raises(DataError, match=r"sources\.x\.kind: unknown kind 'csv'"):
        load_source(SourceSpec("x", "csv", "math"), seed=0, base_dir=REPO)
    with pytest.raises(DataError, match=r"sources\.a\.options\.count: must be a positive integer \(got 'many'\)"):
        load_source(SourceSpec("a", "arithmetic", "math", options={"count": "many"}), seed=0, base_dir=REPO)
    with pytest.raises(DataError, match=r"sources\.a\.options\.count: 50 items leave none for training"):
        load_source(SourceSpec("a", "arithmetic", "math", options={"count": 50}), seed=0, base_dir=REPO)
    with pytest.raises(DataError, match=r"sources\.a\.split: 'validation'"):
        load_source(SourceSpec("a", "arithmetic", "math", split="validation"), seed=0, base_dir=REPO)


def test_prompt_templates_carry_the_contract() -> None:
    plain = render_prompt("2+2?", "plain")
    assert "<answer>" in plain and plain.endswith("Question: 2+2?\nAnswer:") and plain.count("\n") == 2
    chat = render_prompt("2+2?", "gemma_chat")
    assert chat.startswith("<start_of_turn>user\n") and chat.endswith("<end_of_turn>\n<start_of_turn>model\n")
    assert "2+2?" in chat and "<answer>" in chat
    with pytest.raises(DataError, match="prompt_template"):
        render_prompt("x", "chatml")
