"""decide(): build a state, step once, assert; and the curriculum's rules as properties over
arbitrary observation sequences and operator inputs. The policy is built from policy.py's
dataclasses (three phases, the middle transition split into data then rewards)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autocurriculum.controller import (
    STATE_SCHEMA_VERSION,
    StateFormatError,
    COLLAPSE_EMPTY_RATE,
    collapse_distinct_floor,
    GUARD_Z,
    ActionKind,
    ControllerState,
    GuardLevel,
    Judgement,
    Reason,
    decide,
    initial_state,
    needs_phase1,
    status_fields,
    window_sizes,
)
from autocurriculum.observation import StepObservation
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.plateau import Window
from autocurriculum.policy import (
    BudgetAction,
    Comparison,
    Criterion,
    EvalSpec,
    ExitGate,
    Factor,
    GuardSpec,
    JudgementSpec,
    MetricsSpec,
    Mixture,
    MixtureComponent,
    ModelSpec,
    PhaseSpec,
    PlateauSpec,
    PlateauTest,
    Policy,
    RewardSpec,
    RunSpec,
    SourceSpec,
    SubsetSpec,
    TrainingSpec,
    expand_plan,
)

WINDOW = 5
GRACE = 2
SETTLE = 8
BEHAVIOUR_REWARDS = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("light_length_penalty"))
CORRECT_REWARDS = (RewardSpec("punish_refusal"), RewardSpec("strict_format_gate"), RewardSpec("check_answer_strict"),
                   RewardSpec("penalize_length"))


def trend(metric: str) -> PlateauSpec:
    return PlateauSpec(metric, PlateauTest.TREND, window=WINDOW, epsilon=0.05, noise_multiplier=3.0)


def make_policy(budget: BudgetAction = BudgetAction.HOLD, max_steps: int = 200, max_rollbacks: int = 2) -> Policy:
    sources = {
        "arithmetic": SourceSpec("arithmetic", "arithmetic", "math"),
        "code": SourceSpec("code", "code", "code"),
        "qa": SourceSpec("qa", "qa", "qa"),
    }
    behaviour = PhaseSpec(
        name="behaviour",
        mixture=Mixture((MixtureComponent("arithmetic", 1.0, SubsetSpec(0.0, 0.3)),)),
        rewards=BEHAVIOUR_REWARDS,
        criteria=(Criterion("extraction_rate", Comparison.GE, 0.95), Criterion("refusal_rate", Comparison.LE, 0.02)),
        plateau=(trend("extraction_rate"),
                 PlateauSpec("mean_length_tokens", PlateauTest.STABLE_LEVEL, window=WINDOW, max_cv=0.25)),
        max_steps=max_steps,
        on_budget_exhausted=budget,
    )
    correctness = PhaseSpec(
        name="correctness",
        mixture=Mixture((MixtureComponent("arithmetic", 1.0),)),
        rewards=CORRECT_REWARDS,
        criteria=(Criterion("extraction_rate", Comparison.GE, 0.9),),
        plateau=(trend("accuracy"),),
        max_steps=max_steps,
        on_budget_exhausted=budget,
    )
    generalisation = PhaseSpec(
        name="generalisation",
        mixture=Mixture((MixtureComponent("arithmetic", 0.5), MixtureComponent("code", 0.25), MixtureComponent("qa", 0.25))),
        rewards=CORRECT_REWARDS,
        criteria=(Criterion("domain_compliance:code", Comparison.GE, 0.8),),
        plateau=(trend("domain_compliance:code"),),
        max_steps=max_steps,
        on_budget_exhausted=budget,
        terminal=True,
    )
    return Policy(
        file="hand-built.toml",
        run=RunSpec(),
        model=ModelSpec(),
        training=TrainingSpec(prompts_per_step=4, generations_per_prompt=4),
        metrics=MetricsSpec(window=WINDOW),
        judgement=JudgementSpec(
            grace_steps=GRACE,
            guards=(GuardSpec("extraction_rate", 0.15), GuardSpec("refusal_rate", 0.10, higher_is_better=False)),
            persist_windows=2,
            judge_steps=20,
            max_rollbacks=max_rollbacks,
            settle_steps=SETTLE,
        ),
        eval=EvalSpec(),
        sources=sources,
        phases=(behaviour, correctness, generalisation),
    )


POLICY = make_policy()
PLAN = expand_plan(POLICY)
GOOD = {
    "extraction_rate": 1.0, "strict_compliance": 1.0, "refusal_rate": 0.0, "mean_length_tokens": 15.0,
    "accuracy": 0.5, "empty_completion_rate": 0.0, "distinct_completion_ratio": 1.0, "learnable_group_ratio": 0.5,
    "domain_compliance:code": 1.0, "domain_compliance:qa": 1.0,
}


def test_the_hand_built_plan_has_one_factor_per_step() -> None:
    assert [(s.label, s.changes, s.exit_gate) for s in PLAN] == [
        ("behaviour", Factor.NONE, ExitGate.PHASE_CRITERIA),
        ("correctness/a", Factor.DATA, ExitGate.SETTLE),
        ("correctness/b", Factor.REWARDS, ExitGate.PHASE_CRITERIA),
        ("generalisation", Factor.DATA, ExitGate.TERMINAL),
    ]


def obs(step: int = 1, nonfinite: int = 0, **metrics: float) -> StepObservation:
    return StepObservation(step, 16, {**GOOD, **metrics}, nonfinite=nonfinite)


def settled(plan_step: int = 0, policy: Policy = POLICY, steps_in_step: int = 30, **metrics: float) -> ControllerState:
    """A state whose windows are full of the same observation, well past the grace period."""
    values = {**GOOD, **metrics}
    windows = {name: Window.of(size, [values[name]] * size)
               for name, size in window_sizes(policy, expand_plan(policy)).items() if name in values}
    return ControllerState(plan_step=plan_step, steps_in_step=steps_in_step, step=100, windows=windows,
                           phase1_done=plan_step > 0)


def req(seq: int, command: Command, phase: str = "") -> OperatorRequest:
    return OperatorRequest(seq, command, phase, reason="test")


# ---------------------------------------------------------------- automatic switching


def test_criteria_and_plateau_advance_phase_one_by_swapping_data_only() -> None:
    decision = decide(POLICY, PLAN, settled(0), obs())
    assert (decision.action.kind, decision.action.factor) == (ActionKind.SWAP_DATA, Factor.DATA)
    assert (decision.action.from_step, decision.action.to_step) == (0, 1)
    assert decision.reason is Reason.CRITERIA_AND_PLATEAU
    assert decision.evidence["criteria"]["extraction_rate"] == {
        "value": 1.0, "comparison": ">=", "threshold": 0.95, "source": "rollout", "holds": True}
    assert all(p["plateaued"] for p in decision.evidence["plateau"].values())
    after = decision.state
    assert after.phase1_done and after.plan_step == 1 and after.steps_in_step == 0 and after.windows == {}
    assert after.judgement is not None and after.judgement.baseline["extraction_rate"].level == 1.0
    assert after.history[-1].reason == "criteria_and_plateau"


def test_a_failing_criterion_blocks_a_plateau() -> None:
    decision = decide(POLICY, PLAN, settled(0, extraction_rate=0.8), obs(extraction_rate=0.8))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.WAITING
    assert decision.evidence["criteria"]["extraction_rate"]["holds"] is False
    assert not decision.state.phase1_done


def test_met_criteria_do_not_advance_while_still_rising() -> None:
    state = settled(0)
    windows = dict(state.windows)
    windows["mean_length_tokens"] = Window.of(WINDOW, [10.0, 15.0, 22.0, 30.0, 40.0])  # CV far above 0.25
    decision = decide(POLICY, PLAN, replace(state, windows=windows), obs(mean_length_tokens=50.0))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.WAITING
    assert decision.evidence["plateau"]["mean_length_tokens"]["plateaued"] is False
    assert decision.state.phase1_done  # the criteria did hold: that is recorded even without a plateau


def test_nothing_is_judged_or_even_recorded_in_the_grace_period() -> None:
    state = replace(settled(1), steps_in_step=0)
    decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.0))
    assert decision.reason is Reason.GRACE and decision.action.kind is ActionKind.NONE
    assert decision.state.windows == state.windows


def test_the_grace_period_is_exactly_grace_steps_long() -> None:
    last_grace = decide(POLICY, PLAN, replace(settled(0), steps_in_step=GRACE - 1), obs())
    assert last_grace.reason is Reason.GRACE and last_grace.state.steps_in_step == GRACE
    first_judged = decide(POLICY, PLAN, replace(settled(0), steps_in_step=GRACE), obs())
    assert first_judged.reason is Reason.CRITERIA_AND_PLATEAU


def test_a_settle_step_swaps_the_rewards_once_settled() -> None:
    decision = decide(POLICY, PLAN, settled(1, steps_in_step=SETTLE - 1), obs())
    assert (decision.action.kind, decision.action.to_step) == (ActionKind.SWAP_REWARDS, 2)
    assert decision.reason is Reason.SETTLED and decision.action.factor is Factor.REWARDS


def test_a_settle_step_waits_for_settle_steps() -> None:
    decision = decide(POLICY, PLAN, settled(1, steps_in_step=SETTLE - 2), obs())
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.WAITING


def test_a_settle_step_waits_for_a_guard_verdict() -> None:
    pending = Judgement(0, 1, {"extraction_rate": GuardLevel(1.0, 0.0, WINDOW)})
    decision = decide(POLICY, PLAN, replace(settled(1, steps_in_step=SETTLE), judgement=pending), obs())
    assert decision.action.kind is ActionKind.NONE  # settle_steps passed, but no guard window judged yet


def test_a_settle_step_never_builds_on_a_guard_regressed_right_now() -> None:
    # the last judged window was clean, but the current one has fallen far below the level before the switch
    pending = Judgement(0, 1, {"extraction_rate": GuardLevel(1.0, 0.0, WINDOW)}, windows_judged=1)
    state = replace(settled(1, steps_in_step=SETTLE + 1, extraction_rate=0.3), judgement=pending)
    decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.3))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.REGRESSION_PENDING
    assert "guard_regression" in decision.evidence["alerts"]


def test_collapse_blocks_advancing_and_raises_an_alert() -> None:
    decision = decide(POLICY, PLAN, settled(0), obs(empty_completion_rate=COLLAPSE_EMPTY_RATE))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.BLOCKED
    assert "collapse" in decision.evidence["alerts"]
    assert not decision.state.phase1_done  # a collapsed model never counts as meeting the criteria


def test_a_collapse_earlier_in_the_window_still_blocks() -> None:
    state = settled(0)
    windows = dict(state.windows)
    windows["distinct_completion_ratio"] = Window.of(WINDOW, [1.0, 3 / 16, 1.0, 1.0])
    decision = decide(POLICY, PLAN, replace(state, windows=windows), obs())
    assert decision.reason is Reason.BLOCKED and "collapse" not in decision.evidence["alerts"]


def collapse_run(policy: Policy, state: ControllerState, steps: int, **metrics: float) -> list:
    decisions = []
    for _ in range(steps):
        decision = decide(policy, PLAN, state, obs(**{"empty_completion_rate": 0.9, **metrics}))
        decisions.append(decision)
        state = decision.state
    return decisions


def test_a_lasting_collapse_restores_the_checkpoint_before_it_then_holds() -> None:
    patience, limit = POLICY.judgement.collapse_patience, POLICY.judgement.max_restores
    start = settled(3)
    decisions = collapse_run(POLICY, start, patience * (limit + 1))
    kinds = [d.action.kind for d in decisions]
    restores = [i for i, kind in enumerate(kinds) if kind is ActionKind.RESTORE]
    assert restores == [patience * (k + 1) - 1 for k in range(limit)]  # after each `patience` collapsed steps
    first = decisions[restores[0]]
    assert first.reason is Reason.COLLAPSE_RESTORE
    assert first.action.before_step == start.step + 1  # the step the collapse began at
    assert first.action.from_step == first.action.to_step == 3 and first.action.factor is Factor.NONE
    assert first.state.steps_in_step == 0 and not first.state.windows and first.state.restores == 1
    assert first.to_json()["before_step"] == start.step + 1
    assert decisions[restores[1]].action.before_step == start.step + patience + 1
    last = decisions[-1]
    assert last.action.kind is ActionKind.HOLD and last.reason is Reason.COLLAPSE_LIMIT_HOLD
    assert last.state.hold and f"max_restores {limit}" in last.state.hold_reason
    assert all(d.action.kind is ActionKind.NONE for i, d in enumerate(decisions[:-1]) if i not in restores)


def test_a_clean_step_ends_the_collapse_streak() -> None:
    patience = POLICY.judgement.collapse_patience
    state = collapse_run(POLICY, settled(3), patience - 1)[-1].state
    state = decide(POLICY, PLAN, state, obs()).state
    assert state.collapse_streak == 0
    assert all(d.action.kind is not ActionKind.RESTORE for d in collapse_run(POLICY, state, patience - 1))


def test_no_restore_while_held_or_when_disabled() -> None:
    held = replace(settled(3), hold=True, hold_reason="operator")
    assert all(d.action.kind is ActionKind.NONE for d in collapse_run(POLICY, held, 12))
    never = replace(POLICY, judgement=replace(POLICY.judgement, collapse_patience=0))
    assert all(d.action.kind is ActionKind.NONE for d in collapse_run(never, settled(3), 12))


def test_nonfinite_rewards_are_counted_never_judged() -> None:
    state = settled(0)
    decision = decide(POLICY, PLAN, state, obs(nonfinite=3))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.BLOCKED
    assert decision.state.windows == state.windows  # the step's figures were not recorded
    assert decision.state.nonfinite_total == 3
    assert "nonfinite_rewards" in decision.evidence["alerts"]


def test_a_nan_metric_is_dropped_counted_and_blocks_the_step() -> None:
    decision = decide(POLICY, PLAN, settled(0), obs(extraction_rate=math.nan))
    assert decision.reason is Reason.BLOCKED and "nonfinite_metrics" in decision.evidence["alerts"]
    assert decision.state.windows["extraction_rate"].dropped == 1
    assert decision.state.windows["refusal_rate"].count == WINDOW


def test_phase_three_waits_for_phase_ones_criteria() -> None:
    state = replace(settled(2), phase1_done=False)  # got here by budget or operator, never by criteria
    decision = decide(POLICY, PLAN, state, obs())
    assert decision.action.kind is ActionKind.HOLD and decision.reason is Reason.PHASE1_NOT_DONE
    assert decision.state.plan_step == 2 and decision.state.hold
    assert needs_phase1(POLICY, PLAN, 3) and not needs_phase1(POLICY, PLAN, 2)


def test_the_terminal_step_finishes_the_run() -> None:
    decision = decide(POLICY, PLAN, settled(3), obs())
    assert decision.action.kind is ActionKind.DONE and decision.reason is Reason.CRITERIA_AND_PLATEAU
    assert decision.state.done and decision.state.plan_step == 3
    after = decide(POLICY, PLAN, decision.state, obs())
    assert after.action.kind is ActionKind.NONE and after.reason is Reason.DONE


def test_budget_hold_fires_once_and_says_why() -> None:
    policy = make_policy(max_steps=40)
    state = settled(0, policy, steps_in_step=39, extraction_rate=0.5)
    decision = decide(policy, expand_plan(policy), state, obs(extraction_rate=0.5))
    assert decision.action.kind is ActionKind.HOLD and decision.reason is Reason.BUDGET_HOLD
    assert "budget of 40 steps" in decision.state.hold_reason and "budget_exhausted" in decision.evidence["alerts"]
    resumed = decide(policy, expand_plan(policy), decision.state, obs(extraction_rate=0.5), [req(1, Command.RESUME)])
    assert not resumed.state.hold and resumed.reason is Reason.OPERATOR_RESUME  # not re-held at once


def test_budget_advance_moves_on_and_says_so() -> None:
    policy = make_policy(BudgetAction.ADVANCE, max_steps=40)
    state = settled(0, policy, steps_in_step=39, extraction_rate=0.5)
    decision = decide(policy, expand_plan(policy), state, obs(extraction_rate=0.5))
    assert decision.action.kind is ActionKind.SWAP_DATA and decision.reason is Reason.BUDGET_EXHAUSTED
    assert not decision.state.phase1_done


# ---------------------------------------------------------------- post-switch judgement


def judged(now: float, regressed_windows: int = 0, rollbacks: dict[int, int] | None = None,
           policy: Policy = POLICY) -> ControllerState:
    """Plan step 2 (the reward swap) under judgement, at the end of a full window after the grace period."""
    baseline = {"extraction_rate": GuardLevel(0.95, 0.0, WINDOW), "refusal_rate": GuardLevel(0.0, 0.0, WINDOW)}
    state = settled(2, policy, steps_in_step=GRACE + WINDOW - 1, extraction_rate=now, accuracy=0.5)
    return replace(state, judgement=Judgement(1, 2, baseline, windows_judged=regressed_windows,
                                              regressed_windows=regressed_windows), rollbacks=rollbacks or {})


def test_a_drop_within_the_noise_is_not_a_regression() -> None:
    now = 0.78  # 0.17 below 0.95: beyond max_drop 0.15, but not beyond it by the noise
    decision = decide(POLICY, PLAN, judged(now), obs(extraction_rate=now))
    pooled = (0.95 + now) / 2
    se = math.sqrt(pooled * (1 - pooled) / 16 * (1 / WINDOW + 1 / WINDOW))
    guard = decision.evidence["guards"]["extraction_rate"]
    assert guard["bound"] == pytest.approx(0.15 + GUARD_Z * se, abs=1e-6)
    assert guard["regressed"] is False
    assert decision.state.judgement.regressed_windows == 0  # type: ignore[union-attr]


def test_a_first_regressed_window_is_counted_and_blocks_advancing() -> None:
    decision = decide(POLICY, PLAN, judged(0.3), obs(extraction_rate=0.3))
    assert decision.evidence["guards"]["extraction_rate"]["regressed"] is True
    assert decision.state.judgement.regressed_windows == 1  # type: ignore[union-attr]
    assert decision.action.kind is ActionKind.NONE and "guard_regression" in decision.evidence["alerts"]


def test_criteria_and_plateau_wait_while_a_regressed_window_is_pending() -> None:
    state = replace(judged(0.95, regressed_windows=1), steps_in_step=GRACE + WINDOW)  # not a window boundary
    decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.95))
    assert all(c["holds"] for c in decision.evidence["criteria"].values())
    assert all(p["plateaued"] for p in decision.evidence["plateau"].values())
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.REGRESSION_PENDING


def test_a_persistent_regression_rolls_the_switch_back() -> None:
    decision = decide(POLICY, PLAN, judged(0.3, regressed_windows=1), obs(extraction_rate=0.3))
    assert (decision.action.kind, decision.action.from_step, decision.action.to_step) == (ActionKind.ROLLBACK, 2, 1)
    assert decision.action.factor is Factor.REWARDS  # undoes plan[2].changes, nothing else
    assert decision.reason is Reason.ROLLBACK_REGRESSION
    assert decision.state.rollbacks == {2: 1} and decision.state.judgement is None


def test_a_step_rolled_back_max_times_is_not_entered_again_automatically() -> None:
    state = replace(settled(1, steps_in_step=SETTLE), rollbacks={2: POLICY.judgement.max_rollbacks})
    decision = decide(POLICY, PLAN, state, obs())
    assert decision.action.kind is ActionKind.HOLD and decision.reason is Reason.ROLLBACK_LIMIT_HOLD
    assert decision.state.plan_step == 1 and "rolled back 2 time(s)" in decision.state.hold_reason
    resumed = decide(POLICY, PLAN, decision.state, obs(), [req(1, Command.RESUME)])
    assert resumed.state.rollbacks == {} and resumed.action.to_step == 2  # resume: try it again


def test_with_no_rollbacks_allowed_a_regression_holds_in_place() -> None:
    policy = make_policy(max_rollbacks=0)
    decision = decide(policy, expand_plan(policy), judged(0.3, 1, policy=policy), obs(extraction_rate=0.3))
    assert decision.action.kind is ActionKind.HOLD and decision.reason is Reason.ROLLBACK_LIMIT_HOLD


def test_no_rollback_while_held() -> None:
    state = replace(judged(0.3, regressed_windows=1), hold=True, hold_reason="operator")
    decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.3))
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.HELD


def test_judgement_ends_after_judge_steps() -> None:
    state = replace(judged(0.95), steps_in_step=GRACE + POLICY.judgement.judge_steps - 1)
    windows = {**state.windows, "accuracy": Window.of(WINDOW, [0.1, 0.2, 0.3, 0.4, 0.5])}  # still learning
    decision = decide(POLICY, PLAN, replace(state, windows=windows), obs(accuracy=0.6))
    assert decision.state.plan_step == 2 and decision.state.judgement is None


# ---------------------------------------------------------------- operator requests


def test_operator_advance_is_applied_once_and_recorded() -> None:
    first = decide(POLICY, PLAN, initial_state(PLAN), obs(), [req(1, Command.ADVANCE)])
    assert first.reason is Reason.OPERATOR_ADVANCE and first.action.to_step == 1
    assert [(r.seq, r.result) for r in first.operator_results] == [(1, "applied")]
    assert first.state.judgement is None  # operator moves are the operator's to judge
    again = decide(POLICY, PLAN, first.state, obs(), [req(1, Command.ADVANCE)])
    assert again.operator_results == () and again.action.kind is ActionKind.NONE
    assert again.evidence["duplicate_requests"] == [1]


def test_a_second_move_in_one_step_waits_for_the_next_boundary() -> None:
    state = replace(initial_state(PLAN), phase1_done=True)
    first = decide(POLICY, PLAN, state, obs(), [req(2, Command.ADVANCE), req(1, Command.ADVANCE)])
    assert [r.seq for r in first.operator_results] == [1] and first.state.last_request_seq == 1
    second = decide(POLICY, PLAN, first.state, obs(), [req(2, Command.ADVANCE)])
    assert [r.seq for r in second.operator_results] == [2] and (second.action.from_step, second.action.to_step) == (1, 2)


def test_hold_after_a_move_in_the_same_step_is_applied_in_order() -> None:
    decision = decide(POLICY, PLAN, initial_state(PLAN), obs(), [req(1, Command.ADVANCE), req(2, Command.HOLD)])
    assert [r.seq for r in decision.operator_results] == [1, 2]
    assert decision.action.kind is ActionKind.SWAP_DATA and decision.state.hold


def test_operator_set_walks_one_factor_per_step() -> None:
    decision = decide(POLICY, PLAN, replace(initial_state(PLAN), phase1_done=True), obs(),
                      [req(1, Command.SET, "generalisation")])
    moves = [decision.action]
    while decision.state.set_target is not None:
        decision = decide(POLICY, PLAN, decision.state, obs())
        moves.append(decision.action)
    assert [(m.from_step, m.to_step, m.factor) for m in moves] == [
        (0, 1, Factor.DATA), (1, 2, Factor.REWARDS), (2, 3, Factor.DATA)]
    assert {t.reason for t in decision.state.history} == {"operator_set"}


def test_operator_set_back_to_the_start_undoes_one_factor_per_step() -> None:
    decision = decide(POLICY, PLAN, settled(3), obs(), [req(1, Command.SET, "behaviour")])
    moves = [decision.action]
    while decision.state.set_target is not None:
        decision = decide(POLICY, PLAN, decision.state, obs())
        moves.append(decision.action)
    assert [(m.from_step, m.to_step, m.factor) for m in moves] == [
        (3, 2, Factor.DATA), (2, 1, Factor.REWARDS), (1, 0, Factor.DATA)]


def test_set_to_a_split_phase_ends_with_both_factors_in_effect() -> None:
    decision = decide(POLICY, PLAN, replace(initial_state(PLAN), phase1_done=True), obs(),
                      [req(1, Command.SET, "correctness")])
    assert decision.state.set_target == 2
    assert decide(POLICY, PLAN, decision.state, obs()).state.plan_step == 2


def test_set_to_an_unknown_phase_is_rejected_with_the_phases() -> None:
    decision = decide(POLICY, PLAN, initial_state(PLAN), obs(), [req(1, Command.SET, "correctnes")])
    result = decision.operator_results[0]
    assert result.result == "rejected" and "behaviour, correctness, generalisation" in result.message
    assert decision.state.last_request_seq == 1 and decision.state.plan_step == 0


def test_operators_cannot_skip_phase_one_either() -> None:
    state = replace(settled(2), phase1_done=False)
    for request in (req(1, Command.ADVANCE), req(1, Command.SET, "generalisation")):
        decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.5), [request])
        assert decision.operator_results[0].result == "rejected" and decision.state.plan_step == 2


def test_hold_stops_automatic_switching_but_not_the_operator() -> None:
    held = decide(POLICY, PLAN, settled(0), obs(), [req(1, Command.HOLD)])
    assert held.action.kind is ActionKind.HOLD and held.reason is Reason.OPERATOR_HOLD and held.state.plan_step == 0
    still = decide(POLICY, PLAN, held.state, obs())
    assert still.reason is Reason.HELD and "hold" in still.evidence["alerts"]
    forced = decide(POLICY, PLAN, still.state, obs(), [req(2, Command.ADVANCE)])
    assert forced.action.to_step == 1 and forced.state.hold


def test_resume_lets_the_controller_switch_again() -> None:
    held = replace(settled(0), hold=True, hold_reason="operator")
    decision = decide(POLICY, PLAN, held, obs(), [req(1, Command.RESUME)])
    assert decision.operator_results[0].result == "applied"
    assert decision.action.kind is ActionKind.SWAP_DATA and not decision.state.hold


# ---------------------------------------------------------------- persistence and the log


def test_state_survives_a_json_round_trip_and_decides_the_same() -> None:
    state = replace(judged(0.3, regressed_windows=1), last_request_seq=4, set_target=3, rollbacks={1: 1})
    restored = ControllerState.from_json(json.loads(json.dumps(state.to_json())))
    assert restored == state
    assert decide(POLICY, PLAN, restored, obs(extraction_rate=0.3)) == decide(POLICY, PLAN, state, obs(extraction_rate=0.3))


def test_a_malformed_state_names_the_field() -> None:
    data = initial_state(PLAN).to_json()
    data["windows"] = {"extraction_rate": {"size": 3}}
    with pytest.raises(ValueError, match="'windows'"):
        ControllerState.from_json(data)


def test_the_stored_state_carries_its_schema_version() -> None:
    assert initial_state(PLAN).to_json()["schema_version"] == STATE_SCHEMA_VERSION


def test_a_state_stored_before_versions_were_recorded_is_read() -> None:
    state = replace(judged(0.3, regressed_windows=1), last_request_seq=4, rollbacks={1: 1})
    data = json.loads(json.dumps(state.to_json()))
    del data["schema_version"]
    assert ControllerState.from_json(data) == state


def test_a_state_of_an_unknown_version_is_refused_naming_the_file() -> None:
    data = initial_state(PLAN).to_json()
    data["schema_version"] = STATE_SCHEMA_VERSION + 1
    with pytest.raises(StateFormatError, match=r"^runs/x/checkpoints/step-10/state\.json: controller state has "
                       rf"schema_version {STATE_SCHEMA_VERSION + 1}; this autocurriculum reads version "):
        ControllerState.from_json(data, file="runs/x/checkpoints/step-10/state.json")


def test_a_malformed_state_names_the_file_and_the_field() -> None:
    data = initial_state(PLAN).to_json()
    data["history"] = [[1, 0, "one", "swap_data", "settled"]]
    with pytest.raises(StateFormatError, match=r"^state\.json: controller state: field 'history' is malformed"):
        ControllerState.from_json(data, file="state.json")


def test_status_fields_have_the_metrics_log_shape() -> None:
    fields = status_fields(decide(POLICY, PLAN, settled(0, extraction_rate=0.8), obs(extraction_rate=0.8)))
    assert set(fields) == {"criteria", "plateau", "alerts", "hold", "rollbacks"}
    assert fields["plateau"]["extraction_rate"]["test"] == "trend"
    json.dumps(fields, allow_nan=False)


# ---------------------------------------------------------------- properties


overrides = st.dictionaries(
    st.sampled_from(sorted(GOOD)),
    st.one_of(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.just(math.nan), st.just(math.inf)),
    max_size=3,
)
command = st.one_of(
    st.none(), st.none(), st.none(),
    st.sampled_from([Command.ADVANCE, Command.HOLD, Command.RESUME]),
    st.sampled_from(["behaviour", "correctness", "generalisation", "nope"]),
    st.just("duplicate"),
)
# runs of one observation repeated (plateaus, sustained regressions), each opened by at most one request
steps = st.lists(st.tuples(overrides, command, st.integers(0, 15), st.integers(1, 15)), min_size=1, max_size=25)


WATCHED = set(window_sizes(POLICY, PLAN))


def unrolled(sequence):
    for changes, cmd, nan_roll, repeat in sequence:
        for i in range(repeat):
            yield {**GOOD, **changes}, cmd if i == 0 else None, 1 if nan_roll == 0 else 0


@settings(max_examples=120, deadline=None)
@given(steps)
@example([({}, None, 1, 12), ({"extraction_rate": 0.3}, None, 1, 15), ({}, None, 1, 15)])  # switch, regress, roll back
@example([({}, None, 1, 15), ({"empty_completion_rate": 0.9}, None, 1, 15), ({}, "generalisation", 1, 15)])
def test_the_rules_hold_for_any_observations_and_operator_inputs(sequence) -> None:
    state, seq, answered = initial_state(PLAN), 0, set()
    for metrics, cmd, nonfinite in unrolled(sequence):
        requests = []
        if cmd == "duplicate":
            requests = [req(max(seq, 1), Command.HOLD)]
        elif isinstance(cmd, Command):
            seq += 1
            requests = [req(seq, cmd)]
        elif cmd is not None:
            seq += 1
            requests = [req(seq, Command.SET, cmd)]
        before = state
        decision = decide(POLICY, PLAN, state, StepObservation(state.step + 1, 16, metrics, nonfinite=nonfinite), requests)
        action, after = decision.action, decision.state
        moved = action.from_step != action.to_step
        # one plan step at most, naming the one factor that step changes: never data and rewards at once
        assert abs(action.to_step - action.from_step) <= 1 and after.plan_step == action.to_step
        assert (action.kind in (ActionKind.SWAP_DATA, ActionKind.SWAP_REWARDS, ActionKind.ROLLBACK)) == moved
        if moved:
            assert action.factor is PLAN[max(action.from_step, action.to_step)].changes
            assert action.kind is not ActionKind.SWAP_DATA or action.factor is Factor.DATA
            assert action.kind is not ActionKind.SWAP_REWARDS or action.factor is Factor.REWARDS
        else:
            assert action.factor is Factor.NONE
        # automatic advances: after the grace period, on a clean step, with criteria AND plateau
        if moved and decision.reason in (Reason.CRITERIA_AND_PLATEAU, Reason.SETTLED):
            assert before.steps_in_step + 1 > GRACE
            assert nonfinite == 0 and all(math.isfinite(metrics[name]) for name in WATCHED if name in metrics)
            assert metrics["empty_completion_rate"] < COLLAPSE_EMPTY_RATE
            assert metrics["distinct_completion_ratio"] >= collapse_distinct_floor(POLICY)
            assert all(p["plateaued"] and p["ready"] for p in decision.evidence["plateau"].values())
            if decision.reason is Reason.CRITERIA_AND_PLATEAU:
                assert decision.evidence["criteria"] and all(c["holds"] for c in decision.evidence["criteria"].values())
            else:
                assert before.steps_in_step + 1 >= SETTLE
        if decision.reason is Reason.ROLLBACK_REGRESSION:
            assert not before.hold and action.to_step == action.from_step - 1
        if action.kind is ActionKind.RESTORE:  # only after a collapse that lasted, never while held
            assert not before.hold and before.collapse_streak + 1 >= POLICY.judgement.collapse_patience
            assert before.restores < POLICY.judgement.max_restores and action.before_step <= after.step
            assert metrics["empty_completion_rate"] >= COLLAPSE_EMPTY_RATE or (
                metrics["distinct_completion_ratio"] < collapse_distinct_floor(POLICY))
        if action.kind is ActionKind.DONE:
            assert PLAN[after.plan_step].exit_gate is ExitGate.TERMINAL
        # no new domains and no phase 3 before phase 1's criteria held, whoever asked
        if needs_phase1(POLICY, PLAN, after.plan_step):
            assert after.phase1_done
        if after.phase1_done and not before.phase1_done:
            assert PLAN[before.plan_step].phase_index == 0
            assert all(c["holds"] for c in decision.evidence["criteria"].values())
        # each request answered exactly once, in sequence order, never one already seen
        seqs = [r.seq for r in decision.operator_results]
        assert seqs == sorted(seqs) and all(s > before.last_request_seq for s in seqs)
        assert not answered & set(seqs)
        answered |= set(seqs)
        assert after.last_request_seq == max([before.last_request_seq, *seqs])
        json.dumps(decision.to_json(), allow_nan=False)
        state = after
    assert ControllerState.from_json(json.loads(json.dumps(state.to_json()))) == state


def test_identical_completions_within_each_group_are_not_a_collapse() -> None:
    """Every group answering one text per prompt is a confident model; different prompts sharing one text is not."""
    floor = collapse_distinct_floor(POLICY)
    assert floor == 1 / POLICY.training.generations_per_prompt
    state = settled(0)
    confident = decide(POLICY, PLAN, state, obs(distinct_completion_ratio=floor))
    assert "collapse" not in confident.evidence["alerts"] and confident.reason is not Reason.BLOCKED
    collapsed = decide(POLICY, PLAN, state, obs(distinct_completion_ratio=floor - 1 / 16))
    assert "collapse" in collapsed.evidence["alerts"] and collapsed.reason is Reason.BLOCKED
