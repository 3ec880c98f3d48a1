"""The curriculum benchmark's regimes are the plans they claim to be (benchmarks/curriculum.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from autocurriculum.policy import ExitGate, expand_plan, load, same_reward_set

from .conftest import REPO

spec = importlib.util.spec_from_file_location("curriculum_benchmark", REPO / "benchmarks" / "curriculum.py")
assert spec is not None and spec.loader is not None
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
POLICY = load(REPO / "policies" / "tiny.toml")
PLAN = expand_plan(POLICY)


def test_auto_is_the_products_own_plan() -> None:
    assert bench.regime_plan("auto", POLICY, PLAN, 200) == PLAN


def test_both_swaps_data_and_rewards_in_one_step() -> None:
    plan = bench.regime_plan("both", POLICY, PLAN, 200)
    assert [s.index for s in plan] == [0, 1, 2] and [s.phase for s in plan] == ["behaviour", "correctness", "generalisation"]
    assert plan[1].mixture != plan[0].mixture and not same_reward_set(plan[1].rewards, plan[0].rewards)
    assert plan[1].criteria == PLAN[2].criteria and plan[1].plateau == PLAN[2].plateau  # still gated by the controller


def test_none_trains_phase_two_rewards_on_the_full_mixture_from_step_zero() -> None:
    (only,) = bench.regime_plan("none", POLICY, PLAN, 200)
    assert only.mixture == PLAN[-1].mixture and only.rewards == PLAN[2].rewards
    assert only.exit_gate is ExitGate.TERMINAL and only.max_steps == 200


def test_fixed_switches_on_budgets_alone_in_thirds() -> None:
    plan = bench.regime_plan("fixed", POLICY, PLAN, 200)
    assert all(not s.criteria and not s.plateau for s in plan)
    assert [s.max_steps for s in plan] == [66, POLICY.judgement.settle_steps, 66 - POLICY.judgement.settle_steps, 200]
    assert [s.changes for s in plan] == [s.changes for s in PLAN]  # still one factor per switch


def test_phase_one_is_reached_when_the_rolling_window_meets_both_criteria(tmp_path: Path) -> None:
    extraction = [0.5] * 10 + [1.0] * 12 + [0.9] * 3
    with open(tmp_path / "metrics.jsonl", "w") as out:
        for step, value in enumerate(extraction, start=1):
            out.write(json.dumps({"step": step, "time": step, "step_seconds": 1.0, "observation": {"metrics": {
                "extraction_rate": value, "refusal_rate": 0.0, "strict_compliance": value}}}) + "\n")
    (tmp_path / "child.json").write_text(json.dumps({"exit_code": 0, "wall_seconds": 30.0, "terminal_done_at": None}))
    greedy = {"metrics": {"extraction_rate": 1.0, "strict_compliance": 0.9, "domain_accuracy:math": 0.5}}
    (tmp_path / "eval.jsonl").write_text(json.dumps({"greedy": greedy, "sampled": greedy}) + "\n")
    summary = bench.summarize_run(tmp_path)
    # the window of 10 first averages >= 0.95 when it holds at most one 0.5: step 19 (0.5 + 9 x 1.0) / 10 = 0.95
    assert summary["phase1_at"] == 19
    assert summary["final"]["strict_compliance"] == 0.9 and summary["steps"] == 25
