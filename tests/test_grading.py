"""Ungraded items, grading kinds (code by its tests in the sandbox, multiple choice), per-domain budgets and metrics."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.contract import ANSWER_SEPARATOR, answer_is_correct, parse_completion
from autocurriculum.data.execution import run_tests
from autocurriculum.grading import choice_gold, choice_is_correct, extract_code
from autocurriculum.observation import is_known_metric, is_rate, split_domain_metric, summarize
from autocurriculum.policy import RewardSpec
from autocurriculum.rewards import REWARD_PARAMETERS, RewardDispatcher

ALL_FIVE = tuple(RewardSpec(name) for name in REWARD_PARAMETERS)
LENGTH = REWARD_PARAMETERS["penalize_length"]


def scored(texts: list[str], golds: list[str], gradings: list[str], domains: list[str] | None = None,
           reward_set: tuple[RewardSpec, ...] = ALL_FIVE) -> tuple[dict[str, list[float]], object]:
    """Every reward's column as Tunix receives it, and the batch's records, through the dispatcher."""
    batches: list[object] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    n = len(texts)
    kwargs = {"answer": np.array(golds), "domain": np.array(domains or ["math"] * n), "grading": np.array(gradings)}
    fns = dispatcher.reward_fns(reward_set)
    columns = {fn.__name__: fn(prompts=["q"] * n, completions=texts, **kwargs) for fn in fns}
    dispatcher.observe_batch(["q"] * n, texts, **kwargs)
    return columns, batches[0]


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ---------------------------------------------------------------- ungraded items: a property

ANSWERS = st.sampled_from(["7", "8", "18", "Paris", "I don't know", "", "x" * 90])
REASONINGS = st.sampled_from(["", "3 + 4 = 7", "step " * 40, "the capital"])
WRAPS = st.sampled_from(["<reasoning>{r}</reasoning><answer>{a}</answer>", "{r} so {a}", "Sure! <answer>{a}</answer>",
                         "<reasoning>{r}</reasoning><answer>{a}"])
ROWS = st.lists(st.tuples(WRAPS, REASONINGS, ANSWERS, st.sampled_from(["7", "Paris", "18", ""]),
                          st.sampled_from(["", "exact", "none"]), st.sampled_from(["math", "qa"])),
                min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(ROWS)
def test_no_ungraded_reward_depends_on_correctness_and_accuracy_counts_graded_items_only(rows: list) -> None:
    texts = [wrap.format(r=reasoning, a=answer) for wrap, reasoning, answer, _, _, _ in rows]
    golds = [gold for *_, gold, _, _ in rows]
    gradings = [grading for *_, grading, _ in rows]
    domains = [domain for *_, domain in rows]
    ungraded = [not gold or grading == "none" for gold, grading in zip(golds, gradings)]
    base, records = scored(texts, golds, gradings, domains)
    # the same batch with every ungraded item's gold replaced: by its own answer (right, were it graded),
    # and by one that matches nothing (wrong, were it graded); graded rows keep theirs
    answers = [parse_completion(t).answer or "" for t in texts]
    for other in (answers, ["never-an-answer"] * len(texts)):
        swapped = [o if u and g else gold for o, u, g, gold in zip(other, ungraded, golds, golds)]
        columns, _ = scored(texts, swapped, gradings, domains)
        for name, values in columns.items():
            for i, value in enumerate(values):
                if ungraded[i]:
                    assert same(value, base[name][i]), (name, texts[i])
    for i, is_ungraded in enumerate(ungraded):
        if is_ungraded:
            assert records.correct[i] is None and not records.hallucination[i]
            assert math.isnan(base["check_answer_strict"][i])
            assert "check_answer_strict" not in records[i].rewards
    observation = summarize(0, records, group_size=1)
    graded = [i for i, u in enumerate(ungraded) if not u]
    assert observation.metrics["graded_completions"] == len(graded)
    assert observation.nonfinite == 0  # not applicable is not a broken reward
    if graded:
        direct = sum(1 for i in graded if parse_completion(texts[i]).strict_ok  # contract.judge's rule:
                     and (answers[i] == golds[i] or answer_is_correct(answers[i], golds[i], domains[i])))
        assert observation.metrics["accuracy"] == direct / len(graded)
    else:
        assert "accuracy" not in observation.metrics and "hallucination_rate" not in observation.metrics


def test_an_ungraded_answer_pays_the_correct_length_rate_inside_the_contract() -> None:
    long = "<reasoning>" + "word " * 60 + "</reasoning><answer>7</answer>"
    ungraded, _ = scored([long], ["7"], ["none"], ["open"])
    right, _ = scored([long], ["7"], [""])
    wrong, _ = scored([long], ["8"], [""])
    assert ungraded["penalize_length"] == right["penalize_length"] != wrong["penalize_length"]
    assert ungraded["penalize_length"][0] < 0  # still past its budget: length is not free


# ---------------------------------------------------------------- code graded by its tests

ASSERTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"


def answer(code: str) -> str:
    return f"<reasoning>add them</reasoning><answer>{code}</answer>"


def test_code_items_are_graded_by_running_their_asserts_in_the_sandbox(tmp_path: Path) -> None:
    written, kept = tmp_path / "written.txt", tmp_path / "kept.txt"
    kept.write_text("still here")
    programs = {
        "right": "def add(a, b):\n    return a + b",
        "fenced right": "```python\ndef add(a, b):\n    return a + b\n```",
        "wrong": "def add(a, b):\n    return a - b",
        "infinite loop": "def add(a, b):\n    while True:\n        pass",
        "sleeps": "import time\ndef add(a, b):\n    time.sleep(30)\n    return a + b",
        "writes a file": f"import os\nwith open({str(written)!r}, 'w') as f:\n    f.write('x')\n"
                         "def add(a, b):\n    return a + b",
        "os writes a file": f"import os\nfd = os.open({str(written)!r}, os.O_CREAT | os.O_WRONLY)\n"
                            "def add(a, b):\n    return a + b",
        "removes a file": f"import os\nos.remove({str(kept)!r})\ndef add(a, b):\n    return a + b",
        "starts a process": f"import subprocess\nsubprocess.run(['touch', {str(written)!r}])\n"
                            "def add(a, b):\n    return a + b",
        "exits early": "import os\nos._exit(0)",
        "sys.exit": "import sys\nsys.exit(0)",
    }
    started = time.perf_counter()
    _, records = scored([answer(p) for p in programs.values()], [ASSERTS] * len(programs), ["tests"] * len(programs),
                        ["code"] * len(programs))
    seconds = time.perf_counter() - started
    verdicts = dict(zip(programs, records.correct))
    assert verdicts == {name: name.endswith("right") for name in programs}, verdicts
    assert not written.exists() and kept.read_text() == "still here"  # nothing escaped
    assert not any(records.hallucination)  # a failing program is wrong, never a hallucination
    assert seconds < 30  # the loop and the sleep are cut by the limits (1 s CPU, 2 s wall), not waited for


def test_the_sandbox_verdicts_are_cached_and_a_batch_is_one_interpreter() -> None:
    calls: list[int] = []
    dispatcher = RewardDispatcher()

    def counting(cases):  # the real sandbox, counted
        calls.append(len(cases))
        return run_tests(cases)

    dispatcher.grader.run = counting
    fns = dispatcher.reward_fns((RewardSpec("check_answer_strict"),))
    texts = [answer("def add(a, b):\n    return a + b"), answer("def add(a, b):\n    return 0")] * 4
    kwargs = {"answer": np.array([ASSERTS] * 8), "domain": np.array(["code"] * 8), "grading": np.array(["tests"] * 8)}
    assert fns[0](prompts=["q"] * 8, completions=texts, **kwargs) == [1.0, 0.0] * 4
    assert fns[0](prompts=["q"] * 8, completions=list(reversed(texts)), **kwargs) == [0.0, 1.0] * 4
    assert calls == [2]  # two distinct programs, one sandbox call; the second batch from the cache


def test_a_missing_answer_or_a_broken_sandbox_is_never_correct() -> None:
    assert run_tests([("def f(:", "assert True")]) == [False]  # a syntax error
    _, records = scored(["no tags at all"], [ASSERTS], ["tests"], ["code"])
    assert records.correct == [False]
    assert extract_code("```py\nx = 1\n```") == "x = 1" and extract_code(" x = 1 ") == "x = 1"


# ---------------------------------------------------------------- multiple choice

def test_multiple_choice_is_graded_by_the_chosen_letter_or_option() -> None:
    gold = choice_gold("b", "Photosynthesis")
    assert gold == "B" + ANSWER_SEPARATOR + "Photosynthesis"
    for right in ("B", "b", "(B)", "B.", "B) photosynthesis", "Option B", "photosynthesis", "Photosynthesis."):
        assert choice_is_correct(right, gold), right
    for wrong in ("A", "(C)", "C) photosynthesis", "respiration", "a plant", ""):
        assert not choice_is_correct(wrong, gold), wrong
    columns, records = scored(["<reasoning>plants make food</reasoning><answer>B</answer>",
                               "<reasoning>plants make food</reasoning><answer>D</answer>"],
                              [gold, gold], ["choice", "choice"], ["science", "science"])
    assert records.correct == [True, False] and columns["check_answer_strict"] == [1.0, 0.0]


# ---------------------------------------------------------------- per-domain budgets and metrics

def test_per_domain_budgets_move_both_length_rewards_and_the_rambling_threshold() -> None:
    text = "<reasoning>" + "word " * 60 + "</reasoning><answer>7</answer>"  # ~80 tokens
    budgets = {"budget": 20.0, "budget:open": 400.0}
    reward_set = (RewardSpec("light_length_penalty", {**REWARD_PARAMETERS["light_length_penalty"], **budgets}),
                  RewardSpec("penalize_length", {**LENGTH, **budgets}))
    columns, records = scored([text, text], ["7", ""], ["", "none"], ["math", "open"], reward_set)
    assert columns["light_length_penalty"][0] < 0 and columns["light_length_penalty"][1] == 0.0
    assert columns["penalize_length"][0] < 0 and columns["penalize_length"][1] == 0.0
    assert records.rambling == [True, False]  # 80 > 3 x 20 tokens for maths, < 3 x 400 for open-ended


def test_every_watched_figure_has_a_per_domain_metric_named_metric_colon_domain() -> None:
    texts = ["<reasoning>3 + 4 = 7</reasoning><answer>7</answer>", "I cannot help with that.",
             "<reasoning>a</reasoning><answer>A short poem.</answer>", "<reasoning>b</reasoning><answer>B</answer>"]
    _, records = scored(texts, ["7", "7", "", choice_gold("A", "x")], ["", "", "none", "choice"],
                        ["math", "math", "open", "science"])
    metrics = summarize(0, records, group_size=1).metrics
    assert metrics["strict_compliance:math"] == 0.5 and metrics["refusal_rate:math"] == 0.5
    assert metrics["accuracy:math"] == 0.5 and metrics["graded_completions:math"] == 2  # a refusal is graded: wrong
    assert metrics["strict_compliance:open"] == 1.0 and metrics["graded_completions:open"] == 0
    assert "accuracy:open" not in metrics and "hallucination_rate:open" not in metrics
    assert metrics["accuracy:science"] == 0.0 and metrics["graded_completions"] == 3
    assert metrics["accuracy"] == 1 / 3
    for name in ("extraction_rate:open", "mean_length_tokens:open", "rambling_rate:open", "domain_compliance:open"):
        assert name in metrics and is_known_metric(name)
    assert split_domain_metric("refusal_rate:code") == ("refusal_rate", "code")
    assert split_domain_metric("domain_compliance:code") == ("strict_compliance", "code")
    assert is_rate("rambling_rate:code") and not is_rate("mean_length_tokens:code")
    assert not is_known_metric("reward_mean:code") and not is_known_metric("refusal_rate:")


# ---------------------------------------------------------------- held-out report per domain

class _FixedTrainer:
    """Answers each prompt with a fixed completion (a pure-logic stand-in for the generating trainer)."""

    def __init__(self, completions: list[str]) -> None:
        self.completions = completions

    def generate(self, prompts, temperature: float, seed: int) -> list[str]:
        return list(self.completions)


def test_the_held_out_report_is_per_domain_and_its_judge_jsonl_carries_open_ended_items(tmp_path: Path) -> None:
    import json

    from autocurriculum.data import Item
    from autocurriculum.evaluation import OPEN_JUDGE_PROMPT, evaluate_items, write_report

    items = [Item("m-1", "math", "3 + 4?", "3 + 4?", "7"), Item("m-2", "math", "2 + 2?", "2 + 2?", "4"),
             Item("o-1", "open", "Write a line about rain.", "Write a line about rain.", "", "Rain sings.", "none")]
    completions = ["<reasoning>3 + 4 = 7</reasoning><answer>7</answer>", "<reasoning>2 + 2 = 5</reasoning><answer>5</answer>",
                   "<reasoning>short</reasoning><answer>Rain taps the roof all night.</answer>"]
    observation, rows = evaluate_items(_FixedTrainer(completions), RewardDispatcher(), items, 0.0, step=3)
    assert observation.metrics["accuracy"] == 0.5 and observation.metrics["graded_completions"] == 2
    assert observation.metrics["strict_compliance:open"] == 1.0 and "accuracy:open" not in observation.metrics
    report = write_report(tmp_path, 3, {"greedy": rows})
    judged = [json.loads(line) for line in (tmp_path / "judge-greedy.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in judged] == ["correct", "wrong", "answered"]
    open_row = judged[2]
    assert open_row["grading"] == "none" and open_row["reference"] == "Rain sings."
    assert open_row["judge_prompt"].startswith(OPEN_JUDGE_PROMPT.split("\n")[0])
    assert "Rain taps the roof all night." in open_row["judge_prompt"] and "Write a line about rain." in open_row["judge_prompt"]
    assert "Gold answer: 7" in judged[0]["judge_prompt"]
    text = report.read_text()
    assert "| open | 1 | 0 | 1.000 | 1.000 | 0.000 | n/a |" in text and "| math | 2 | 2 |" in text
    assert "| all | 3 | 2 | 1.000 | 1.000 | 0.000 | 0.500 |" in text  # 1 right of 2 graded, not 1 of 3 items
    assert "Judging prompt for open-ended items" in text
