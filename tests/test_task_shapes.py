"""Phase 3's data set shapes read from local JSONL in MBPP / ARC / Dolly's own columns, and the generated open kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocurriculum.contract import ANSWER_SEPARATOR
from autocurriculum.data import DataError, load_source
from autocurriculum.data.execution import run_tests
from autocurriculum.data.items import DataSettingError
from autocurriculum.grading import choice_is_correct
from autocurriculum.policy import SourceSpec, load

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


def source(kind: str, folder: str, split: str = "train", **fields: str) -> SourceSpec:
    return SourceSpec(folder, kind, {"code_tests": "code", "multiple_choice": "science", "instructions": "open"}[kind],
                      split=split, path=str(DATA / folder), fields=fields)


def test_mbpp_shaped_items_are_graded_by_their_tests_and_their_solutions_pass() -> None:
    items = load_source(source("code_tests", "mbpp"), seed=0, base_dir=DATA)
    assert [i.grading for i in items] == ["tests"] * 3 and {i.domain for i in items} == {"code"}
    first = items[0]
    assert "Write a function to add two numbers." in first.question and "assert add(2, 3) == 5" in first.question
    assert "assert add(0, 0) == 0" not in first.question  # one example shown, every assert graded
    assert first.answer.splitlines() == ["assert add(2, 3) == 5", "assert add(-1, 1) == 0", "assert add(0, 0) == 0"]
    test_items = load_source(source("code_tests", "mbpp", "test"), seed=0, base_dir=DATA)
    assert test_items[1].answer.startswith("import math\n")  # test_setup_code runs before the asserts
    every = items + test_items
    assert run_tests([(i.solution, i.answer) for i in every]) == [True] * len(every)
    assert run_tests([("def add(a, b):\n    return a * b", first.answer)]) == [False]


def test_arc_shaped_items_are_relabelled_and_graded_by_letter_or_option() -> None:
    items = load_source(source("multiple_choice", "arc"), seed=0, base_dir=DATA)
    assert [i.grading for i in items] == ["choice"] * 3
    assert "A) respiration\nB) photosynthesis" in items[0].question
    assert items[0].answer == "B" + ANSWER_SEPARATOR + "photosynthesis"
    planets = items[2]  # labelled 1-4 in the file: shown as A-D, the gold follows
    assert "C) Mercury" in planets.question and planets.answer == "C" + ANSWER_SEPARATOR + "Mercury"
    assert choice_is_correct("C", planets.answer) and choice_is_correct("Mercury", planets.answer)
    assert not choice_is_correct("3", planets.answer)


def test_dolly_shaped_items_carry_no_gold_and_keep_the_reference_for_a_judge() -> None:
    items = load_source(source("instructions", "dolly"), seed=0, base_dir=DATA)
    assert [(i.answer, i.grading) for i in items] == [("", "none")] * 3
    assert items[1].question.startswith("Summarise this paragraph") and "Context: The town library" in items[1].question
    assert "Context:" not in items[0].question and items[0].solution.startswith("Red and gold")


def test_a_field_map_reads_another_data_set_of_the_same_shape(tmp_path: Path) -> None:
    rows = [{"prompt": "Pick the even number.", "options": ["3", "4", "7"], "right": 1},
            {"prompt": "Pick the colour.", "options": ["red", "two"], "right": 0}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = SourceSpec("mine", "multiple_choice", "science", path=str(tmp_path),
                      fields={"question": "prompt", "choices": "options", "answer": "right"})
    items = load_source(spec, seed=0, base_dir=tmp_path)
    assert [i.answer.split(ANSWER_SEPARATOR)[0] for i in items] == ["B", "A"]


def test_bad_shaped_data_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataSettingError, match=r"sources.arc.fields.tests: not a field of kind 'multiple_choice'"):
        load_source(source("multiple_choice", "arc", tests="x"), seed=0, base_dir=DATA)
    with pytest.raises(DataError, match=r"sources.mbpp.fields.tests: column 'asserts' not in"):
        load_source(source("code_tests", "mbpp", tests="asserts"), seed=0, base_dir=DATA)
    (tmp_path / "train.jsonl").write_text(json.dumps({"question": "Q?", "choices": ["a", "b"], "answerKey": "E"}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl: item 0: answer 'E' is none of the options"):
        load_source(SourceSpec("bad", "multiple_choice", "science", path=str(tmp_path)), seed=0, base_dir=tmp_path)
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "Do it.", "test_list": [], "code": ""}) + "\n")
    with pytest.raises(DataError, match=r"item 0: field 'tests' is missing or empty"):
        load_source(SourceSpec("bad", "code_tests", "code", path=str(tmp_path)), seed=0, base_dir=tmp_path)


def test_generated_open_prompts_are_ungraded_and_held_out_apart() -> None:
    train = load_source(SourceSpec("open", "open", "open", options={"count": 200}), seed=0, base_dir=DATA)
    test = load_source(SourceSpec("open", "open", "open", split="test", options={"count": 200}), seed=0, base_dir=DATA)
    assert {(i.answer, i.grading) for i in train + test} == {("", "none")}
    assert len(train) == 136 and len(test) == 64 and not {i.id for i in train} & {i.id for i in test}


def test_the_default_policy_names_real_data_sets_for_phase_3() -> None:
    policy = load(REPO / "policies" / "default.toml")
    final = policy.phases[-1]
    kinds = {policy.sources[c.source].kind: policy.sources[c.source] for c in final.mixture.components}
    assert kinds["code_tests"].hub_name == "google-research-datasets/mbpp"
    assert (kinds["multiple_choice"].hub_name, kinds["multiple_choice"].hub_config) == ("allenai/ai2_arc", "ARC-Challenge")
    assert kinds["instructions"].hub_name == "databricks/databricks-dolly-15k"


def test_ungraded_items_leave_the_tiny_base_and_its_key_as_they_were(tiny_text: str) -> None:
    """Adding open-ended items to phase 3 changes neither the tokenizer corpus, the warm start nor the cached base."""
    from itertools import islice

    from autocurriculum.library import SourceLibrary
    from autocurriculum.policy import parse

    without = (tiny_text.replace('[[phases.data]]\nsource = "open"\nweight = 0.2\n', "")
               .replace('source = "arithmetic"\nweight = 0.4', 'source = "arithmetic"\nweight = 0.6')
               .replace('[[phases.criteria]]\nmetric = "domain_compliance:open"\ncomparison = ">="\nthreshold = 0.8\n', "")
               .replace(', "open_test"]', "]"))
    assert without != tiny_text and '"open"' not in without.split("[sources.open]")[0]
    policies = parse(tiny_text, str(REPO / "policies" / "tiny.toml")), parse(without, str(REPO / "policies" / "x.toml"))
    assert any(policies[0].sources[c.source].kind == "open" for c in policies[0].phases[-1].mixture.components)
    libraries = [SourceLibrary(p, REPO / "policies", None) for p in policies]
    assert libraries[0].recipe() == libraries[1].recipe()
    assert libraries[0].tokenizer_corpus() == libraries[1].tokenizer_corpus()
    assert list(islice(libraries[0].warm_start_batches(0), 2)) == list(islice(libraries[1].warm_start_batches(0), 2))
    assert all(item.graded for item in libraries[0].base_items())
