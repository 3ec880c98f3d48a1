"""The five rewards: values per kind of completion, one parse per batch, Tunix's calling convention, never a NaN."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.contract import approximate_tokens
from autocurriculum.observation import CompletionRecord, RecordBatch, summarize
from autocurriculum.policy import RewardSpec
from autocurriculum.rewards import REWARD_PARAMETERS, RewardDispatcher

PHASE1 = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("light_length_penalty"))
PHASE2 = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("check_answer_strict"),
          RewardSpec("penalize_length"))
ALL_FIVE = tuple(RewardSpec(name) for name in REWARD_PARAMETERS)
LONG_REASONING = " ".join(["step"] * 50)  # about 75 tokens: past the budget, not at the floor when right
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
    "very long": "<reasoning>" + "x" * 100_000 + "</reasoning><answer>7</answer>",
}
GATE = REWARD_PARAMETERS["strict_format_gate"]
LIGHT = REWARD_PARAMETERS["light_length_penalty"]
LENGTH = REWARD_PARAMETERS["penalize_length"]


def score(texts: list[str], reward_set=ALL_FIVE, gold: str = "7") -> dict[str, list[float]]:
    fns = RewardDispatcher().reward_fns(reward_set)
    n = len(texts)
    kwargs = {"answer": np.array([gold] * n), "domain": np.array(["math"] * n)}
    return {fn.__name__: fn(prompts=["q"] * n, completions=texts, **kwargs) for fn in fns}


def one(case: str) -> dict[str, float]:
    return {name: values[0] for name, values in score([CASES[case]]).items()}


def excess(case: str, budget: float) -> float:
    return max(0.0, approximate_tokens(CASES[case]) - budget)


# ---------------------------------------------------------------- values per kind of completion


def test_formatted_correct_passes_the_gate_and_earns_correctness() -> None:
    assert one("formatted correct") == {"punish_refusal": 0.0, "strict_format_gate": GATE["pass"],
                                        "light_length_penalty": 0.0, "check_answer_strict": 1.0, "penalize_length": 0.0}


def test_formatted_wrong_passes_the_gate_and_earns_nothing_for_the_answer() -> None:
    got = one("formatted wrong")
    assert got["strict_format_gate"] == GATE["pass"] and got["check_answer_strict"] == 0.0
    assert got["punish_refusal"] == 0.0


def test_unformatted_correct_answer_gets_the_gate_penalty_and_no_credit() -> None:
    got = one("unformatted correct")
    assert got["strict_format_gate"] == GATE["fail"] and got["check_answer_strict"] == 0.0
    assert got["punish_refusal"] == 0.0


def test_refusal_is_punished_and_fails_the_gate() -> None:
    got = one("refused")
    assert got["punish_refusal"] == -1.0 and got["strict_format_gate"] == GATE["fail"]
    assert got["check_answer_strict"] == 0.0


def test_rambling_outside_the_tags_fails_the_gate_and_earns_no_credit_even_when_right() -> None:
    got = one("rambling")
    assert got["strict_format_gate"] == GATE["fail"] and got["check_answer_strict"] == 0.0


def test_length_penalties_follow_the_documented_formula_and_are_stronger_on_wrong_answers() -> None:
    wrong, right = one("verbose wrong"), one("verbose correct")
    assert right["penalize_length"] == pytest.approx(
        max(LENGTH["floor"], LENGTH["per_token_correct"] * excess("verbose correct", LENGTH["budget"])))
    assert wrong["penalize_length"] == pytest.approx(
        max(LENGTH["floor"], LENGTH["per_token_wrong"] * excess("verbose wrong", LENGTH["budget"])))
    assert wrong["penalize_length"] < right["penalize_length"] < 0
    assert wrong["light_length_penalty"] == pytest.approx(
        max(LIGHT["floor"], LIGHT["per_token"] * excess("verbose wrong", LIGHT["budget"])))
    assert one("formatted correct")["light_length_penalty"] == 0.0  # within the budget


def test_a_right_answer_never_scores_below_a_wrong_one_whatever_the_lengths() -> None:
    totals = {case: sum(one(case)[r.name] for r in PHASE2) for case in ("verbose correct", "formatted wrong")}
    assert totals["verbose correct"] >= totals["formatted wrong"]


def test_empty_completion_fails_the_gate_but_is_no_refusal() -> None:
    got = one("empty")
    assert got["strict_format_gate"] == GATE["fail"] and got["punish_refusal"] == 0.0
    assert got["light_length_penalty"] == 0.0


def test_unicode_reasoning_keeps_the_contract() -> None:
    got = one("unicode")
    assert got["strict_format_gate"] == GATE["pass"] and got["check_answer_strict"] == 1.0


def test_very_long_completion_is_floored_not_unbounded() -> None:
    got = one("very long")
    assert got["light_length_penalty"] == LIGHT["floor"] and got["penalize_length"] == LENGTH["floor"]
    assert got["check_answer_strict"] == 1.0


def test_a_phase_one_group_gets_graded_signal() -> None:
    texts = [CASES["formatted correct"], CASES["unformatted correct"], CASES["refused"], CASES["verbose correct"]]
    columns = score(texts, PHASE1)
    totals = [sum(values) for values in zip(*columns.values())]
    assert len(set(totals)) == 4  # every completion earns a different reward: GRPO can learn
    assert max(totals) == totals[0] and min(totals) == totals[2]  # compliant best, refusal worst


# ---------------------------------------------------------------- parameters


def test_policy_parameters_override_the_defaults() -> None:
    spec = (RewardSpec("strict_format_gate", {"fail": -3.0, "pass": 0.0}),)
    assert score([CASES["refused"], CASES["formatted correct"]], spec)["strict_format_gate"] == [-3.0, 0.0]


def test_every_reward_has_float_parameters() -> None:
    assert sorted(REWARD_PARAMETERS) == sorted(
        ["punish_refusal", "strict_format_gate", "light_length_penalty", "check_answer_strict", "penalize_length"])
    assert all(isinstance(v, float) for params in REWARD_PARAMETERS.values() for v in params.values())


def test_unknown_reward_or_non_finite_parameter_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown reward function 'punish_refusals'"):
        RewardDispatcher().reward_fns((RewardSpec("punish_refusals"),))
    with pytest.raises(ValueError, match="'penalty' must be a finite number"):
        RewardDispatcher().reward_fns((RewardSpec("punish_refusal", {"penalty": math.nan}),))


# ---------------------------------------------------------------- the dispatcher and Tunix's convention


def as_tunix(dispatcher: RewardDispatcher, fns: list, prompts: list[str], completions: list[str], *,
             copy_per_function: bool = False, **columns: object) -> list[list[float]]:
    """One batch the way Tunix's GRPO learner handles it: each reward function, then the metric hook once."""
    values = [fn(prompts=prompts, completions=list(completions) if copy_per_function else completions, **columns)
              for fn in fns]
    totals = np.nansum(np.asarray(values, dtype=float), axis=0)
    dispatcher.observe_batch(prompts=prompts, completions=completions, rewards=totals, advantages=None, **columns)
    return values


@pytest.mark.parametrize("copy_per_function", [False, True], ids=["one list (Tunix 0.1.7)", "a copy per function"])
def test_a_batch_is_parsed_once_and_recorded_once(copy_per_function: bool) -> None:
    counted: list[str] = []
    batches: list[list[CompletionRecord]] = []

    def count_tokens(texts: list[str]) -> list[int]:
        counted.extend(texts)
        return [len(text.split()) for text in texts]

    dispatcher = RewardDispatcher(count_tokens=count_tokens, on_batch=lambda records, seconds: batches.append(records))
    fns = dispatcher.reward_fns(ALL_FIVE)
    texts = [CASES["formatted correct"], CASES["refused"]]
    kwargs = {"answer": np.array(["7", "7"]), "domain": np.array(["math", "math"])}
    columns = as_tunix(dispatcher, fns, ["q", "q"], texts, copy_per_function=copy_per_function, **kwargs)
    assert len(counted) == 2  # five functions, one parse (and one count) per completion
    assert len(batches) == 1 and len(batches[0]) == 2  # one record per completion, emitted once
    assert [dict(r.rewards) for r in batches[0]] == [dict(zip(REWARD_PARAMETERS, row)) for row in zip(*columns)]
    as_tunix(dispatcher, fns, ["q", "q"], list(texts), **kwargs)  # the next batch, equal texts: its own records
    assert len(batches) == 2 and len(counted) == 4


def test_reward_calls_alone_emit_nothing_the_hook_emits_once_with_the_trainers_advantages() -> None:
    batches: list[RecordBatch] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    fns = dispatcher.reward_fns(PHASE1)
    texts = [CASES["formatted correct"], CASES["refused"], CASES["rambling"], CASES["formatted correct"]]
    for fn in fns:
        fn(prompts=["q"] * 4, completions=list(texts))
    assert batches == []
    dispatcher.observe_batch(prompts=["q"] * 4, completions=texts, rewards=np.zeros(4),
                             advantages=np.array([1.5, -0.5, -0.5, -0.5]))
    assert len(batches) == 1 and batches[0].advantages == [1.5, -0.5, -0.5, -0.5]
    observation = summarize(1, batches[0], group_size=2)
    assert observation.metrics["learnable_group_ratio"] == 1.0  # both groups carry a non-zero advantage
    assert observation.metrics["mean_abs_advantage"] == 0.75  # read from the trainer, not recomputed


def test_records_say_what_the_model_emitted() -> None:
    batches: list[list[CompletionRecord]] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    texts = [CASES["formatted correct"], CASES["refused"], CASES["rambling"], "<reasoning>x</reasoning><answer>12</answer>"]
    as_tunix(dispatcher, dispatcher.reward_fns(PHASE2), ["q"] * 4, texts, answer=np.array(["7"] * 4),
             domain=np.array(["math"] * 4))
    good, refused, rambling, invented = batches[0]
    assert (good.contract_ok, good.extracted, good.correct, good.rambling, good.hallucination) == (True, True, True, False, False)
    assert (refused.refused, refused.extracted, refused.correct) == (True, False, False)
    assert (rambling.rambling, rambling.contract_ok, rambling.correct) == (True, False, True)
    assert (invented.correct, invented.hallucination) == (False, True)
    assert all(r.domain == "math" for r in batches[0])


def test_without_domain_or_gold_columns_items_are_math_and_ungraded() -> None:
    batches: list[list[CompletionRecord]] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    fns = dispatcher.reward_fns(PHASE2)
    values = dict(zip((fn.__name__ for fn in fns), as_tunix(dispatcher, fns, ["q"], [CASES["formatted correct"]])))
    assert batches[0][0].domain == "math" and batches[0][0].correct is None
    assert math.isnan(values["check_answer_strict"][0])  # no gold: not applicable (Tunix's nansum adds nothing)
    assert "check_answer_strict" not in batches[0][0].rewards  # the record holds no value, not a broken one


def test_other_domains_are_judged_by_their_own_rule() -> None:
    batches: list[list[CompletionRecord]] = []
    dispatcher = RewardDispatcher(on_batch=lambda records, seconds: batches.append(records))
    texts = ["<reasoning>print(2*3)</reasoning><answer>6\n</answer>", "<reasoning>capital</reasoning><answer>paris.</answer>"]
    as_tunix(dispatcher, dispatcher.reward_fns(PHASE2), ["q", "q"], texts, answer=np.array(["6", "Lyon\x1fParis"]),
             domain=np.array(["code", "qa"]))
    assert [r.correct for r in batches[0]] == [True, True]
    assert [r.domain for r in batches[0]] == ["code", "qa"]


def test_a_column_of_the_wrong_length_is_a_clear_error() -> None:
    fn = RewardDispatcher().reward_fns(PHASE1)[0]
    with pytest.raises(ValueError, match="'answer' has 1 values for 2 completions"):
        fn(["q", "q"], ["a", "b"], answer=np.array(["7"]))


def test_functions_carry_the_reward_name_and_tunix_signature() -> None:
    fns = RewardDispatcher().reward_fns(PHASE2)
    assert [fn.__name__ for fn in fns] == [spec.name for spec in PHASE2]
    parameters = inspect.signature(fns[0]).parameters  # what Tunix's reward manager inspects
    assert list(parameters)[:2] == ["prompts", "completions"]
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_each_set_of_functions_keeps_its_own_rewards_no_global() -> None:
    dispatcher = RewardDispatcher()
    strict = dispatcher.reward_fns((RewardSpec("strict_format_gate", {"fail": -5.0, "pass": 1.0}),))
    lenient = dispatcher.reward_fns((RewardSpec("strict_format_gate", {"fail": -0.1, "pass": 0.1}),))
    texts = [CASES["refused"]]
    assert strict[0](["q"], texts) == [-5.0]
    assert lenient[0](["q"], texts) == [-0.1]  # same batch object, other set: scored with its own parameters
    assert strict[0](["q"], texts) == [-5.0]  # and the first set is unchanged


def test_observe_gives_the_records_of_the_reward_call() -> None:
    texts = [CASES["formatted correct"], CASES["formatted wrong"]]
    records = RewardDispatcher().observe(texts, ["7", "7"], ["math", "math"], PHASE2)
    assert [r.correct for r in records] == [True, False]
    assert [r.rewards["check_answer_strict"] for r in records] == [1.0, 0.0]


# ---------------------------------------------------------------- never a NaN

TEXT = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["<reasoning>", "</reasoning>", "<answer>", "</answer>",
                                                                    "I cannot help", "7", "\x00", "’"])),
                max_size=10).map("".join)
HUGE = (RewardSpec("light_length_penalty", {"per_token": 1e308, "budget": 0.0, "floor": -1e308}),
        RewardSpec("penalize_length", {"per_token_correct": 1e308, "per_token_wrong": -1e308, "budget": 0.0,
                                       "floor": -1e308}))


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=6), st.text(max_size=20), st.booleans())
def test_no_nan_or_non_number_ever_leaves_a_reward_function(texts: list[str], gold: str, huge: bool) -> None:
    seen_gold = str(np.array([gold])[0])  # what the rewards receive: numpy's strings drop trailing NULs ('\x00' -> '')
    for name, values in score(texts, ALL_FIVE + (HUGE if huge else ()), gold=gold).items():
        assert len(values) == len(texts)
        if name == "check_answer_strict" and not seen_gold:  # ungraded: Tunix's "not applicable", nothing else
            assert all(type(v) is float and math.isnan(v) for v in values)
        else:
            assert all(type(v) is float and math.isfinite(v) for v in values)
