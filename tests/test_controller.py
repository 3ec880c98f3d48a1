"""decide(): build a state, step once, assert; and properties over arbitrary inputs."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from autocurriculum.controller import ActionKind, ControllerState, Reason, decide, initial_state
from autocurriculum.observation import StepObservation
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.policy import Factor, expand_plan, parse

from .conftest import REPO

POLICY = parse((REPO / "policies" / "tiny.toml").read_text(), "tiny.toml",
               overrides=["judgement.grace_steps=2", "judgement.settle_steps=3", "metrics.window=5", "plateau.window=5"])
PLAN = expand_plan(POLICY)


def obs(step: int = 1, **metrics: float) -> StepObservation:
    base = {"extraction_rate": 1.0, "strict_compliance": 1.0, "refusal_rate": 0.0, "mean_length_tokens": 15.0,
            "accuracy": 0.5, "empty_completion_ratio": 0.0, "distinct_completion_ratio": 1.0,
            "learnable_group_ratio": 0.5, "domain_compliance:code": 1.0, "domain_compliance:qa": 1.0,
            "empty_completion_rate": 0.0}
    base.update(metrics)
    return StepObservation(step, 16, base)


def run(state: ControllerState, steps: int, **metrics: float):
    decision = None
    for _ in range(steps):
        decision = decide(POLICY, PLAN, state, obs(**metrics))
        state = decision.state
        if decision.action.kind is not ActionKind.NONE:
            break
    return decision


def test_criteria_and_plateau_advance_phase_one_by_swapping_data_only() -> None:
    decision = run(initial_state(PLAN), 20)
    assert decision.action.kind is ActionKind.SWAP_DATA
    assert decision.action.factor is Factor.DATA
    assert decision.reason is Reason.CRITERIA_AND_PLATEAU
    assert (decision.action.from_step, decision.action.to_step) == (0, 1)
    assert decision.state.phase1_done
    assert decision.evidence["criteria"]["extraction_rate"]["holds"]


def test_no_advance_while_a_criterion_fails_even_on_a_plateau() -> None:
    decision = run(initial_state(PLAN), 30, extraction_rate=0.8)
    assert decision.action.kind is ActionKind.NONE
    assert decision.reason is Reason.WAITING
    assert not decision.evidence["criteria"]["extraction_rate"]["holds"]


def test_no_advance_during_grace_after_a_switch() -> None:
    state = replace(initial_state(PLAN), plan_step=1, steps_in_step=0)
    decision = decide(POLICY, PLAN, state, obs())
    assert decision.reason is Reason.GRACE and decision.action.kind is ActionKind.NONE


def test_settle_step_advances_with_the_reward_swap_after_settling() -> None:
    state = replace(initial_state(PLAN), plan_step=1, phase1_done=True)
    decision = run(state, 20)
    assert decision.action.kind is ActionKind.SWAP_REWARDS
    assert decision.reason is Reason.SETTLED
    assert decision.state.steps_in_step == 0 and decision.action.to_step == 2


def test_collapse_blocks_advancing_and_raises_an_alert() -> None:
    decision = run(initial_state(PLAN), 20, empty_completion_rate=0.9)
    assert decision.action.kind is ActionKind.NONE
    assert decision.reason is Reason.BLOCKED
    assert "collapse" in decision.evidence["alerts"]


def test_nonfinite_rewards_are_counted_never_judged() -> None:
    state = initial_state(PLAN)
    for step in range(30):
        decision = decide(POLICY, PLAN, state, replace(obs(step), nonfinite=3))
        state = decision.state
        assert decision.action.kind is ActionKind.NONE
    assert state.nonfinite_total == 90
    assert "nonfinite_rewards" in decision.evidence["alerts"]


def test_regression_after_a_switch_rolls_back_then_holds_after_the_retry_limit() -> None:
    state = replace(initial_state(PLAN), plan_step=1, phase1_done=True, baseline={"extraction_rate": 0.98, "refusal_rate": 0.0},
                    judging=True)
    kinds = []
    for _ in range(200):
        decision = decide(POLICY, PLAN, state, obs(extraction_rate=0.4))
        state = decision.state
        if decision.action.kind is ActionKind.ROLLBACK:
            kinds.append("rollback")
            assert decision.action.factor is Factor.DATA and decision.action.to_step == 0
            assert decision.reason is Reason.ROLLBACK_REGRESSION
            # go forward again to be judged again
            state = replace(state, plan_step=1, steps_in_step=0, judging=True, regressed_steps=0,
                            baseline={"extraction_rate": 0.98, "refusal_rate": 0.0}, windows={})
        elif decision.action.kind is ActionKind.HOLD:
            kinds.append("hold")
            assert decision.reason is Reason.ROLLBACK_LIMIT_HOLD
            break
    assert kinds == ["rollback"] * POLICY.judgement.max_rollbacks + ["hold"]
    assert state.hold and "rollbacks" in state.hold_reason


def req(seq: int, command: Command, phase: str = "") -> OperatorRequest:
    return OperatorRequest(seq, command, phase, reason="test")


def test_operator_advance_is_applied_once_and_recorded() -> None:
    state = initial_state(PLAN)
    decision = decide(POLICY, PLAN, state, obs(), [req(1, Command.ADVANCE)])
    assert decision.reason is Reason.OPERATOR_ADVANCE and decision.action.to_step == 1
    assert [(r.seq, r.result) for r in decision.operator_results] == [(1, "applied")]
    again = decide(POLICY, PLAN, decision.state, obs(), [req(1, Command.ADVANCE)])
    assert again.operator_results == () and again.action.kind is ActionKind.NONE


def test_two_movements_in_one_step_apply_at_successive_boundaries() -> None:
    state = replace(initial_state(PLAN), phase1_done=True)
    first = decide(POLICY, PLAN, state, obs(), [req(1, Command.ADVANCE), req(2, Command.ADVANCE)])
    assert [r.seq for r in first.operator_results] == [1] and first.state.last_request_seq == 1
    second = decide(POLICY, PLAN, first.state, obs(), [req(2, Command.ADVANCE)])
    assert [r.seq for r in second.operator_results] == [2] and second.action.to_step == 2


def test_operator_set_walks_one_factor_per_step() -> None:
    state = replace(initial_state(PLAN), phase1_done=True)
    decision = decide(POLICY, PLAN, state, obs(), [req(1, Command.SET, "generalisation")])
    moves = [decision.action]
    while decision.state.set_target is not None:
        decision = decide(POLICY, PLAN, decision.state, obs())
        moves.append(decision.action)
    assert [(m.from_step, m.to_step, m.factor) for m in moves] == [
        (0, 1, Factor.DATA), (1, 2, Factor.REWARDS), (2, 3, Factor.DATA)]


def test_set_to_an_unknown_phase_is_rejected_with_the_phases() -> None:
    decision = decide(POLICY, PLAN, initial_state(PLAN), obs(), [req(1, Command.SET, "correctnes")])
    assert decision.operator_results[0].result == "rejected"
    assert "correctness" in decision.operator_results[0].message


def test_hold_stops_automatic_switching_until_resume() -> None:
    held = decide(POLICY, PLAN, initial_state(PLAN), obs(), [req(1, Command.HOLD)]).state
    decision = run(held, 30)
    assert decision.action.kind is ActionKind.NONE and decision.reason is Reason.HELD
    resumed = decide(POLICY, PLAN, decision.state, obs(), [req(2, Command.RESUME)]).state
    assert run(resumed, 30).action.kind is ActionKind.SWAP_DATA


def test_state_survives_a_json_round_trip() -> None:
    decision = run(initial_state(PLAN), 20)
    state = decision.state
    assert ControllerState.from_json(state.to_json()) == state


metric_values = st.fixed_dictionaries({
    "extraction_rate": st.floats(0, 1), "refusal_rate": st.floats(0, 1), "mean_length_tokens": st.floats(0, 60),
    "accuracy": st.floats(0, 1), "domain_compliance:code": st.floats(0, 1), "domain_compliance:qa": st.floats(0, 1),
    "empty_completion_rate": st.floats(0, 1), "distinct_completion_ratio": st.floats(0, 1),
    "learnable_group_ratio": st.floats(0, 1),
})
commands = st.one_of(st.none(), st.sampled_from([Command.ADVANCE, Command.HOLD, Command.RESUME]),
                     st.sampled_from(["behaviour", "correctness", "generalisation", "nope"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(metric_values, commands, st.booleans()), min_size=1, max_size=120))
def test_rules_hold_for_any_observations_and_operator_inputs(steps) -> None:
    state, seq = initial_state(PLAN), 0
    for metrics, command, nan in steps:
        requests = []
        if command is not None:
            seq += 1
            requests = [req(seq, Command.SET, command) if isinstance(command, str) and command not in Command.__members__.values()
                        else req(seq, command)]  # type: ignore[arg-type]
        observation = StepObservation(state.step + 1, 16, metrics, nonfinite=1 if nan else 0)
        decision = decide(POLICY, PLAN, state, observation, requests)
        action, before, after = decision.action, state, decision.state
        moved = action.from_step != action.to_step
        # never both factors: at most one plan step per decision, and it names one factor
        assert abs(action.to_step - action.from_step) <= 1
        assert (action.factor in (Factor.DATA, Factor.REWARDS)) == moved
        assert after.plan_step == action.to_step
        if moved:
            assert PLAN[max(action.from_step, action.to_step)].changes is action.factor
            # no automatic advance without criteria AND plateau (or an exhausted budget)
            if decision.reason in (Reason.CRITERIA_AND_PLATEAU, Reason.SETTLED):
                assert before.steps_in_step + 1 > POLICY.judgement.grace_steps
                assert not nan
                if decision.reason is Reason.CRITERIA_AND_PLATEAU:
                    assert all(c["holds"] for c in decision.evidence["criteria"].values())
                assert all(p["plateaued"] for p in decision.evidence["plateau"].values())
        # phase 3 (new domains) never before phase 1's criteria held
        if PLAN[after.plan_step].phase == "generalisation":
            assert after.phase1_done
        # each request answered at most once, in order
        assert [r.seq for r in decision.operator_results] == sorted(r.seq for r in decision.operator_results)
        state = after
