"""Replay: a metrics log written the way the daemon writes it (closed loop: what the imaginary model
does depends on the plan step decide() put it in) replays to exactly the same decisions, including
across a checkpoint/resume of the controller's state; a log that disagrees is reported; the plot
is drawn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autocurriculum import runlog
from autocurriculum.controller import ActionKind, ControllerState, decide, initial_state, status_fields
from autocurriculum.observation import StepObservation
from autocurriculum.override import Command, OperatorRequest
from autocurriculum.policy import expand_plan, load
from autocurriculum.replay import plot, replay, replay_file, replay_steps

from .conftest import REPO

POLICY = load(REPO / "policies" / "tiny.toml")
PLAN = expand_plan(POLICY)
REQUESTS = {
    3: [OperatorRequest(1, Command.HOLD, reason="look at lengths")],
    6: [OperatorRequest(2, Command.RESUME)],
    8: [OperatorRequest(3, Command.SET, phase="generalisaton", reason="typo")],
}


def observe(rng: np.random.Generator, number: int, plan_step: int, visit: int, steps_in: int) -> StepObservation:
    """16 completions of an imaginary model: compliant more often with time, and on its first visit
    of plan step 1 it forgets the format (the regression a rollback must catch)."""
    compliance = min(0.99, 0.55 + number / 50)
    if plan_step == 1 and visit == 1 and steps_in > 3:
        compliance = 0.45
    rate = lambda p: float(rng.binomial(16, p)) / 16  # noqa: E731
    metrics = {
        "extraction_rate": rate(compliance),
        "strict_compliance": rate(compliance * 0.97),
        "refusal_rate": rate(max(0.0, 0.08 - number / 400)),
        "mean_length_tokens": float(rng.normal(22, 1.5)),
        "accuracy": rate(min(0.7, 0.2 + number / 300)),
        "empty_completion_rate": 0.0,
        "distinct_completion_ratio": rate(0.95),
        "learnable_group_ratio": rate(0.6),
        "domain_compliance:math": rate(compliance),
        "domain_compliance:code": rate(compliance),
        "domain_compliance:qa": rate(compliance),
    }
    return StepObservation(number, 16, metrics, {"math": 16}, nonfinite=1 if number == 15 else 0)


def simulated_log(steps: int = 260, seed: int = 3, resume_at: int | None = None) -> list[dict[str, object]]:
    """Records with the daemon's shape; with `resume_at`, the state goes through JSON there (a checkpoint)."""
    rng = np.random.default_rng(seed)
    state = initial_state(PLAN)
    visits: dict[int, int] = {0: 1}
    records: list[dict[str, object]] = []
    for number in range(1, steps + 1):
        if number == resume_at:
            state = ControllerState.from_json(json.loads(json.dumps(state.to_json())))
        observation = observe(rng, number, state.plan_step, visits[state.plan_step], state.steps_in_step + 1)
        evaluation = observe(rng, number, state.plan_step, 2, 99) if number % 50 == 0 else None
        requests = REQUESTS.get(number, [])
        decision = decide(POLICY, PLAN, state, observation, requests, evaluation)
        if decision.state.plan_step != state.plan_step:
            visits[decision.state.plan_step] = visits.get(decision.state.plan_step, 0) + 1
        state = decision.state
        records.append({
            "step": number,
            "plan_step": state.plan_step,
            "observation": observation.to_json(),
            "eval": evaluation.to_json() if evaluation else None,
            "requests": [r.to_json() for r in requests],
            "decision": decision.to_json(),
            **status_fields(decision),
        })
        if decision.action.kind is ActionKind.DONE:
            break
    return records


@pytest.fixture(scope="module")
def records() -> list[dict[str, object]]:
    return simulated_log()


def written(records: list[dict[str, object]], path: Path) -> Path:
    for record in records:
        runlog.append_line(path, record)
    return path


def logged_transitions(records: list[dict[str, object]]) -> list[tuple[int, str, str, int, int]]:
    return [(int(r["step"]), r["decision"]["action"], r["decision"]["reason"], r["decision"]["from_step"],  # type: ignore[index]
             r["decision"]["to_step"]) for r in records if r["decision"]["action"] != "none"]  # type: ignore[index]


def test_the_simulated_run_has_every_kind_of_event(records: list[dict[str, object]]) -> None:
    reasons = {t[2] for t in logged_transitions(records)}
    assert {"operator_hold", "operator_resume", "criteria_and_plateau", "rollback_regression", "settled"} <= reasons
    assert records[-1]["decision"]["action"] == "done"  # type: ignore[index]


def test_replay_reproduces_every_transition_of_the_log(records: list[dict[str, object]]) -> None:
    rows = replay(POLICY, PLAN, json.loads(json.dumps(records)))
    assert [(r.step, r.action, r.reason, r.from_step, r.to_step) for r in rows] == logged_transitions(records)
    assert all(r.matches_log for r in rows)
    rollback = next(r for r in rows if r.action == "rollback")
    assert (rollback.from_label, rollback.to_label, rollback.factor) == ("correctness/a", "behaviour", "data")
    assert rollback.evidence["guards"]["extraction_rate"]["regressed"] is True


def test_a_run_resumed_from_a_checkpointed_state_replays_identically() -> None:
    resumed = simulated_log(resume_at=120)
    steps = replay_steps(POLICY, PLAN, resumed)
    assert len(steps) == len(resumed) and all(step.matches for step in steps)
    assert [step.decision.to_json() for step in steps] == [r["decision"] for r in json.loads(json.dumps(resumed))]


def test_replay_file_prints_the_transitions_and_their_evidence(records, tmp_path: Path, capsys) -> None:
    assert replay_file(POLICY, written(records, tmp_path / "metrics.jsonl"), None) == 0
    out = capsys.readouterr().out
    assert "rollback" in out and "guard extraction_rate" in out and "REGRESSED" in out
    assert "0 mismatches" in out


def test_a_log_that_disagrees_with_the_policy_is_reported(records, tmp_path: Path, capsys) -> None:
    changed = json.loads(json.dumps(records))
    first_switch = next(r for r in changed if r["decision"]["action"] == "swap_data")
    first_switch["observation"]["metrics"]["extraction_rate"] = 0.0  # the run could not have switched on this
    assert replay_file(POLICY, written(changed, tmp_path / "metrics.jsonl"), None) == 1
    assert f"step {first_switch['step']:5d}: MISMATCH" in capsys.readouterr().out


def test_an_unreadable_record_is_named(records, tmp_path: Path, capsys) -> None:
    broken = json.loads(json.dumps(records[:5]))
    del broken[2]["observation"]["metrics"]
    assert replay_file(POLICY, written(broken, tmp_path / "metrics.jsonl"), None) == 65
    assert "record 3 (step 3): field 'observation'" in capsys.readouterr().err


def test_plot_draws_a_png(records, tmp_path: Path) -> None:
    out = tmp_path / "plots" / "replay.png"
    plot(records, replay(POLICY, PLAN, records), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
