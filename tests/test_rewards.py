"""The five rewards: values per kind of completion, one parse per batch, never a NaN."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.observation import summarize
from autocurriculum.policy import RewardSpec
from autocurriculum.rewards import REWARD_PARAMETERS, RewardDispatcher

PHASE2 = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("check_answer_strict"),
          RewardSpec("penalize_length"))
PHASE1 = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("light_length_penalty"))
LONG_REASONING = " ".join(["step"] * 200)
CASES = {
    "formatted correct": "<reasoning>3 + 4 = 7</reasoning><answer>7</answer>",
    "formatted wrong": "<reasoning>3 + 4 = 8</reasoning><answer>8</answer>",
    "unformatted correct": "3 + 4 = 7. The answer is 7.",
    "refused": "I cannot help with that.",
    "rambling": "Well, let me think. <reasoning>3 + 4 = 7</reasoning><answer>7</answer> Done!",
    "verbose wrong": f"<reasoning>{LONG_REASONING}</reasoning><answer>9</answer>",
    "verbose correct": f"<reasoning>{LONG_REASONING}</reasoning><answer>7</answer>",
    "empty": "",
    "unicode": "<reasoning>３ + ４ = ７ ✓ 🍎</reasoning><answer>7</answer>",
    "very long": "x" * 100_000,
}


def score(texts: list[str], reward_set=PHASE2, gold: str = "7") -> dict[str, list[float]]:
    dispatcher = RewardDispatcher()
    fns = dispatcher.reward_fns(reward_set)
    n = len(texts)
    kwargs = {"answer": np.array([gold] * n), "domain": np.array(["math"] * n)}
    return {fn.__name__: fn(prompts=["q"] * n, completions=texts, **kwargs) for fn in fns}


def one(case: str, reward_set=PHASE2) -> dict[str, float]:
    return {name: values[0] for name, values in score([CASES[case]], reward_set).items()}


def test_formatted_correct_earns_the_gate_and_correctness() -> None:
    assert one("formatted correct") == {"punish_refusal": 0.0, "strict_format_gate": 0.5, "check_answer_strict": 1.0,
                                        "penalize_length": 0.0}


def test_unformatted_correct_answer_gets_the_gate_penalty_and_no_credit() -> None:
    got = one("unformatted correct")
    assert got["strict_format_gate"] == -1.0 and got["check_answer_strict"] == 0.0


def test_refusal_is_punished_and_fails_the_gate() -> None:
    got = one("refused")
    assert got["punish_refusal"] == -1.0 and got["strict_format_gate"] == -1.0


def test_rambling_outside_the_tags_fails_the_gate() -> None:
    assert one("rambling")["strict_format_gate"] == -1.0


def test_length_penalty_is_stronger_on_verbose_wrong_answers() -> None:
    wrong, right = one("verbose wrong")["penalize_length"], one("verbose correct")["penalize_length"]
    assert wrong < right < 0
    assert wrong == pytest.approx(-1.0)  # floored
    light = one("verbose wrong", PHASE1)["light_length_penalty"]
    assert -0.5 <= light < 0


def test_formatted_wrong_gets_no_correctness() -> None:
    got = one("formatted wrong")
    assert got["check_answer_strict"] == 0.0 and got["strict_format_gate"] == 0.5


@pytest.mark.parametrize("case", ["empty", "unicode", "very long"])
def test_edge_cases_give_finite_values(case: str) -> None:
    got = one(case)
    assert all(math.isfinite(v) for v in got.values())
    if case == "empty":
        assert got["strict_format_gate"] == -1.0
    if case == "unicode":
        assert got["strict_format_gate"] == 0.5


def test_policy_parameters_override_the_defaults() -> None:
    spec = (RewardSpec("strict_format_gate", {"fail": -3.0, "pass": 0.0}),)
    assert score([CASES["refused"], CASES["formatted correct"]], spec)["strict_format_gate"] == [-3.0, 0.0]


def test_every_reward_parameter_is_a_float() -> None:
    assert all(isinstance(v, float) for params in REWARD_PARAMETERS.values() for v in params.values())


def test_a_batch_is_parsed_once_and_recorded_once() -> None:
    batches: list[list] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    fns = dispatcher.reward_fns(PHASE2)
    texts = [CASES["formatted correct"], CASES["refused"]]
    kwargs = {"answer": np.array(["7", "7"]), "domain": np.array(["math", "math"])}
    for fn in fns:
        fn(prompts=["q", "q"], completions=texts, **kwargs)
    assert len(batches) == 1 and len(batches[0]) == 2
    assert batches[0][0].rewards == {"punish_refusal": 0.0, "strict_format_gate": 0.5, "check_answer_strict": 1.0,
                                     "penalize_length": 0.0}
    other = list(texts)  # a new batch object is a new batch
    fns[0](prompts=["q", "q"], completions=other, **kwargs)
    assert len(batches) == 2


def test_swapping_the_reward_set_changes_the_functions_not_a_global() -> None:
    dispatcher = RewardDispatcher()
    first, second = dispatcher.reward_fns(PHASE1), dispatcher.reward_fns(PHASE2)
    assert [f.__name__ for f in first] == [s.name for s in PHASE1]
    assert [f.__name__ for f in second] == [s.name for s in PHASE2]


def test_records_roll_up_into_group_learnability() -> None:
    records: list = []
    dispatcher = RewardDispatcher(on_batch=lambda batch, seconds: records.extend(batch))
    texts = [CASES["formatted correct"]] * 2 + [CASES["formatted correct"], CASES["refused"]]
    fn = dispatcher.reward_fns(PHASE2)[0]
    fn(prompts=["a", "a", "b", "b"], completions=texts, answer=np.array(["7"] * 4), domain=np.array(["math"] * 4))
    obs = summarize(1, records, group_size=2)
    assert obs.metrics["learnable_group_ratio"] == 0.5  # group a: equal rewards, group b: differ
    assert obs.metrics["refusal_rate"] == 0.25
    assert obs.metrics["accuracy"] == 0.75
    assert obs.metrics["mean_abs_advantage"] == pytest.approx(0.5, abs=1e-5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=300), min_size=1, max_size=6), st.text(max_size=20))
def test_no_nan_or_non_number_ever_leaves_a_reward_function(texts: list[str], gold: str) -> None:
    for values in score(texts, PHASE1 + PHASE2[2:], gold=gold).values():
        assert len(values) == len(texts)
        assert all(isinstance(v, float) and math.isfinite(v) for v in values)
